#!/usr/bin/env bash
# run.sh -- whole-process benchmark: specter vs tshark vs a bare pcap read loop.
#
# USAGE
#   benches/run.sh [CAPTURE]          # default /work/bench-data/http1-api.pcap
#   PROTO=h2 benches/run.sh [CAPTURE] # default /work/bench-data/h2c-api.pcap
#
# ENVIRONMENT
#   PROTO=h1          h1 | h2 | tls (HTTPS with its key log, make-tls-capture.sh): what the capture carries; picks the default capture, tshark's
#                     decode-as port and tshark's display filter and fields:
#                       h1: -d tcp.port==18090,http  -Y http.request
#                           -T fields -e http.request.method -e http.host -e http.request.uri
#                       h2: -d tcp.port==18091,http2 -Y http2.headers.method
#                           -T fields -e http2.headers.method -e http2.headers.authority
#                                     -e http2.headers.path
#                     (captures of make-capture.sh / make-h2-capture.sh). specter's command
#                     is the same for both: it recognises HTTP/2 by its bytes.
#   RUNS=3            timed runs of each tool (the median is reported)
#   SPECTER=path      binary to time (default: target/release/specter of this repo; built
#                     with `cargo build --release` if missing, or always with BUILD=1)
#   SPECTER_ARGS=""   extra arguments appended to `specter exchanges CAPTURE --format jsonl`
#   TSHARK=prefix     prefix | full | skip
#                       prefix: time tshark on the first TSHARK_MB MB of the capture only
#                               (made once with editcap -r, cached in BENCH_DATA); tshark
#                               manages ~5 MB/s here, so a full 1 GB run takes minutes
#                       full:   time tshark on the whole capture
#                       skip:   do not run tshark (no specter/tshark ratio)
#   TSHARK_MB=100     size of the tshark prefix, MB (10^6 bytes)
#   TSHARK_RUNS=RUNS  timed tshark runs
#   TSHARK_ARGS="-d tcp.port==18090,http"   (PROTO=h2: "-d tcp.port==18091,http2")
#                     tshark options; the default makes tshark decode the benchmark
#                     capture's non-standard port as HTTP (without it tshark finds nothing);
#                     set it if the capture was made with another PORT
#   BASELINE=1        also time `tcpdump -r CAPTURE -w /dev/null` (libpcap read+write loop)
#                     and `cat CAPTURE` (page-cache read); 0 to skip
#   CHECK=0           1: after timing, count specter's JSONL lines and tshark's requests
#                     on the same input (the tshark input) as a sanity check (for h2 a row
#                     can hold several requests, comma-separated: they are all counted)
#   BENCH_DATA=/work/bench-data   where the tshark prefix file is cached
#
# OUTPUT
#   one line per timed run, then a table: tool, input, runs, median wall s, MB/s
#   (input bytes / median wall, MB = 10^6 bytes), peak RSS MB (max over runs),
#   median CPU s (user+sys), MB per CPU-second, and specter's throughput relative to
#   tshark and to the baseline, by wall time and by CPU time (CPU time is the steadier
#   of the two on a shared machine; for tiny CPU times such as cat's it is coarse).  Each run is `/usr/bin/time -v CMD > /dev/null`.
#   Exit status: 0 if every timed command succeeded, 1 otherwise (2 for usage errors,
#   3 if specter could not be built).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PROTO="${PROTO:-h1}"
case "$PROTO" in
  h1) DEFAULT_CAPTURE=/work/bench-data/http1-api.pcap; DEFAULT_TSHARK_ARGS="-d tcp.port==18090,http"
      TSHARK_FILTER=(-Y http.request -T fields -e http.request.method -e http.host -e http.request.uri)
      TSHARK_LABEL="tshark -Y http.request -T fields" ;;
  h2) DEFAULT_CAPTURE=/work/bench-data/h2c-api.pcap; DEFAULT_TSHARK_ARGS="-d tcp.port==18091,http2"
      TSHARK_FILTER=(-Y http2.headers.method -T fields -e http2.headers.method
                     -e http2.headers.authority -e http2.headers.path)
      TSHARK_LABEL="tshark -Y http2.headers.method" ;;
  # TLS with keys (make-tls-capture.sh): both tools decrypt with the key log beside the
  # capture (SPECTER_ARGS/TSHARK_ARGS default to it), HTTP/1.1 and HTTP/2 requests.
  tls) DEFAULT_CAPTURE=/work/bench-data/tls-api.pcap
      TLS_KEYLOG="${TLS_KEYLOG:-${1:-$DEFAULT_CAPTURE}}"; TLS_KEYLOG="${TLS_KEYLOG%.pcap}.keylog"
      DEFAULT_TSHARK_ARGS="-d tcp.port==18092,tls -o tls.keylog_file:$TLS_KEYLOG"
      SPECTER_ARGS="${SPECTER_ARGS:---keylog $TLS_KEYLOG}"
      TSHARK_FILTER=(-Y "http.request || http2.headers.method" -T fields -e http.request.method
                     -e http2.headers.method -e http.request.uri -e http2.headers.path)
      TSHARK_LABEL="tshark -o tls.keylog_file -Y http.request||http2" ;;
  *) printf 'PROTO must be h1, h2 or tls, got %s\n' "$PROTO" >&2; exit 2 ;;
esac
CAPTURE="${1:-$DEFAULT_CAPTURE}"
RUNS="${RUNS:-3}"
TSHARK="${TSHARK:-prefix}"
TSHARK_MB="${TSHARK_MB:-100}"
TSHARK_RUNS="${TSHARK_RUNS:-$RUNS}"
TSHARK_ARGS="${TSHARK_ARGS:-$DEFAULT_TSHARK_ARGS}"
BASELINE="${BASELINE:-1}"
CHECK="${CHECK:-0}"
BENCH_DATA="${BENCH_DATA:-/work/bench-data}"
SPECTER="${SPECTER:-$REPO/target/release/specter}"
SPECTER_ARGS="${SPECTER_ARGS:-}"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 2; }
# shellcheck source=lib.sh
. "$HERE/lib.sh"

[ -f "$CAPTURE" ] || die "capture not found: $CAPTURE (make one with benches/make-capture.sh, or make-h2-capture.sh for PROTO=h2)"
CAPTURE="$(cd "$(dirname "$CAPTURE")" && pwd)/$(basename "$CAPTURE")"
case "$RUNS$TSHARK_RUNS$TSHARK_MB" in *[!0-9]*) die "RUNS, TSHARK_RUNS, TSHARK_MB must be integers";; esac
case "$TSHARK" in prefix|full|skip) ;; *) die "TSHARK must be prefix, full or skip";; esac
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install -y time)"
for t in python3 capinfos; do command -v "$t" >/dev/null || die "$t not found"; done
if [ "$TSHARK" != skip ]; then
  for t in tshark editcap; do command -v "$t" >/dev/null || die "$t not found (apt-get install -y tshark)"; done
fi
read -r -a TSHARK_ARGV <<<"$TSHARK_ARGS"
read -r -a SPECTER_ARGV <<<"$SPECTER_ARGS"

WORK="$(mktemp -d /tmp/specter-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
RESULTS="$WORK/results.tsv"    # tool, input, bytes, wall, rss_kb, cpu, exit
: >"$RESULTS"
FAILED=0

# ------------------------------------------------------------------ specter binary
specter_binary

# ------------------------------------------------------------------ machine / inputs
CAP_BYTES=$(stat -c %s "$CAPTURE")
CAP_PACKETS=$(capinfos -M -c -T -r "$CAPTURE" 2>/dev/null | awk -F'\t' 'NR==1{print $2}')
echo "== specter whole-process benchmark =="
echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine:   $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "capture:   $CAPTURE ($CAP_BYTES bytes, ${CAP_PACKETS:-?} packets)"
if [ "$SPECTER_OK" = 1 ]; then
  echo "specter:   $(specter_describe "$SPECTER")"
else
  echo "specter:   NOT AVAILABLE (no binary and the build failed) -- only the other tools are timed"
fi
[ "$TSHARK" != skip ] && echo "tshark:    $(tshark --version 2>/dev/null | head -n1)"
echo "runs:      $RUNS (tshark: $TSHARK_RUNS, mode $TSHARK)"
echo "protocol:  PROTO=$PROTO; tshark $TSHARK_ARGS ${TSHARK_FILTER[*]}"

# tshark input: the capture itself or a cached prefix of about TSHARK_MB MB
TSHARK_INPUT="$CAPTURE"
if [ "$TSHARK" = prefix ]; then
  TSHARK_INPUT="$(tshark_prefix "$CAPTURE" "$TSHARK_MB" "$BENCH_DATA")" || exit 2
  if [ "$TSHARK_INPUT" != "$CAPTURE" ]; then
    echo "tshark input: first ~$TSHARK_MB MB of the capture ($TSHARK_INPUT, $(stat -c %s "$TSHARK_INPUT") bytes);"
    echo "              tshark's MB/s is measured on that prefix, the others on the whole capture"
  else
    echo "tshark input: the whole capture (it is not larger than TSHARK_MB=$TSHARK_MB MB)"
  fi
fi

# warm the page cache so that the first timed run is not a cold disk read
cat "$CAPTURE" >/dev/null
[ "$TSHARK" != skip ] && cat "$TSHARK_INPUT" >/dev/null

# ------------------------------------------------------------------ timing (measure: lib.sh)
echo
echo "== runs =="
if [ "$SPECTER_OK" = 1 ]; then
  measure specter "$CAPTURE" "$RUNS" "$SPECTER" exchanges "$CAPTURE" --format jsonl "${SPECTER_ARGV[@]}"
fi
if [ "$TSHARK" != skip ]; then
  measure tshark "$TSHARK_INPUT" "$TSHARK_RUNS" tshark -n -r "$TSHARK_INPUT" "${TSHARK_ARGV[@]}" \
    "${TSHARK_FILTER[@]}"
fi
if [ "$BASELINE" = 1 ]; then
  measure tcpdump "$CAPTURE" "$RUNS" tcpdump -r "$CAPTURE" -w /dev/null
  measure cat "$CAPTURE" "$RUNS" cat "$CAPTURE"
fi

# ------------------------------------------------------------------ table
echo
echo "== summary (median of runs; MB = 10^6 bytes; RSS = max over runs) =="
python3 - "$RESULTS" "$TSHARK_LABEL" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
order, by = [], {}
for tool, inp, nbytes, wall, rss, cpu, rc in rows:
    if tool not in by:
        order.append(tool); by[tool] = {"input": inp, "bytes": int(nbytes), "wall": [], "rss": [], "cpu": [], "rc": []}
    d = by[tool]
    d["wall"].append(float(wall)); d["rss"].append(int(rss)); d["cpu"].append(float(cpu)); d["rc"].append(int(rc))
labels = {"specter": "specter exchanges --format jsonl", "tshark": sys.argv[2],
          "tcpdump": "tcpdump -r -w /dev/null (baseline)", "cat": "cat (page-cache read)"}
print(f"{'tool':36} {'input MB':>9} {'runs':>4} {'wall s':>8} {'MB/s':>8} {'RSS MB':>8} {'CPU s':>7} {'MB/CPU-s':>9}  note")
tput, cput = {}, {}
for t in order:
    d = by[t]
    w = statistics.median(d["wall"])
    c = statistics.median(d["cpu"])
    mb = d["bytes"] / 1e6
    mbs = mb / w if w > 0 else float("inf")
    mbc = mb / c if c > 0 else float("inf")
    ok = all(rc == 0 for rc in d["rc"])
    if ok:
        tput[t], cput[t] = mbs, mbc
    note = "" if ok else "FAILED (non-zero exit)"
    print(f"{labels.get(t, t):36} {mb:9.1f} {len(d['wall']):4d} {w:8.2f} {mbs:8.1f} "
          f"{max(d['rss'])/1024:8.1f} {c:7.2f} {mbc:9.1f}  {note}")
print()
if "specter" in tput:
    print(f"{'specter throughput relative to':38} {'wall MB/s':>10} {'MB/CPU-s':>10}")
    for other, what in (("tshark", "tshark"), ("tcpdump", "baseline (tcpdump read loop)"), ("cat", "cat")):
        if other in tput:
            r_wall = tput["specter"] / tput[other]
            r_cpu = cput["specter"] / cput[other] if cput[other] not in (0, float("inf")) else float("nan")
            print(f"  {what:36} {r_wall:9.2f}x {r_cpu:9.2f}x")
else:
    print("specter was not timed successfully: no ratios")
PY

# ------------------------------------------------------------------ optional check
if [ "$CHECK" = 1 ] && [ "$SPECTER_OK" = 1 ] && [ "$TSHARK" != skip ]; then
  echo
  echo "== check on $TSHARK_INPUT =="
  echo "specter JSONL lines:  $("$SPECTER" exchanges "$TSHARK_INPUT" --format jsonl "${SPECTER_ARGV[@]}" 2>/dev/null | wc -l)"
  # the first field is the method; for h2 one frame can carry several HEADERS frames, whose
  # methods tshark prints comma-separated in one row
  echo "tshark requests:      $(tshark -n -r "$TSHARK_INPUT" "${TSHARK_ARGV[@]}" "${TSHARK_FILTER[@]}" 2>/dev/null \
    | awk -F'\t' '{ n += split($1, m, ",") } END { print n + 0 }')"
fi
[ "$SPECTER_OK" = 1 ] || exit 3
exit "$FAILED"
