#!/usr/bin/env bash
# Smoke-run the asv suite against the chainrule installed in the current Python:
# every benchmark must import, set up and run once; timings are not checked.
# Run from anywhere; called by .ci/run after the package is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

python -c "import asv" 2>/dev/null || python -m pip install -q "asv>=0.6"
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-/tmp/chainrule-asv-numba-cache}"
# auto from the shipped table only: a calibration in this user's cache never changes the run.
export CHAINRULE_WISDOM=0

python -m asv machine --yes
python -m asv check --python=same
# --dry-run: nothing is written to .asv/results; a benchmark that errors fails the run,
# an unavailable backend shows as n/a and does not.
python -m asv run --python=same --quick --dry-run --show-stderr
echo "asv smoke run: ok"
