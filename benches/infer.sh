#!/usr/bin/env bash
# infer.sh -- what inference costs: `specter analyze` against `specter exchanges` on the
# same capture, interleaved runs, median user CPU seconds, peak RSS and the ratio.
#
# USAGE  [THREADS=1] benches/infer.sh [CAPTURE] [RUNS]
#   CAPTURE  default /work/bench-data/http1-api.pcap (benches/make-capture.sh makes it)
#   RUNS     default 5
#   THREADS  analysis threads of both commands (default 1: what inference costs, not how
#            it spreads)
# Needs GNU time (/usr/bin/time). Builds the release binary first.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CAPTURE="${1:-/work/bench-data/http1-api.pcap}"
RUNS="${2:-5}"
THREADS="${THREADS:-1}"
[ -f "$CAPTURE" ] || { echo "infer.sh: no capture $CAPTURE (benches/make-capture.sh)" >&2; exit 1; }
cargo build --release --quiet --manifest-path "$HERE/../Cargo.toml"
BIN="$HERE/../target/release/specter"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
for i in $(seq "$RUNS"); do
  /usr/bin/time -f "%U %M" -o "$TMP/ex.$i" "$BIN" exchanges --threads "$THREADS" --format jsonl "$CAPTURE" >/dev/null
  rm -f "$TMP"/inv.db*
  /usr/bin/time -f "%U %M" -o "$TMP/an.$i" "$BIN" analyze --threads "$THREADS" --db "$TMP/inv.db" "$CAPTURE" 2>/dev/null
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ex_cpu=$(cat "$TMP"/ex.* | awk '{print $1}' | median)
an_cpu=$(cat "$TMP"/an.* | awk '{print $1}' | median)
ex_rss=$(cat "$TMP"/ex.* | awk '{print $2}' | sort -n | tail -1)
an_rss=$(cat "$TMP"/an.* | awk '{print $2}' | sort -n | tail -1)
printf '%-10s %12s %14s\n' command "user CPU (s)" "peak RSS (KB)"
printf '%-10s %12s %14s\n' exchanges "$ex_cpu" "$ex_rss"
printf '%-10s %12s %14s\n' analyze "$an_cpu" "$an_rss"
awk -v a="$an_cpu" -v e="$ex_cpu" 'BEGIN {printf "analyze / exchanges = %.2f (median of '"$RUNS"' runs each)\n", a / e}'
