#!/usr/bin/env bash
# The online-migration benchmark (issue 23; not a timed test). See bench/README.md.
#
# Fills a scratch PostgreSQL database with N access tokens (default 10 million), starts Latchkey on
# it, runs client-credentials and introspection traffic, and while it runs applies a realistic
# migration (bench/migration-sample.sql: a column added, an index built CONCURRENTLY) the way
# Latchkey's migrator does: every statement with lock_timeout 500 ms, retried when it times out.
# A sampler reads pg_stat_activity every 100 ms for queries waiting on a lock. Reports the
# traffic's P99 during the migration, the longest any query waited on a lock, and how long the
# migration took.
#
#   bench/migration.sh               10 million tokens, release build
#   bench/migration.sh --smoke       50 000 tokens, debug build (CI)
#   bench/migration.sh --tokens N --duration S
set -euo pipefail
cd "$(dirname "$0")/.."

TOKENS=10000000
DURATION=""
PROFILE=release
PG_SERVER=postgres://postgres@127.0.0.1:5432
OUT=bench/results/migration.md
while [[ $# -gt 0 ]]; do
    case "$1" in
        --smoke) TOKENS=50000; PROFILE=debug; OUT=bench/results/migration-smoke.md ;;
        --tokens) TOKENS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --postgres) PG_SERVER=$2; shift ;;
        --out) OUT=$2; shift ;;
        -h | --help) sed -n 2,15p "$0"; exit 0 ;;
        *) echo "migration.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
# Traffic runs this long; the migration starts 2 s in.
DURATION=${DURATION:-$([[ $PROFILE == debug ]] && echo 8 || echo 120)}

log() { printf '==> %s\n' "$*" >&2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-migbench.XXXXXX")
DB=latchkey_migbench_$$
STARTED=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${STARTED[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    psql "$PG_SERVER/postgres" -qAt -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    [[ $status -ne 0 ]] && echo "migration.sh: failed; logs in $WORK" >&2
    [[ $status -eq 0 ]] && rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT INT TERM

if ! psql "$PG_SERVER/postgres" -qAt -c 'SELECT 1' >/dev/null 2>&1; then
    echo "migration.sh: skipped: no PostgreSQL at $PG_SERVER" >&2
    exit 0
fi

log "building ($PROFILE)"
if [[ $PROFILE == release ]]; then
    cargo build --release --locked -p latchkey -p latchkey-bench >&2
else
    cargo build --locked -p latchkey -p latchkey-bench >&2
fi
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
BIN=$target_dir/$PROFILE
BENCH=$BIN/latchkey-bench

psql "$PG_SERVER/postgres" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE $DB" >/dev/null
URL=$PG_SERVER/$DB
PUBLIC_PORT=$("$BENCH" free-port)
ADMIN_PORT=$("$BENCH" free-port)
LATCHKEY_URLS__LOGIN=http://127.0.0.1:9/login LATCHKEY_URLS__CONSENT=http://127.0.0.1:9/consent \
    LATCHKEY_LOG__LEVEL=warn LATCHKEY_RATE_LIMITS__ENABLED=false LATCHKEY_JANITOR__ENABLED=false \
    "$BIN/latchkey" serve --migrate --database-url "$URL" --data-dir "$WORK/data" \
    --public-addr "127.0.0.1:$PUBLIC_PORT" --admin-addr "127.0.0.1:$ADMIN_PORT" >"$WORK/server.log" 2>&1 &
STARTED+=($!)
PUBLIC=http://127.0.0.1:$PUBLIC_PORT
ADMIN=http://127.0.0.1:$ADMIN_PORT
"$BENCH" wait-ready --timeout 60 --url "$PUBLIC/health/ready" --url "$ADMIN/admin/health/ready"

log "filling $TOKENS access tokens"
psql "$URL" -qAt -v ON_ERROR_STOP=1 <<SQL >/dev/null
INSERT INTO clients (id, token_endpoint_auth_method, created_at, updated_at)
VALUES ('migbench-filler', 'client_secret_basic', 0, 0);
SQL
fill_start=$(date +%s)
done_rows=0
while [[ $done_rows -lt $TOKENS ]]; do
    chunk=$((TOKENS - done_rows < 1000000 ? TOKENS - done_rows : 1000000))
    psql "$URL" -qAt -v ON_ERROR_STOP=1 -c "INSERT INTO access_tokens (token_hash, client_id, family_id, subject, scope, audience, data, issued_at, expires_at)
        SELECT 'filler-' || g, 'migbench-filler', 'filler-' || g, 'user-' || (g % 100000), 'dns.read', '[]', '{}',
               CAST(EXTRACT(EPOCH FROM now()) AS BIGINT), CAST(EXTRACT(EPOCH FROM now()) AS BIGINT) + 2592000
        FROM generate_series($((done_rows + 1)), $((done_rows + chunk))) AS g" >/dev/null
    done_rows=$((done_rows + chunk))
    log "  $done_rows rows"
done
psql "$URL" -qAt -c "VACUUM ANALYZE access_tokens" >/dev/null
fill_seconds=$(($(date +%s) - fill_start))

log "traffic for ${DURATION}s: client-credentials and introspection"
RESULTS=$WORK/results.jsonl
for scenario in client-credentials introspect; do
    "$BENCH" run --target latchkey-postgres --scenario "$scenario" --mode closed --concurrency 4 \
        --duration "$DURATION" --warmup 0.5 --public-url "$PUBLIC" --admin-url "$ADMIN" \
        --introspect-pool 500 --out "$RESULTS" >"$WORK/$scenario.log" 2>&1 &
    STARTED+=($!)
    TRAFFIC+=($!)
done

# The sampler: the longest wait on a lock by any query but the migration's own, in ms.
(
    max=0
    while true; do
        w=$(psql "$URL" -qAt -c "SELECT COALESCE(MAX(CAST(EXTRACT(EPOCH FROM clock_timestamp() - query_start) * 1000 AS BIGINT)), 0)
            FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
            AND pid <> pg_backend_pid() AND application_name <> 'latchkey-migration'" 2>/dev/null || echo 0)
        [[ $w -gt $max ]] && max=$w && echo "$max" >"$WORK/max_blocked_ms"
        sleep 0.1
    done
) &
SAMPLER=$!
STARTED+=($SAMPLER)
echo 0 >"$WORK/max_blocked_ms"

sleep 2
log "applying bench/migration-sample.sql (lock_timeout 500 ms, retried)"
mig_start=$(date +%s.%N)
retries=0
while IFS= read -r statement; do
    [[ -z $statement ]] && continue
    until PGAPPNAME=latchkey-migration psql "$URL" -qAt -v ON_ERROR_STOP=1 \
        -c "SET lock_timeout = 500" -c "$statement" >>"$WORK/migration.log" 2>&1; do
        if grep -q "lock timeout" "$WORK/migration.log"; then
            retries=$((retries + 1))
            : >"$WORK/migration.log"
            sleep 0.2
        else
            cat "$WORK/migration.log" >&2
            exit 1
        fi
    done
done < <(grep -v '^--' bench/migration-sample.sql | tr '\n' ' ' | tr ';' '\n' | sed 's/^ *//')
mig_seconds=$(awk -v s="$mig_start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
log "migration done in ${mig_seconds}s ($retries lock-timeout retries)"

for pid in "${TRAFFIC[@]}"; do wait "$pid"; done
kill "$SAMPLER" 2>/dev/null || true
max_blocked=$(cat "$WORK/max_blocked_ms")

p99() { grep "\"scenario\":\"$1\"" "$RESULTS" | sed -n 's/.*"p99_ms":\([0-9.]*\).*/\1/p' | tail -1; }
errors() { grep "\"scenario\":\"$1\"" "$RESULTS" | sed -n 's/.*"errors":\([0-9]*\).*/\1/p' | tail -1; }
mkdir -p "$(dirname "$OUT")"
cat >"$OUT" <<EOF
# Online migration benchmark

$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, PostgreSQL $(psql "$URL" -qAt -c 'SHOW server_version'), $PROFILE build.

| | |
| --- | --- |
| access tokens in the table | $TOKENS (filled in ${fill_seconds}s) |
| migration (bench/migration-sample.sql) | ${mig_seconds}s, $retries lock-timeout retries |
| client-credentials P99 during the run | $(p99 client-credentials) ms ($(errors client-credentials) errors) |
| introspection P99 during the run | $(p99 introspect) ms ($(errors introspect) errors) |
| longest wait on a lock (any query, sampled every 100 ms) | ${max_blocked} ms |
EOF
cat "$OUT"
if [[ $max_blocked -gt 1000 ]]; then
    echo "migration.sh: a query waited ${max_blocked} ms on a lock (goal: under 1 s)" >&2
    exit 1
fi
