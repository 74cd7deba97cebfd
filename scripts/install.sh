#!/usr/bin/env bash
# Create .venv and install rlvr into it, printing one line per phase; pip's own output goes to
# .venv/install.log (shown when a phase fails), so `make` is not a wall of build warnings.
# Usage: scripts/install.sh PYTHON EXTRAS   e.g. scripts/install.sh python3 train,docker,dev
set -uo pipefail
PYTHON=${1:-python3}
EXTRAS=${2:-train,docker,dev}
VENV=.venv
PY=$VENV/bin/python
LOG=$VENV/install.log

phase() {  # phase "what" command...
  local what=$1; shift
  local t0=$SECONDS
  printf 'install: %s ... ' "$what"
  if "$@" >>"$LOG" 2>&1; then
    echo "ok ($((SECONDS - t0)) s)"
  else
    echo "FAILED"
    echo "--- last lines of $LOG ---"
    tail -n 40 "$LOG"
    exit 1
  fi
}

if [ ! -x "$PY" ]; then
  printf 'install: virtual environment %s ... ' "$VENV"
  "$PYTHON" -m venv "$VENV" || { echo FAILED; exit 1; }
  echo ok
fi
: >"$LOG"
phase "pip" "$PY" -m pip install -q --upgrade pip
# torch first, from the pinned CPU wheel, so no dependency pulls a multi-GB CUDA build.
phase "torch 2.13.0 (CPU wheel)" "$PY" -m pip install -q torch==2.13.0
phase "rlvr [$EXTRAS] (editable)" "$PY" -m pip install -q -e ".[$EXTRAS]"
