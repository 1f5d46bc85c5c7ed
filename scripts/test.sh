#!/usr/bin/env bash
# The test command: sets up ./.venv if needed, builds, runs the test suite. Extra args go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$SK_ROOT"
python -m pytest -q "$@"
