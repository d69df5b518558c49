#!/usr/bin/env bash
# Install checkov, pinned, into .venv-checkov/ beside the project's .venv/ (`sdlf lint` finds it there).
# It cannot share .venv/: its exact pins (boto3 among them) conflict with the CLI's own.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-checkov
.venv-checkov/bin/pip install -q -r requirements-checkov.txt
.venv-checkov/bin/checkov --version
