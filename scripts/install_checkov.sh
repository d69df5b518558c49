#!/usr/bin/env bash
# Install checkov, pinned, into .venv-checkov/ beside the project's .venv/ (`sdlf lint` finds it there).
# It cannot share .venv/: its exact pins (boto3 among them) conflict with the CLI's own.
# Where checkov is already provided (SDLF_CHECKOV names its executable, as a build image or cache can),
# or .venv-checkov/ already holds the pinned version, nothing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
pinned=$(sed -n 's/^checkov==//p' requirements-checkov.txt)
# checkov's version from its environment's package metadata: `checkov --version` starts all of checkov (seconds).
installed_version() {
  local python
  python="$(dirname "$1")/python"
  if [ -x "$python" ]; then
    "$python" -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null && return
  fi
  "$1" --version 2>/dev/null
}
if [ -n "${SDLF_CHECKOV:-}" ] && [ -x "$SDLF_CHECKOV" ]; then
  installed_version "$SDLF_CHECKOV"
  exit 0
fi
if [ -x .venv-checkov/bin/checkov ] && [ "$(installed_version .venv-checkov/bin/checkov)" = "$pinned" ]; then
  echo "$pinned"
  exit 0
fi
python3 -m venv .venv-checkov
# uv (installed into .venv by the README's commands) resolves and installs the same pins several times faster.
if [ -x .venv/bin/uv ]; then
  .venv/bin/uv pip install -q -p .venv-checkov -r requirements-checkov.txt
else
  .venv-checkov/bin/pip install -q -r requirements-checkov.txt
fi
.venv-checkov/bin/checkov --version
