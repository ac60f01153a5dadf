# Sourced by the scripts: make sure .venv exists and holds the project with its dev extra.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${KVRAFT_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
    echo "==> creating virtualenv in $VENV" >&2
    python3 -m venv "$VENV"
fi
STAMP="$VENV/.kvraft-installed"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
    echo "==> installing kvraft with its dev extra" >&2
    if ! { "$PY" -m pip install --quiet --upgrade pip &&
           "$PY" -m pip install --quiet -e "$ROOT[dev]"; } >"$VENV/install.log" 2>&1; then
        cat "$VENV/install.log" >&2
        echo "error: installing kvraft failed (log above, also in $VENV/install.log)" >&2
        exit 1
    fi
    touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
