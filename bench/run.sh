#!/usr/bin/env bash
# Latchkey's side-by-side benchmark (issue 7). See bench/README.md.
#
# One run measures, on this machine and over loopback only:
#   latchkey-sqlite    Latchkey (release build) on SQLite in a fresh temporary data directory
#   latchkey-postgres  Latchkey on a fresh PostgreSQL database (127.0.0.1:5432, user postgres)
#   oidc-provider      node-oidc-provider, installed into bench/peers/ with npm
#   bare-http          a hyper server doing no work (the HTTP limit)
#   sqlite-insert      SQLite's single-row insert rate (the SQLite limit)
#   postgres-insert    PostgreSQL's single-row insert rate, with pgbench (the PostgreSQL limit)
# then writes bench/results/latest.json and bench/results/latest.md, where every figure is set
# against the others of the same run.
#
#   bench/run.sh                 the full run (about 10 minutes on 2 cores, builds included)
#   bench/run.sh --smoke         every scenario for 2 s against Latchkey on SQLite only (debug
#                                build); exits non-zero if any request failed. For CI.
#   bench/run.sh --help          all options
#
# Everything the script starts is stopped when it ends, whether it succeeds or not.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/run.sh [options]

  --smoke               every scenario briefly, Latchkey on SQLite only, debug build; fails on any
                        error (results in bench/results/smoke.{json,md})
  --duration SECONDS    measured seconds per scenario and mode (default 5; smoke 2)
  --warmup SECONDS      unmeasured seconds before each measurement (default 1; smoke 0.5)
  --concurrency N       closed-loop workers (default 16; smoke 4); the open loop allows 2N in flight
  --open-fraction F     open-loop rate as a fraction of each server's closed-loop peak (default 0.5)
  --targets LIST        space-separated subset of: latchkey-sqlite latchkey-postgres oidc-provider
                        bare-http limits (default: all)
  --scenarios LIST      space-separated subset of: client-credentials client-credentials-jwt
                        introspect refresh auth-code revoke (default: all)
  --debug               use a debug build (figures are then meaningless; for trying the script)
  --out DIR             where to write the report (default bench/results)
  --postgres URL        server URL without a database (default postgres://postgres@127.0.0.1:5432)
  -h, --help            this text
EOF
}

SMOKE=0
DURATION=""
WARMUP=""
CONCURRENCY=""
OPEN_FRACTION=0.5
TARGETS="latchkey-sqlite latchkey-postgres oidc-provider bare-http limits"
SCENARIOS="client-credentials client-credentials-jwt introspect refresh auth-code revoke"
PROFILE=release
OUT_DIR=""
PG_SERVER=postgres://postgres@127.0.0.1:5432

while [[ $# -gt 0 ]]; do
    case "$1" in
        --smoke) SMOKE=1 ;;
        --duration) DURATION=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --concurrency) CONCURRENCY=$2; shift ;;
        --open-fraction) OPEN_FRACTION=$2; shift ;;
        --targets) TARGETS=$2; shift ;;
        --scenarios) SCENARIOS=$2; shift ;;
        --debug) PROFILE=debug ;;
        --out) OUT_DIR=$2; shift ;;
        --postgres) PG_SERVER=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

if [[ $SMOKE == 1 ]]; then
    DURATION=${DURATION:-2}
    WARMUP=${WARMUP:-0.5}
    CONCURRENCY=${CONCURRENCY:-4}
    TARGETS="latchkey-sqlite"
    PROFILE=debug
    REPORT_NAME=smoke
else
    DURATION=${DURATION:-5}
    WARMUP=${WARMUP:-1}
    CONCURRENCY=${CONCURRENCY:-16}
    REPORT_NAME=latest
fi
OPEN_CONCURRENCY=$((CONCURRENCY * 2))
# A run can never outlast its scenario by much: setup, warm-up, measurement, the open loop's
# grace period and one request timeout, with room to spare.
RUN_TIMEOUT=$(awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN { printf "%d", 2 * (d + w) + 90 }')

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT_DIR=${OUT_DIR:-$ROOT/bench/results}
mkdir -p "$OUT_DIR"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-bench.XXXXXX")
RESULTS=$WORK/results.jsonl
touch "$RESULTS"
STARTED=()      # PIDs of every server this script started
PG_DB=""        # the scratch database, dropped at the end
FAILURES=()     # scenario runs that did not complete cleanly
NOTES=()        # lines added to the report
CHILD=""        # the load generator or pgbench, while one runs

log() { printf '==> %s\n' "$*" >&2; }

# Stops one process: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    [[ -n $CHILD ]] && stop_pid "$CHILD"
    for pid in "${STARTED[@]}"; do
        stop_pid "$pid"
    done
    if [[ -n $PG_DB ]]; then
        psql "$PG_SERVER/postgres" -qAt -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" \
            >/dev/null 2>&1 || echo "run.sh: could not drop database $PG_DB" >&2
    fi
    if [[ $status -ne 0 ]]; then
        mkdir -p "$OUT_DIR/logs"
        cp "$WORK"/*.log "$OUT_DIR/logs/" 2>/dev/null || true
        cp "$RESULTS" "$OUT_DIR/logs/" 2>/dev/null || true
        echo "run.sh: failed; server logs and raw results are in $OUT_DIR/logs/" >&2
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Build -----------------------------------------------------------------------------------------
# The server and the load generator are built separately so that the bench's dependencies cannot
# change the features the server is compiled with.
if [[ $PROFILE == release ]]; then
    log "building Latchkey and the load generator (release)"
    cargo build --release --locked -p latchkey
    cargo build --release --locked -p latchkey-bench
    BIN=$CARGO_TARGET_DIR/release
else
    log "building Latchkey and the load generator (debug)"
    cargo build --locked -p latchkey
    cargo build --locked -p latchkey-bench
    BIN=$CARGO_TARGET_DIR/debug
fi
BENCH=$BIN/latchkey-bench

# --- Helpers ---------------------------------------------------------------------------------------
# Runs a command in the background and waits for it: a signal then stops the script at once
# instead of after the command.
run_child() {
    "$@" &
    CHILD=$!
    local status=0
    wait "$CHILD" || status=$?
    CHILD=""
    return "$status"
}

want_target() { [[ " $TARGETS " == *" $1 "* ]]; }
want_scenario() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# run_scenarios NAME SCENARIOS -- FLAGS...: each scenario closed loop, then open loop at
# OPEN_FRACTION of the closed-loop peak just measured.
run_scenarios() {
    local name=$1 supported=$2
    shift 3
    local scenario rate extra=()
    [[ $SMOKE == 1 ]] && extra+=(--fail-on-error)
    for scenario in $supported; do
        want_scenario "$scenario" || continue
        log "$name: $scenario, closed loop ($CONCURRENCY workers, ${DURATION}s)"
        if ! run_child timeout "$RUN_TIMEOUT" "$BENCH" run --target "$name" --scenario "$scenario" \
            --mode closed --concurrency "$CONCURRENCY" --duration "$DURATION" \
            --warmup "$WARMUP" --out "$RESULTS" "${extra[@]}" "$@"; then
            FAILURES+=("$name $scenario closed")
            continue
        fi
        rate=$("$BENCH" query --results "$RESULTS" --target "$name" --scenario "$scenario" \
            --mode closed --field throughput 2>/dev/null || echo 0)
        rate=$(awk -v r="$rate" -v f="$OPEN_FRACTION" 'BEGIN { printf "%.1f", r * f }')
        if awk -v r="$rate" 'BEGIN { exit !(r < 1) }'; then
            FAILURES+=("$name $scenario open (no closed-loop peak to start from)")
            continue
        fi
        log "$name: $scenario, open loop ($rate/s)"
        if ! run_child timeout "$RUN_TIMEOUT" "$BENCH" run --target "$name" --scenario "$scenario" \
            --mode open --rate "$rate" --concurrency "$OPEN_CONCURRENCY" --duration "$DURATION" \
            --warmup "$WARMUP" --out "$RESULTS" "${extra[@]}" "$@"; then
            FAILURES+=("$name $scenario open")
        fi
    done
}

# start_latchkey NAME [DATABASE_URL]: starts Latchkey, sets LK_PID, LK_PUBLIC, LK_ADMIN.
start_latchkey() {
    local name=$1 database=${2:-}
    local data=$WORK/$name-data public_port admin_port
    mkdir -p "$data"
    public_port=$("$BENCH" free-port)
    admin_port=$("$BENCH" free-port)
    local args=(serve --public-addr "127.0.0.1:$public_port" --admin-addr "127.0.0.1:$admin_port"
        --data-dir "$data")
    [[ -n $database ]] && args+=(--database-url "$database")
    # An external login/consent provider that is never visited: the harness accepts login and
    # consent through the admin API and reads the challenges from the redirects. Logs at warn:
    # the peers log nothing per request either. Rate limits off: every request comes from one
    # address and one client, and the peers have no limiter either.
    LATCHKEY_URLS__LOGIN=http://127.0.0.1:9/login \
        LATCHKEY_URLS__CONSENT=http://127.0.0.1:9/consent \
        LATCHKEY_LOG__LEVEL=warn \
        LATCHKEY_RATE_LIMITS__ENABLED=false \
        "$BIN/latchkey" "${args[@]}" >"$WORK/$name.log" 2>&1 &
    LK_PID=$!
    STARTED+=("$LK_PID")
    LK_PUBLIC=http://127.0.0.1:$public_port
    LK_ADMIN=http://127.0.0.1:$admin_port
    "$BENCH" wait-ready --pid "$LK_PID" --timeout 60 \
        --url "$LK_PUBLIC/health/ready" --url "$LK_ADMIN/admin/health/ready" || {
        cat "$WORK/$name.log" >&2
        return 1
    }
    log "$name: pid $LK_PID, public $LK_PUBLIC, admin $LK_ADMIN"
}

ALL_SCENARIOS="client-credentials client-credentials-jwt introspect refresh auth-code revoke"

bench_latchkey() {
    local name=$1 database=${2:-} aux=()
    start_latchkey "$name" "$database"
    [[ -n $database ]] && aux=(--aux-comm postgres)
    run_scenarios "$name" "$ALL_SCENARIOS" -- --public-url "$LK_PUBLIC" --admin-url "$LK_ADMIN" \
        --server-pid "$LK_PID" "${aux[@]}"
    stop_pid "$LK_PID"
}

pg_available() {
    command -v psql >/dev/null && psql "$PG_SERVER/postgres" -qAt -c 'SELECT 1' >/dev/null 2>&1
}

create_pg_db() {
    if [[ -z $PG_DB ]]; then
        PG_DB=latchkey_bench_$$
        psql "$PG_SERVER/postgres" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE $PG_DB" >/dev/null
    fi
}

# --- Latchkey on SQLite ----------------------------------------------------------------------------
if want_target latchkey-sqlite; then
    bench_latchkey latchkey-sqlite
fi

# --- Latchkey on PostgreSQL ------------------------------------------------------------------------
if want_target latchkey-postgres; then
    if pg_available; then
        create_pg_db
        log "latchkey-postgres: migrating $PG_DB"
        "$BIN/latchkey" migrate up --database-url "$PG_SERVER/$PG_DB" >"$WORK/migrate.log" 2>&1 || {
            cat "$WORK/migrate.log" >&2
            exit 1
        }
        bench_latchkey latchkey-postgres "$PG_SERVER/$PG_DB"
        NOTES+=("latchkey-postgres: 'DB CPU' is the CPU of every process named postgres on the machine during the run")
    else
        log "PostgreSQL is not reachable at $PG_SERVER: latchkey-postgres skipped"
        NOTES+=("latchkey-postgres: skipped, PostgreSQL not reachable")
    fi
fi

# --- node-oidc-provider ----------------------------------------------------------------------------
if want_target oidc-provider; then
    if command -v node >/dev/null && command -v npm >/dev/null; then
        peer=$ROOT/bench/peers/oidc-provider
        source_dir=$ROOT/bench/peers-src/oidc-provider
        mkdir -p "$peer"
        if [[ ! -d $peer/node_modules ]] || ! cmp -s "$source_dir/package-lock.json" "$peer/package-lock.json"; then
            log "oidc-provider: npm ci into $peer"
            cp "$source_dir/package.json" "$source_dir/package-lock.json" "$peer/"
            (cd "$peer" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
        fi
        cp "$source_dir/server.mjs" "$peer/"
        port=$("$BENCH" free-port)
        secret=bench-secret-$RANDOM$RANDOM$RANDOM$RANDOM
        NODE_ENV=production node "$peer/server.mjs" --port "$port" --client-secret "$secret" \
            >"$WORK/oidc-provider.log" 2>&1 &
        node_pid=$!
        STARTED+=("$node_pid")
        "$BENCH" wait-ready --pid "$node_pid" --timeout 60 \
            --url "http://127.0.0.1:$port/.well-known/openid-configuration" || {
            cat "$WORK/oidc-provider.log" >&2
            exit 1
        }
        log "oidc-provider: pid $node_pid, http://127.0.0.1:$port ($(node --version))"
        run_scenarios oidc-provider "$ALL_SCENARIOS" -- --public-url "http://127.0.0.1:$port" \
            --auth-path /auth --token-path /token --revoke-path /token/revocation \
            --introspect-url "http://127.0.0.1:$port/token/introspection" --introspect-auth client \
            --client "bench:$secret" --jwt-client "bench-jwt:$secret" --flow browser \
            --server-pid "$node_pid"
        stop_pid "$node_pid"
        version=$(sed -n 's/^  "version": "\(.*\)".*/\1/p' "$peer/node_modules/oidc-provider/package.json" | head -1)
        NOTES+=("oidc-provider $version on Node.js $(node --version), in-memory adapter; its login and consent are an endpoint of its own app that accepts at once (auth-code steps: authorize, login, login-resume, consent, consent-resume, token)")
    else
        log "node or npm not found: oidc-provider skipped"
        NOTES+=("oidc-provider: skipped, node/npm not found")
    fi
fi

# --- The physical limits ---------------------------------------------------------------------------
if want_target bare-http; then
    body=$("$BENCH" query --results "$RESULTS" --target latchkey-sqlite \
        --scenario client-credentials --field token_body_bytes 2>/dev/null || echo 180)
    body=${body%.*}
    port=$("$BENCH" free-port)
    "$BIN/latchkey-bench-bare" --addr "127.0.0.1:$port" --body-bytes "$body" \
        >"$WORK/bare-http.log" 2>&1 &
    bare_pid=$!
    STARTED+=("$bare_pid")
    "$BENCH" wait-ready --pid "$bare_pid" --timeout 30 --url "http://127.0.0.1:$port/"
    log "bare-http: pid $bare_pid, $body-byte body"
    SCENARIOS_SAVED=$SCENARIOS
    SCENARIOS=client-credentials
    run_scenarios bare-http client-credentials -- --public-url "http://127.0.0.1:$port" \
        --client bare:bare --server-pid "$bare_pid"
    SCENARIOS=$SCENARIOS_SAVED
    stop_pid "$bare_pid"
fi

if want_target limits; then
    log "sqlite-insert: ${DURATION}s"
    "$BENCH" sqlite-insert --path "$WORK/sqlite-insert.db" --duration "$DURATION" --out "$RESULTS"
    if pg_available && command -v pgbench >/dev/null; then
        create_pg_db
        psql "$PG_SERVER/$PG_DB" -qAt -v ON_ERROR_STOP=1 -c "CREATE TABLE bench_insert (
            token_hash bytea PRIMARY KEY, client_id text NOT NULL, scope text NOT NULL,
            issued_at bigint NOT NULL, expires_at bigint NOT NULL)" >/dev/null
        cat >"$WORK/insert.sql" <<'EOF'
INSERT INTO bench_insert (token_hash, client_id, scope, issued_at, expires_at)
VALUES (uuid_send(gen_random_uuid()), 'bench-client', 'openid offline_access', 1700000000, 1700003600);
EOF
        log "postgres-insert: pgbench, $CONCURRENCY clients, ${DURATION}s"
        duration_int=$(awk -v d="$DURATION" 'BEGIN { printf "%d", (d < 1 ? 1 : d) }')
        run_child timeout "$RUN_TIMEOUT" pgbench -n -f "$WORK/insert.sql" -c "$CONCURRENCY" -j 2 \
            -T "$duration_int" "$PG_SERVER/$PG_DB" >"$WORK/pgbench.log" 2>&1 || {
            cat "$WORK/pgbench.log" >&2
            exit 1
        }
        tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$WORK/pgbench.log" | head -1)
        "$BENCH" limit --out "$RESULTS" --name postgres-insert --ops-per-s "$tps" \
            --detail "pgbench, $CONCURRENCY clients, one single-row INSERT per transaction, $(psql "$PG_SERVER/postgres" -qAt -c 'SHOW server_version' | cut -d' ' -f1)"
    else
        NOTES+=("postgres-insert: skipped, PostgreSQL or pgbench not available")
    fi
fi

# --- Report ----------------------------------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mem=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
revision=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain -- crates 2>/dev/null) ]]; then
    revision="$revision (with uncommitted changes)"
fi
report_args=(
    --results "$RESULTS"
    --json "$OUT_DIR/$REPORT_NAME.json"
    --markdown "$OUT_DIR/$REPORT_NAME.md"
    --generated-at "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    --machine "$(nproc) cores ($cpu), $mem, $(uname -sr); servers and load generator share the machine"
    --settings "Latchkey $revision, $PROFILE build; ${DURATION}s measured after ${WARMUP}s warm-up; closed loop $CONCURRENCY workers; open loop at $OPEN_FRACTION of each server's closed-loop peak, up to $OPEN_CONCURRENCY in flight"
)
for note in "${NOTES[@]}"; do
    report_args+=(--note "$note")
done
"$BENCH" report "${report_args[@]}"
cp "$RESULTS" "$OUT_DIR/$REPORT_NAME.jsonl"

if [[ ${#FAILURES[@]} -gt 0 ]]; then
    printf 'run.sh: these runs failed or had errors:\n' >&2
    printf '  %s\n' "${FAILURES[@]}" >&2
    exit 1
fi
log "done: $OUT_DIR/$REPORT_NAME.md"
