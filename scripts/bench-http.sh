#!/usr/bin/env bash
# The HTTP API under load: seeds RUNS runs (default 1,000,000) into a Postgres
# database of its own with `logbook bench seed`, starts `logbook serve` on it,
# loads GET /v1/history (filtered pages of 50) from another process at 500
# req/s for 30 s with `logbook bench http`, then steps the rate up to find the
# highest one whose p99 stays under 10 ms, and stops the server.
#
#   scripts/bench-http.sh                 # seed, serve, load, sweep
#   REUSE=1 scripts/bench-http.sh         # keep the database seeded last time
#
# Settings: LOGBOOK_BENCH_POSTGRES_URL (a server URL whose database name is
# replaced), BENCH_HTTP_DB (default logbook_bench_http), RUNS, RATE,
# DURATION, STEP, STEP_DURATION, LOGBOOK_BIN. Results go to WORK (default
# /tmp/logbook-bench-http): seed.json, token, machine.txt (load average and
# Postgres settings before measuring), load.json, sweep.json, serve.log.
set -euo pipefail
cd "$(dirname "$0")/.."

logbook=${LOGBOOK_BIN:-bin/logbook}
pg=${LOGBOOK_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
db=${BENCH_HTTP_DB:-logbook_bench_http}
runs=${RUNS:-1000000}
rate=${RATE:-500}
duration=${DURATION:-30s}
step=${STEP:-250}
step_duration=${STEP_DURATION:-10s}
addr=${BENCH_HTTP_ADDR:-127.0.0.1:18080}
work=${WORK:-/tmp/logbook-bench-http}
mkdir -p "$work"

# The database URL: the same server, database $db, tables in public.
base=${pg%%\?*}
query=${pg#"$base"}
admin_url=$pg
url="${base%/*}/$db${query:-?sslmode=disable}&search_path=public"

if [ ! -x "$logbook" ]; then
  make build
fi

if [ "${REUSE:-0}" != 1 ]; then
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  rm -f "$work/token"
  echo "seeding $runs runs into $db (this takes a while: about 13.5 events per run)" >&2
  "$logbook" bench seed --database "$url" --runs "$runs" --queries 200 --json >"$work/seed.json"
fi

# The seed's users have no tokens (and its admin role keeps serve from
# bootstrapping one): issue one for the first seeded user.
if [ ! -s "$work/token" ]; then
  "$logbook" bench token --database "$url" >"$work/token"
fi
token=$(cat "$work/token")

# The seed is history whose requests were decided when it was made: move
# the dispatcher's checkpoint past it, or its first start would decide a
# million requests again (it still folds the log to learn users and tokens).
psql "${url%&search_path=public}" -qc "INSERT INTO checkpoints (name, position) SELECT 'dispatcher', coalesce(max(position), 0) FROM events ON CONFLICT (name) DO UPDATE SET position = excluded.position WHERE checkpoints.position < excluded.position"

LOGBOOK_DATABASE_URL=$url LOGBOOK_HTTP_ADDR=$addr LOGBOOK_RUNTIME=process \
  "$logbook" serve >"$work/serve.out" 2>"$work/serve.log" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT

# Ready once the dispatcher has folded the log far enough to know the token.
for _ in $(seq 1200); do
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://$addr/v1/history?limit=1" || true)
  [ "$status" = 200 ] && break
  kill -0 "$server" 2>/dev/null || { echo "serve stopped; see $work/serve.log" >&2; exit 1; }
  sleep 1
done
[ "$status" = 200 ] || { echo "GET /v1/history still answers $status; see $work/serve.log" >&2; exit 1; }

# On its first start over a seed the dispatcher records the replies the
# seed left unposted; measure only once the log has stopped growing.
log_head() { psql "${url%&search_path=public}" -Atc "SELECT coalesce(max(position), 0) FROM events"; }
last=$(log_head); quiet=0
while [ "$quiet" -lt 3 ]; do
  sleep 2
  now=$(log_head)
  if [ "$now" = "$last" ]; then quiet=$((quiet + 1)); else quiet=0; last=$now; fi
done
echo "the log is quiet at position $last" >&2

# What the numbers depend on, next to them: the load before measuring (the
# generator and the server share the machine) and the Postgres settings.
{
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
  psql "${url%&search_path=public}" -Atc "SELECT name || ' = ' || current_setting(name) FROM pg_settings WHERE name IN ('shared_buffers', 'effective_cache_size', 'work_mem', 'random_page_cost', 'max_connections') ORDER BY name"
  psql "${url%&search_path=public}" -Atc "SELECT version()"
} | tee "$work/machine.txt" >&2

export LOGBOOK_URL=http://$addr LOGBOOK_TOKEN=$token
echo "## constant $rate req/s for $duration" >&2
"$logbook" bench http --rate "$rate" --duration "$duration" --json >"$work/load.json"
python3 - "$work/load.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
for run in r["runs"]:
    print("| {rate} | {seconds:.0f} | {requests:,} | {errors} | {p50_ms:.2f} | {p90_ms:.2f} | {p99_ms:.2f} | {p999_ms:.2f} | {max_ms:.2f} |".format(**run))
EOF
echo "## find-max (step $step every $step_duration, p99 < 10 ms)" >&2
"$logbook" bench http --find-max --start-rate "$step" --step "$step" --step-duration "$step_duration" --json >"$work/sweep.json"
python3 - "$work/sweep.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
for run in r["runs"]:
    print("| {rate} | {seconds:.0f} | {requests:,} | {errors} | {p50_ms:.2f} | {p90_ms:.2f} | {p99_ms:.2f} | {p999_ms:.2f} | {max_ms:.2f} |".format(**run))
print("highest rate with p99 < 10 ms: %d req/s over %d targets" % (r.get("max_rate", 0), r["targets"]))
EOF
