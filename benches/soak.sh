#!/usr/bin/env bash
# Soak benchmark for the live sensor (not a test): replays a capture in a loop into a veth
# pair between two network namespaces with tcpreplay, with `specter sensor` capturing on
# the other end, for DURATION seconds at RATE Mbit/s (or as fast as tcpreplay can with
# RATE=top). Samples the sensor's resident memory every 10 s and prints, at the end,
# what tcpreplay sent, what the sensor saw, its kernel/interface drops, peak RSS and
# whether RSS stayed flat (last sample within 10% of the one at 1 minute).
#
#   sudo benches/soak.sh [CAPTURE] [RATE] [DURATION]
#   sudo RATE=400 DURATION=600 benches/soak.sh captures/load-wrk.pcap
#
# Needs root, iproute2, tcpreplay, and the sensor built with the live feature:
#   cargo build --release --features live --target-dir target/live
# To find the highest rate with zero drops, run it at rising rates for a minute
# (DURATION=60) and keep the last without drops for the long run.
set -euo pipefail
cd "$(dirname "$0")/.."

CAPTURE=${1:-captures/load-wrk.pcap}
RATE=${2:-${RATE:-200}}
DURATION=${3:-${DURATION:-600}}
MAX_MEMORY=${MAX_MEMORY:-256M}
# More sensor options, e.g. SENSOR_ARGS="--threads 1".
read -r -a SENSOR_ARGS <<<"${SENSOR_ARGS:-}"
BIN=${SPECTER_LIVE_BIN:-target/live/release/specter}
[ -x "$BIN" ] || { echo "build first: cargo build --release --features live --target-dir target/live" >&2; exit 2; }

TAG=$$
NS_TX=soaktx$TAG NS_RX=soakrx$TAG IF_TX=sktx$TAG IF_RX=skrx$TAG
WORK=$(mktemp -d)
cleanup() {
  [ -n "${SENSOR:-}" ] && kill "$SENSOR" 2>/dev/null || true
  ip netns del "$NS_TX" 2>/dev/null || true
  ip netns del "$NS_RX" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$NS_TX"; ip netns add "$NS_RX"
ip link add "$IF_TX" netns "$NS_TX" type veth peer name "$IF_RX" netns "$NS_RX"
for pair in "$NS_TX $IF_TX" "$NS_RX $IF_RX"; do
  set -- $pair
  ip -n "$1" link set "$2" mtu 65535
  ip -n "$1" link set "$2" up
done

ip netns exec "$NS_RX" "$BIN" sensor -i "$IF_RX" --db "$WORK/soak.db" \
  --flush-interval 30s --max-memory "$MAX_MEMORY" --log-file "$WORK/sensor.log" ${SENSOR_ARGS[@]+"${SENSOR_ARGS[@]}"} \
  2>"$WORK/sensor.err" &
SENSOR=$!
sleep 2

if [ "$RATE" = top ]; then SPEED=(--topspeed); else SPEED=(--mbps "$RATE"); fi
ip netns exec "$NS_TX" tcpreplay -i "$IF_TX" "${SPEED[@]}" --loop 0 --duration "$DURATION" \
  "$CAPTURE" >"$WORK/tcpreplay.out" 2>&1 &
REPLAY=$!

echo "t_s rss_kib" >"$WORK/rss.tsv"
START=$(date +%s)
while kill -0 "$REPLAY" 2>/dev/null; do
  RSS=$(awk '/^VmRSS:/ {print $2}' /proc/$SENSOR/status 2>/dev/null || echo 0)
  echo "$(( $(date +%s) - START )) $RSS" >>"$WORK/rss.tsv"
  sleep 10
done
wait "$REPLAY" || true
sleep 2
kill -TERM "$SENSOR"; wait "$SENSOR" || true; SENSOR=

echo "== tcpreplay"; grep -E "Actual|Rated|Statistics|Successful|Failed|Truncated|Retried" "$WORK/tcpreplay.out" || cat "$WORK/tcpreplay.out"
echo "== sensor"; tail -1 "$WORK/sensor.err"
echo "== last status line"; grep "inventory flushed" "$WORK/sensor.log" | tail -1
echo "== resident memory (KiB) every 10 s"; tr '\n' ' ' <"$WORK/rss.tsv"; echo
awk 'NR > 1 { n++; v[n] = $2; if ($2 > peak) peak = $2 }
     END { base = (n >= 7 ? v[7] : v[n]); last = v[n];
           printf "peak RSS %.1f MiB; at 1 min %.1f MiB, at the end %.1f MiB: %s\n", peak/1024, base/1024, last/1024,
                  (last <= base * 1.10 ? "flat" : "GREW") }' "$WORK/rss.tsv"
echo "(work files in $WORK)"
