"""Record which wheel pip picks for each module the dataset Glue jobs install, per Glue runtime.

    .venv/bin/python scripts/record_glue_wheels.py

Reads the pins from templates/dataset/dataset.yaml.j2 (python_modules for the Python shell 3.9 job,
spark_modules for the Glue 5.0 ETL job), asks pip for a binary wheel of each for that runtime's Python and
platform (`pip download --no-deps --only-binary=:all:`, which also honours Requires-Python), and writes the
file names to tests/fixtures/glue_wheels.json, which tests/unit/test_glue_runtime.py checks offline.
Run it after changing a pin.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.unit.test_glue_runtime import RUNTIMES, WHEELS, template_pins  # noqa: E402


def main() -> None:
    pins = template_pins()
    recorded = {"_how": json.loads(WHEELS.read_text())["_how"], "runtimes": {}}
    for runtime, (job, version, platform) in RUNTIMES.items():
        with tempfile.TemporaryDirectory() as folder:
            for pin in pins[job]:
                subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                                "--platform", platform, "--python-version", version, "--implementation", "cp",
                                "-d", folder, pin], check=True)
            recorded["runtimes"][runtime] = {"python_version": version, "platform": platform,
                                             "wheels": sorted(os.listdir(folder))}
    WHEELS.write_text(json.dumps(recorded, indent=2) + "\n")
    print(f"wrote {WHEELS}")


if __name__ == "__main__":
    main()
