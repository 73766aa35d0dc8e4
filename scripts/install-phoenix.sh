#!/usr/bin/env bash
# Installs Arize Phoenix, the real OTLP receiver the end-to-end tests export to, into a
# virtual environment of its own, and prints the path of its `phoenix` executable:
#
#   bash scripts/install-phoenix.sh            # -> <repo>/.phoenix-venv/bin/phoenix
#   PHOENIX_VENV=/somewhere bash scripts/install-phoenix.sh
#
# Idempotent: pip runs only when the venv has no `phoenix` or not the pinned version, so
# a second run takes well under a second. Needs `python3` (3.10 to 3.13) and access to
# the package registry pip is configured for; nothing else. The tests find the
# executable through $SPANLAB_PHOENIX, else at <repo>/.phoenix-venv/bin/phoenix.
set -euo pipefail

# The pinned version: bump it here (the tests read Phoenix's REST API, whose span JSON
# shape they assert, so check them after a bump).
PHOENIX_VERSION="20.26.1"

repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${PHOENIX_VENV:-$repo/.phoenix-venv}"
[[ "$venv" == /* ]] || venv="$PWD/$venv"
python="${PYTHON:-python3}"
phoenix="$venv/bin/phoenix"

installed_version() {
    "$venv/bin/python" - <<'EOF' 2>/dev/null
from importlib.metadata import version
print(version("arize-phoenix"))
EOF
}

if [[ -x "$phoenix" && "$(installed_version || true)" == "$PHOENIX_VERSION" ]]; then
    echo "$phoenix"
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv" >&2
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "arize-phoenix==$PHOENIX_VERSION" >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-phoenix.sh: pip install arize-phoenix==$PHOENIX_VERSION failed" >&2
    exit 1
fi

if [[ ! -x "$phoenix" || "$(installed_version || true)" != "$PHOENIX_VERSION" ]]; then
    echo "install-phoenix.sh: $phoenix missing after the install" >&2
    exit 1
fi
echo "$phoenix"
