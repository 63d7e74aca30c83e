#!/usr/bin/env bash
# `make bench`: measures this machine and prints the numbers as Markdown rows
# for docs/benchmarks.md. Postgres runs use LOGBOOK_BENCH_POSTGRES_URL (or
# LOGBOOK_TEST_POSTGRES_URL); each run works in a schema of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
logbook=${LOGBOOK_BIN:-bin/logbook}
duration=${BENCH_DURATION:-10s}
pg=${LOGBOOK_BENCH_POSTGRES_URL:-${LOGBOOK_TEST_POSTGRES_URL:-}}

row() { # store producers batch -> markdown row from `bench store --json`
  local json
  json=$("$logbook" bench store --database "$1" --producers "$2" --batch "$3" --duration "$duration" --json)
  python3 -c 'import json,sys; r=json.load(sys.stdin); print("| {store} | {producers} | {batch} | {events_per_s:,.0f} | {p50_ms:.2f} | {p99_ms:.2f} | {verify_events_per_s:,.0f} |".format(**r))' <<<"$json"
}

echo "## bench store ($duration each, $(nproc) cores, $(date -u +%Y-%m-%d))"
echo
echo "| store | producers | batch | events/s | p50 ms | p99 ms | audit verify events/s |"
echo "|---|---|---|---|---|---|---|"
for spec in "1 1" "16 1" "16 100"; do
  # shellcheck disable=SC2086
  row "" $spec
done
if [ -n "$pg" ]; then
  for spec in "1 1" "16 1" "16 100"; do
    # shellcheck disable=SC2086
    row "$pg" $spec
  done
  if command -v pgbench >/dev/null || [ -x "$(ls -d /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | tail -n1)" ]; then
    pgbench=$(command -v pgbench || ls -d /usr/lib/postgresql/*/bin/pgbench | tail -n1)
    script=$(mktemp)
    trap 'rm -f "$script"' EXIT
    echo "INSERT INTO logbook_pgbench_baseline (stream_id, data) VALUES ('bench-1', '{\"n\":1}');" >"$script"
    psql -q "$pg" -c "DROP TABLE IF EXISTS logbook_pgbench_baseline; CREATE TABLE logbook_pgbench_baseline (position bigserial PRIMARY KEY, stream_id text NOT NULL, data json NOT NULL)"
    for clients in 1 16; do
      out=$("$pgbench" -n -c "$clients" -j 2 -T "${duration%s}" -f "$script" "$pg" 2>&1)
      tps=$(grep -oE 'tps = [0-9.]+' <<<"$out" | head -n1 | cut -d' ' -f3)
      lat=$(grep -oE 'latency average = [0-9.]+' <<<"$out" | cut -d' ' -f4)
      echo "| pgbench single-row INSERT baseline | $clients | 1 | $(printf '%.0f' "$tps") | avg $lat | | |"
    done
    psql -q "$pg" -c "DROP TABLE logbook_pgbench_baseline"
  fi
else
  echo
  echo "(Postgres skipped: set LOGBOOK_BENCH_POSTGRES_URL)"
fi

echo
echo "## bench dispatch (RequestReceived to RunRequested, embedded default)"
echo
"$logbook" bench dispatch --n "${BENCH_N:-500}"
"$logbook" bench dispatch --n "${BENCH_N:-500}" --sqlite-sync normal

echo
echo "## bench followers (append throughput with 200 SSE followers open, against none)"
echo
"$logbook" bench followers --rounds 5 --unfollowed --feeds
"$logbook" bench followers --rounds 5 --feeds

echo
echo "## bench exec (docker run, Engine API, fresh, warm, single-use, host), bench refill and bench load"
echo
if docker version >/dev/null 2>&1; then
  "$logbook" bench exec --n "${BENCH_EXEC_N:-30}"
  "$logbook" bench refill --n 60 --starts 1,2,4,8
  "$logbook" bench load --kinds fresh,single,warm --n 200 --inflight 20
  "$logbook" bench load --kinds fresh,single,warm --n 100 --inflight 20 --rate 4
else
  echo "(skipped: no Docker daemon answers)"
fi

echo
echo "## bench slack (a signed Events API delivery of !echo hi to its reply posted, local Web API)"
echo
"$logbook" bench slack --n "${BENCH_N:-300}"

echo
echo "## bench seed, projections rebuild and history pages: see scripts/bench-http.sh and docs/benchmarks.md"
echo "(they seed 1,000,000 runs, which takes minutes; run them on their own)"
