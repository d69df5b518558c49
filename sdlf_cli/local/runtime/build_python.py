"""A fresh Python environment per build, as a CodeBuild image comes with its runtime preinstalled.

`python -m venv --without-pip` (tens of milliseconds) whose site-packages chain to the emulator's own
through a `.pth` line: `pip install .` in a build finds every dependency already satisfied and installs
the project into the build's environment only — never into the emulator's. The host's console scripts
(aws, pytest, cfn-lint …) are copied into the build's bin with the build's interpreter, so they import
what the build installed first. Editable installs of the host are not visible (their `.pth` hooks only
run in the host's own site-packages).
"""
from __future__ import annotations

import os
import site
import sys
import sysconfig
import venv
from pathlib import Path

_PIP = """#!{python}
import sys
from pip._internal.cli.main import main
sys.exit(main())
"""
_SKIPPED = ("python", "activate", "pip", "Activate", "deactivate")


def host_bin() -> Path:
    return Path(sys.executable).parent


def create(root: Path) -> Path:
    """Creates the environment under `root`; returns its bin directory."""
    venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(root)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(root), "platbase": str(root)}))
    purelib.mkdir(parents=True, exist_ok=True)
    host_paths = [p for p in dict.fromkeys([*site.getsitepackages(), sysconfig.get_path("purelib"),
                                            sysconfig.get_path("platlib")]) if Path(p).is_dir()]
    (purelib / "_codebuild_image.pth").write_text("".join(f"{p}\n" for p in host_paths))
    bin_dir = root / "bin"
    python = bin_dir / "python"
    for name in ("pip", "pip3"):
        _write_script(bin_dir / name, _PIP.format(python=python))
    source = host_bin()
    if source.resolve() != bin_dir.resolve():
        for script in sorted(source.iterdir()):
            if script.name.startswith(_SKIPPED) or not script.is_file():
                continue
            try:
                text = script.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            first, _, rest = text.partition("\n")
            if first.startswith("#!") and "python" in first:
                _write_script(bin_dir / script.name, f"#!{python}\n{rest}")
    return bin_dir


def _write_script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def path_variable(bin_dir: Path, current: str) -> str:
    """PATH with the build's bin first and the host environment's bin left out."""
    host = str(host_bin())
    kept = [p for p in current.split(os.pathsep) if p and os.path.realpath(p) != os.path.realpath(host)]
    return os.pathsep.join([str(bin_dir), *kept])
