"""The lake of one environment: its parameters files read (`tree`) and validated into a LakeConfig (`validate`)."""
from __future__ import annotations

from pathlib import Path

from sdlf_cli.config.model import LakeConfig
from sdlf_cli.config.tree import env_file, load_tree
from sdlf_cli.config.validate import build_config
from sdlf_cli.errors import ConfigError


def load_config(env: str, parameters_dir: Path | str = "parameters", *, env_text: str | None = None) -> LakeConfig:
    """Loads and validates the lake of one environment; raises ConfigError listing every problem.

    `env_text` replaces the env file's content (the editor validates an edit before writing it).
    """
    tree, files, problems = load_tree(env, parameters_dir, env_text=env_text)
    if tree is None:
        raise ConfigError(problems)
    return build_config(tree, env=env, env_file=str(env_file(env, parameters_dir)), files=files,
                        problems=problems)
