"""The README's main command, as a person runs it: `sdlf demo` from a clean checkout, then `sdlf local down`."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sdlf_demo_runs_the_whole_mission(tmp_path):
    for part in ("templates", "lambda", "glue", "parameters", "samples"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "SDLF_LOCAL_STATE_DIR": str(tmp_path / "state"), "CI": "1"}
    for name in ("SDLF_LOCAL", "SDLF_ENDPOINT_URL", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    sdlf = [sys.executable, "-m", "sdlf_cli.cli"]
    try:
        done = subprocess.run([*sdlf, "demo", "-o", "json"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        result = json.loads(done.stdout)
        assert result["ok"]
        assert [s["name"] for s in result["steps"]] == ["emulator", "deploy", "ingest", "stage A", "stage B",
                                                         "query", "quality"]
        statuses = sorted(o["status"] for o in result["objects"])
        assert statuses == ["FAILED", "PROCESSED", "PROCESSED", "PROCESSED"]
        failed = next(o for o in result["objects"] if o["status"] == "FAILED")
        assert failed["key"].endswith("persons-broken.json") and "malformed JSON" in failed["reason"]
        people = {row[0]: row[1] for row in result["query"]["rows"]}
        assert sum(people.values()) == 7  # 3 + 2 + 2 records in the three good files
        assert result["quality"][0]["status"] in ("PASS", "WARN")

        # A second run finds the emulator up and the stacks unchanged.
        again = subprocess.run([*sdlf, "demo", "-o", "json"], cwd=tmp_path, env=env, capture_output=True,
                               text=True, timeout=900)
        assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
        deploy = next(s for s in json.loads(again.stdout)["steps"] if s["name"] == "deploy")
        assert "created" not in deploy["detail"] and "unchanged" in deploy["detail"]
    finally:
        subprocess.run([*sdlf, "local", "down"], cwd=tmp_path, env=env, capture_output=True, timeout=60)
