"""The working tree as a source revision: a zip of the files git tracks, with their current content.

Deterministic: entries sorted by path, fixed timestamps and permissions (executable or not), so the same
tree gives the same bytes and the same digest. Untracked files are left out (as a git push would), and so
are tracked files deleted from the working tree.
"""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sdlf_cli.errors import UsageError

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class SourceArchive:
    body: bytes
    files: int
    digest: str  # sha256 of the zip

    @property
    def short(self) -> str:
        return self.digest[:12]


def tracked_files(root: Path) -> list[str]:
    """Paths git tracks under `root` (relative, '/'-separated), that exist in the working tree."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached"], cwd=root, check=True, capture_output=True).stdout
    except FileNotFoundError as err:
        raise UsageError("`sdlf cicd push` needs git to list the files of the working tree") from err
    except subprocess.CalledProcessError as err:
        detail = err.stderr.decode(errors="replace").strip()
        raise UsageError(f"{root}: not a git working tree ({detail}); `sdlf cicd push` zips the files git tracks") from err
    paths = sorted({p for p in out.decode("utf-8").split("\0") if p})
    return [p for p in paths if (root / p).is_file()]


def build_archive(root: Path) -> SourceArchive:
    root = Path(root)
    files = tracked_files(root)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            full = root / path
            info = zipfile.ZipInfo(path, date_time=FIXED_TIME)
            executable = os.access(full, os.X_OK)
            info.external_attr = ((0o100755 if executable else 0o100644) & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, full.read_bytes())
    body = buffer.getvalue()
    return SourceArchive(body=body, files=len(files), digest=hashlib.sha256(body).hexdigest())
