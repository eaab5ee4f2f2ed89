#!/usr/bin/env bash
# Latchkey's Python interoperability test: Authlib as the relying party (code flow + PKCE,
# ID token, userinfo, refresh rotation, revocation) against the real binary, on SQLite, and on
# PostgreSQL when LATCHKEY_TEST_POSTGRES_URL is set. See interop/python/README.md.
#
#   interop/python/run.sh             create the venv if needed, build the binary, run the tests
#   LATCHKEY_BIN=path run.sh          test that binary instead of building one
#
# Exits non-zero if anything fails.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PYTHON=${PYTHON:-python3}

log() { printf '==> %s\n' "$*" >&2; }

command -v "$PYTHON" >/dev/null || { echo "run.sh: $PYTHON is not installed" >&2; exit 1; }

# --- The venv: (re)installed when missing or made from another requirements.txt --------------------
cd "$HERE"
VENV=$HERE/.venv
STAMP=$VENV/.latchkey-interop-requirements.txt
if [[ ! -x $VENV/bin/python ]] || ! cmp -s requirements.txt "$STAMP"; then
    log "creating $VENV from requirements.txt"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    timeout 600 "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input \
        -r requirements.txt
    cp requirements.txt "$STAMP"
fi

# --- The binary ----------------------------------------------------------------------------------
if [[ -z ${LATCHKEY_BIN:-} ]]; then
    log "cargo build -p latchkey (debug, target $CARGO_TARGET_DIR)"
    (cd "$ROOT" && cargo build --locked -p latchkey)
    export LATCHKEY_BIN=$CARGO_TARGET_DIR/debug/latchkey
fi
[[ -x $LATCHKEY_BIN ]] || { echo "run.sh: $LATCHKEY_BIN is not an executable" >&2; exit 1; }

# --- The tests -----------------------------------------------------------------------------------
engines=sqlite
[[ -n ${LATCHKEY_TEST_POSTGRES_URL:-} ]] && engines="sqlite postgres"
log "pytest (Latchkey on: $engines; $("$VENV/bin/python" --version))"
status=0
"$VENV/bin/python" -m pytest -p no:cacheprovider -v test_authlib.py || status=$?
if [[ $status -ne 0 ]]; then
    echo "run.sh: the interop tests failed; the server logs are in $HERE/logs/" >&2
fi
exit "$status"
