#!/usr/bin/env bash
# Latchkey's Node interoperability test: Ory's Hydra SDK and panva's openid-client against the
# real binary, on SQLite, and on PostgreSQL when LATCHKEY_TEST_POSTGRES_URL is set.
# See interop/node/README.md.
#
#   interop/node/run.sh              install the packages if needed, build the binary, run the tests
#   LATCHKEY_BIN=path run.sh         test that binary instead of building one
#
# Exits non-zero if anything fails.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

log() { printf '==> %s\n' "$*" >&2; }

command -v node >/dev/null || { echo "run.sh: node is not installed (Node.js 20 or later)" >&2; exit 1; }
command -v npm >/dev/null || { echo "run.sh: npm is not installed" >&2; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
if ((node_major < 20)); then
    echo "run.sh: Node.js 20 or later is needed, found $(node --version)" >&2
    exit 1
fi

# --- Packages: npm ci when node_modules is missing or was installed from another lock file --------
cd "$HERE"
STAMP=node_modules/.latchkey-interop-lock.json
if [[ ! -d node_modules ]] || ! cmp -s package-lock.json "$STAMP"; then
    log "npm ci (interop/node)"
    timeout 600 npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json "$STAMP"
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
log "node --test (Latchkey on: $engines; Node $(node --version))"
status=0
node --test --test-concurrency=1 test/*.test.mjs || status=$?
if [[ $status -ne 0 ]]; then
    echo "run.sh: the interop tests failed; the server logs are in $HERE/logs/" >&2
fi
exit "$status"
