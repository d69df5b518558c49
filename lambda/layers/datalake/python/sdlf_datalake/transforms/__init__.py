"""Light transforms of stage A: a named function `(RawObject) -> list[StageObject]`.

See docs/transforms.md for writing your own. `default` normalises JSON, JSON lines and CSV (plain
or gzip) into JSON lines.
"""
from __future__ import annotations

from sdlf_datalake.transforms.base import RawObject, StageObject, Transform, stage_name, to_json_lines
from sdlf_datalake.transforms.registry import available_transforms, get_transform, register

# Importing registers the built-in transform.
from sdlf_datalake.transforms import default as _default  # noqa: E402,F401  isort: skip

__all__ = [
    "RawObject",
    "StageObject",
    "Transform",
    "available_transforms",
    "get_transform",
    "register",
    "stage_name",
    "to_json_lines",
]
