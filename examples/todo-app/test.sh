#!/usr/bin/env bash
# Test the Todo AI Chatbot example: backend pytest suite, then the frontend's
# clean install and production build (`npm ci && npm run build`).
#
#   ./test.sh            # both parts
#   ./test.sh backend    # only the backend tests
#   ./test.sh frontend   # only the frontend build
#
# Needs Python >= 3.11 with pip (PYTHON=/path/to/python to choose one) and
# Node >= 20.9 with npm. Backend dependencies go into backend/.venv; where the
# venv module is missing (Debian without python3-venv) into backend/.deps via
# `pip install --target`. Both are ignored by git and Docker. Exits non-zero
# on the first failure and prints how long each step took.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BACKEND="$HERE/backend"
FRONTEND="$HERE/frontend"
WHAT="${1:-all}"

export NEXT_TELEMETRY_DISABLED=1
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PYTHONDONTWRITEBYTECODE=1

case "$WHAT" in
  all|backend|frontend) ;;
  *) echo "usage: $0 [all|backend|frontend]" >&2; exit 2 ;;
esac

TIMINGS=()
ms() { date +%s%3N; }
step() {
  # step "label" command args... : run, time, and record the duration.
  local label="$1"; shift
  echo
  echo "==> $label"
  local start end
  start=$(ms)
  "$@"
  end=$(ms)
  local secs
  secs=$(awk -v d="$((end - start))" 'BEGIN { printf "%.1f", d / 1000 }')
  TIMINGS+=("$(printf '%-38s %7ss' "$label" "$secs")")
  echo "<== $label: ${secs}s"
}
summary() {
  local rc=$?
  if ((${#TIMINGS[@]})); then
    echo
    echo "Timings:"
    printf '  %s\n' "${TIMINGS[@]}"
  fi
  if ((rc == 0)); then echo "test.sh: OK"; else echo "test.sh: FAILED (exit $rc)" >&2; fi
}
trap summary EXIT

# ------------------------------------------------------------------- backend

find_python() {
  local candidates=()
  [[ -n "${PYTHON:-}" ]] && candidates+=("$PYTHON")
  candidates+=(python3.11 python3 python)
  local py
  for py in "${candidates[@]}"; do
    if command -v "$py" >/dev/null 2>&1 &&
       "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$py"
      return 0
    fi
  done
  echo "error: Python >= 3.11 not found (set PYTHON=...)" >&2
  return 1
}

PY_RUN=()      # how to run python with the backend's dependencies
setup_backend() {
  local py
  py="$(find_python)"
  echo "python: $py ($("$py" --version 2>&1))"
  local venv="$BACKEND/.venv"
  if [[ -x "$venv/bin/python" ]] && ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    echo "removing a broken venv at $venv"
    rm -rf "$venv"
  fi
  if [[ -x "$venv/bin/python" ]] || "$py" -m venv "$venv" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet \
      -r "$BACKEND/requirements.txt" -r "$BACKEND/requirements-dev.txt"
    PY_RUN=("$venv/bin/python")
  else
    rm -rf "$venv"
    echo "venv module unavailable: installing into backend/.deps with pip --target"
    "$py" -m pip --version >/dev/null 2>&1 || { echo "error: pip is not installed for $py" >&2; return 1; }
    "$py" -m pip install --quiet --upgrade --target "$BACKEND/.deps" \
      -r "$BACKEND/requirements.txt" -r "$BACKEND/requirements-dev.txt"
    PY_RUN=(env "PYTHONPATH=$BACKEND/.deps${PYTHONPATH:+:$PYTHONPATH}" "$py")
  fi
}

run_pytest() {
  (cd "$BACKEND" && "${PY_RUN[@]}" -m pytest -q -p no:cacheprovider)
}

# ------------------------------------------------------------------ frontend

check_node() {
  command -v node >/dev/null 2>&1 || { echo "error: node not found" >&2; return 1; }
  command -v npm >/dev/null 2>&1 || { echo "error: npm not found" >&2; return 1; }
  echo "node: $(node --version), npm: $(npm --version 2>/dev/null)"
  node -e '
    const [maj, min] = process.versions.node.split(".").map(Number);
    if (maj < 20 || (maj === 20 && min < 9)) {
      console.error("error: Next.js 16 needs Node >= 20.9, this is " + process.version);
      process.exit(1);
    }'
}

npm_ci() { (cd "$FRONTEND" && npm ci --no-audit --no-fund); }
npm_build() { (cd "$FRONTEND" && npm run build); }

if [[ "$WHAT" == all || "$WHAT" == backend ]]; then
  step "backend: install dependencies" setup_backend
  step "backend: pytest" run_pytest
fi
if [[ "$WHAT" == all || "$WHAT" == frontend ]]; then
  check_node
  step "frontend: npm ci" npm_ci
  step "frontend: npm run build" npm_build
fi
