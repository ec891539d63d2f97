#!/usr/bin/env bash
# fleet.sh -- inventory write throughput: W writers (1, 2, 4) each saving BATCHES batches
# into one inventory, SQLite and PostgreSQL, and the size of the inventory per million
# exchanges. Not a test; nothing here is run by CI.
#
# USAGE
#   benches/fleet.sh [CAPTURE]     # default captures/shop-api-a.pcap (2500 exchanges, 34 endpoints)
#
# Each batch is one `specter analyze CAPTURE --db DB` process: read the capture, observe
# its exchanges into a batch, merge the batch into the stored inventory in one write
# transaction (what a sensor does every flush interval). "merged/s" is exchanges merged
# per second of wall time over all writers; "write ms" is the mean time of one write
# transaction (the merge under the lock), from the analyses' own timing
# (SPECTER_TIMING=1 prints it). The machine's cores are shared by all writers.
#
# ENVIRONMENT
#   BATCHES=40        batches per configuration, split among the writers
#   PG_URL=...        a PostgreSQL database to use (emptied!); default: a throw-away
#                     server started here (initdb/postgres from /usr/lib/postgresql/*/bin,
#                     as nobody when root, fsync on, port 55439)
#   WRITERS="1 2 4"   writer counts to run
#   SPECTER=path      binary (default target/release/specter, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

CAPTURE=${1:-captures/shop-api-a.pcap}
BATCHES=${BATCHES:-40}
SPECTER=${SPECTER:-target/release/specter}
[ -x "$SPECTER" ] || cargo build --release
WORK=$(mktemp -d /tmp/specter-fleet.XXXXXX)
chmod 755 "$WORK"

if [ -z "${PG_URL:-}" ]; then
  BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  RUN=()
  [ "$(id -u)" = 0 ] && RUN=(runuser -u nobody --) && chown nobody "$WORK"
  "${RUN[@]}" "$BIN/initdb" -D "$WORK/pg" -U specter --auth=trust -E UTF8 --no-locale >/dev/null
  "${RUN[@]}" "$BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w \
    -o "-k $WORK -p 55439 -c listen_addresses=127.0.0.1" start >/dev/null
  trap '"${RUN[@]}" "$BIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null; rm -rf "$WORK"' EXIT
  PG_URL=postgres://specter@127.0.0.1:55439/postgres
else
  trap 'rm -rf "$WORK"' EXIT
fi
psql_() { PGOPTIONS="-c client_min_messages=warning" "${BIN:-/usr/bin}/psql" "$PG_URL" -qAtc "$1"; }

EXCHANGES=$("$SPECTER" exchanges --format jsonl "$CAPTURE" | wc -l)
echo "capture $CAPTURE: $EXCHANGES exchanges per batch; $BATCHES batches per configuration"
printf '| backend | writers | batches | exchanges | seconds | merged/s | write ms |\n|---|---|---|---|---|---|---|\n'

reset_db() { # $1 backend
  if [ "$1" = sqlite ]; then rm -f "$WORK"/inv.db*; DB=$WORK/inv.db
  else psql_ "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"; DB=$PG_URL; fi
}

for backend in sqlite postgres; do
  for writers in ${WRITERS:-1 2 4}; do
    reset_db $backend
    per=$(( BATCHES / writers ))
    start=$(date +%s.%N)
    for w in $(seq "$writers"); do
      ( for _ in $(seq "$per"); do
          SPECTER_TIMING=1 "$SPECTER" analyze "$CAPTURE" --db "$DB" 2>>"$WORK/timing.$w" >/dev/null
        done ) &
    done
    wait
    end=$(date +%s.%N)
    total=$(( per * writers ))
    ms=$(cat "$WORK"/timing.* | sed -n 's/.*write transaction \([0-9.]*\) ms.*/\1/p' \
      | awk '{s+=$1; n++} END {if (n) printf "%.1f", s/n; else print "-"}')
    rm -f "$WORK"/timing.*
    awk -v b=$backend -v w=$writers -v t=$total -v x=$EXCHANGES -v s="$start" -v e="$end" -v ms="$ms" \
      'BEGIN {d=e-s; printf "| %s | %d | %d | %d | %.1f | %.0f | %s |\n", b, w, t, t*x, d, t*x/d, ms}'
  done
  # Size: the last configuration's inventory, per million exchanges merged.
  if [ $backend = sqlite ]; then
    "$SPECTER" endpoints --db "$DB" >/dev/null  # checkpoint on close
    bytes=$(du -cb "$WORK"/inv.db* | tail -1 | cut -f1)
    runs=$(sqlite3 "$DB" "SELECT count(*) FROM runs" 2>/dev/null || echo "$total")
  else
    psql_ "VACUUM" || true
    bytes=$(psql_ "SELECT pg_database_size(current_database())")
    empty=$(psql_ "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'")
    bytes="$empty (tables; database with catalogs $bytes)"
  fi
  echo "$backend size after $total batches ($(( total * EXCHANGES )) exchanges): $bytes bytes"
done
