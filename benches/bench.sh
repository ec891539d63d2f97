#!/usr/bin/env bash
# bench.sh -- the benchmark suite (issue 8): `specter analyze` against tshark, Suricata and a
# bare libpcap read loop, on the same captures in the same session, as one markdown table.
#
# USAGE
#   benches/bench.sh                      # every default capture that exists (below)
#   benches/bench.sh KIND:CAPTURE ...     # KIND is h1, h2, tls or mixed
#
#   Default captures (make them with the make-*.sh scripts; missing ones are skipped):
#     h1:/work/bench-data/http1-api.pcap     make-capture.sh, HTTP/1.1 on 18090, ~1 GB
#     h2:/work/bench-data/h2c-api.pcap       make-h2-capture.sh, h2c on 18091, ~320 MiB
#     mixed:/work/bench-data/mixed.pcap      make-mixed-capture.sh, h1/h2c/HTTPS/DNS/binary
#   (tls:/work/bench-data/tls-api.pcap, make-tls-capture.sh, only when named.)
#   A capture's key log, CAPTURE without .pcap + .keylog, is given to specter (--keylog) and
#   tshark (-o tls.keylog_file) when it exists.
#
# ENVIRONMENT
#   RUNS=3            timed runs of each tool; the runs go in rounds (every tool once, then
#                     again), so that load from other processes spreads over all of them
#   SPECTER=path      binary to time (default target/release/specter of this repo, built with
#                     cargo build --release if missing, or always with BUILD=1)
#   THREADS=auto      auto: also time `analyze --threads 2` and `--threads 1` when the binary
#                     has --threads; no: only the default
#   TSHARK=prefix     prefix | full | skip  (as run.sh: tshark manages ~3 MB/s, so by default
#   TSHARK_MB=100     it reads the first TSHARK_MB MB, cached in BENCH_DATA by editcap)
#   TSHARK_RUNS=RUNS
#   SURICATA=auto     auto: time Suricata if installed; skip: do not
#   SURICATA_MODES="single autofp autofp-1"   the configurations tried (the best one, by
#                     median wall time, is the one compared):
#                       single    --runmode single (one packet thread)
#                       autofp    --runmode autofp (a reader thread + one worker per core)
#                       autofp-1  --runmode autofp, threading.detect-thread-ratio 0.5 (1 worker)
#   BASELINE=1        also time `tcpdump -r CAPTURE -w /dev/null` and `cat CAPTURE`
#   CHECK=1           count requests: specter's exchanges, tshark's and Suricata's requests on
#                     the tshark input, and specter's and Suricata's on the whole capture
#   BENCH_DATA=/work/bench-data   where tshark prefixes are cached
#
#   Every tool runs under /usr/bin/time -v with stdout to /dev/null (tshark's to a file for the
#   check): wall time (from date, ns), user+sys CPU time, peak RSS. specter analyze writes a
#   fresh temp SQLite inventory each run; Suricata logs into a fresh temp dir each run
#   (benches/suricata-http.yaml: eve.json with HTTP events only, no rules, -k none).
#
# OUTPUT
#   the runs as they happen, then per capture a markdown table (median wall s, MB/s, median
#   CPU s, MB per CPU-s, peak RSS over the runs, specter analyze's throughput ÷ that tool's)
#   and a summary table: specter ÷ tshark, ÷ Suricata's best, % of the read loop, peak RSS.
#   Exit status 0 if every timed command succeeded, 1 if one failed, 2 usage, 3 no specter.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
RUNS="${RUNS:-3}"
SPECTER="${SPECTER:-$REPO/target/release/specter}"
THREADS="${THREADS:-auto}"
TSHARK="${TSHARK:-prefix}"
TSHARK_MB="${TSHARK_MB:-100}"
TSHARK_RUNS="${TSHARK_RUNS:-$RUNS}"
SURICATA="${SURICATA:-auto}"
SURICATA_MODES="${SURICATA_MODES:-single autofp autofp-1}"
BASELINE="${BASELINE:-1}"
CHECK="${CHECK:-1}"
BENCH_DATA="${BENCH_DATA:-/work/bench-data}"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 2; }
# shellcheck source=lib.sh
. "$HERE/lib.sh"

case "$RUNS$TSHARK_RUNS$TSHARK_MB" in *[!0-9]*) die "RUNS, TSHARK_RUNS, TSHARK_MB must be integers";; esac
case "$TSHARK" in prefix|full|skip) ;; *) die "TSHARK must be prefix, full or skip";; esac
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install -y time)"
for t in python3 capinfos gcc; do command -v "$t" >/dev/null || die "$t not found"; done
if [ "$TSHARK" != skip ]; then
  for t in tshark editcap; do command -v "$t" >/dev/null || die "$t not found (apt-get install -y tshark)"; done
fi
if [ "$SURICATA" != skip ] && ! command -v suricata >/dev/null; then
  log "suricata not installed (bookworm-backports: apt-get install -y -t bookworm-backports suricata); not timed"
  SURICATA=skip
fi

if [ "$#" -eq 0 ]; then
  set --
  for spec in h1:/work/bench-data/http1-api.pcap h2:/work/bench-data/h2c-api.pcap mixed:/work/bench-data/mixed.pcap; do
    if [ -f "${spec#*:}" ]; then set -- "$@" "$spec"; else log "skipping ${spec#*:} (not found)"; fi
  done
  [ "$#" -gt 0 ] || die "no capture found; make them with benches/make-capture.sh, make-h2-capture.sh, make-mixed-capture.sh"
fi

WORK="$(mktemp -d /tmp/specter-suite.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
FAILED=0

specter_binary
[ "$SPECTER_OK" = 1 ] || { log "no specter binary: $SPECTER"; exit 3; }
SPECTER_THREADS=0
if [ "$THREADS" = auto ] && "$SPECTER" analyze --help 2>/dev/null | grep -q -- --threads; then SPECTER_THREADS=1; fi

READ_LOOP="$WORK/pcap-read-loop"
gcc -O2 -o "$READ_LOOP" "$HERE/pcap-read-loop.c" -lpcap || die "gcc pcap-read-loop.c failed (apt-get install -y libpcap-dev)"

echo "== specter benchmark suite (benches/bench.sh) =="
echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine:   $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "specter:   $(specter_describe "$SPECTER")$( [ "$SPECTER_THREADS" = 1 ] && echo ', has --threads')"
[ "$TSHARK" != skip ] && echo "tshark:    $(tshark --version 2>/dev/null | head -n1)"
[ "$SURICATA" != skip ] && echo "suricata:  $(suricata -V 2>/dev/null | head -n1), $HERE/suricata-http.yaml, modes: $SURICATA_MODES"
echo "runs:      $RUNS (tshark: $TSHARK_RUNS, mode $TSHARK, prefix $TSHARK_MB MB)"

# suricata_cmd MODE DIR CAPTURE EXTRA...: the Suricata command line for a configuration
suricata_cmd() {
  local mode="$1" dir="$2" cap="$3"; shift 3
  local -a args=(-c "$HERE/suricata-http.yaml" -r "$cap" -l "$dir" -k none -S /dev/null "$@")
  case "$mode" in
    single)   args+=(--runmode single) ;;
    autofp)   args+=(--runmode autofp) ;;
    autofp-1) args+=(--runmode autofp --set threading.detect-thread-ratio=0.5) ;;
    *) die "unknown Suricata mode $mode" ;;
  esac
  printf '%s\0' suricata "${args[@]}"
}

# fresh() DIR CMD...: run CMD in an emptied DIR (a temp inventory or log dir per run)
fresh() { local d="$1"; shift; rm -rf "$d"; mkdir -p "$d"; exec "$@"; }
export -f fresh

bench_capture() {  # $1 kind, $2 capture
  local kind="$1" cap="$2" keylog tinput round mode
  local -a tshark_args tshark_filter specter_extra suricata_extra cmd
  local two_methods=0   # 1: tshark's 2nd field is HTTP/2's method (tls, mixed)
  local suri="$SURICATA"
  cap="$(cd "$(dirname "$cap")" && pwd)/$(basename "$cap")"
  keylog="${cap%.pcap}.keylog"; [ -f "$keylog" ] || keylog=""
  specter_extra=(); suricata_extra=()
  [ -n "$keylog" ] && specter_extra=(--keylog "$keylog")
  tshark_filter=(-Y http.request -T fields -e http.request.method -e http.host -e http.request.uri)
  local tls_filter=(-Y "http.request || http2.headers.method" -T fields -e http.request.method
                    -e http2.headers.method -e http.request.uri -e http2.headers.path)
  case "$kind" in
    h1) tshark_args=(-d tcp.port==18090,http) ;;
    h2) tshark_args=(-d tcp.port==18091,http2)
        tshark_filter=(-Y http2.headers.method -T fields -e http2.headers.method -e http2.headers.authority -e http2.headers.path)
        suricata_extra=(--set app-layer.protocols.http2.enabled=yes) ;;
    # Suricata cannot use a key log: on an all-HTTPS capture it logs nothing, so no row
    tls) tshark_args=(-d tcp.port==18092,tls); tshark_filter=("${tls_filter[@]}"); two_methods=1
        suri=skip; log "Suricata is not timed on tls: it cannot decrypt, so it would log no request" ;;
    mixed) tshark_args=(-d tcp.port==18093,http -d tcp.port==18094,http2 -d tcp.port==18095,tls)
        tshark_filter=("${tls_filter[@]}"); two_methods=1
        suricata_extra=(--set app-layer.protocols.http2.enabled=yes) ;;
    *) die "unknown capture kind $kind (h1, h2, tls, mixed)" ;;
  esac
  [ -n "$keylog" ] && tshark_args+=(-o "tls.keylog_file:$keylog")

  RESULTS="$WORK/results.$kind.tsv"; : >"$RESULTS"
  local labels="$WORK/labels.$kind.tsv"; : >"$labels"
  echo
  echo "== $kind: $cap ($(stat -c %s "$cap") bytes, $(capinfos -M -c -T -r "$cap" 2>/dev/null | awk -F'\t' 'NR==1{print $2}') packets)${keylog:+, key log $keylog} =="
  tinput="$cap"
  if [ "$TSHARK" = prefix ]; then
    tinput="$(tshark_prefix "$cap" "$TSHARK_MB" "$BENCH_DATA")" || exit 2
  fi
  [ "$TSHARK" != skip ] && echo "tshark input: $tinput ($(stat -c %s "$tinput") bytes)"
  cat "$cap" >/dev/null; [ "$TSHARK" != skip ] && cat "$tinput" >/dev/null

  # tool ids and labels (the label is what the table shows)
  local -a specter_ids=(analyze) specter_threads=("")
  if [ "$SPECTER_THREADS" = 1 ]; then specter_ids+=(analyze-t2 analyze-t1); specter_threads+=(2 1); fi
  local i
  for i in "${!specter_ids[@]}"; do
    printf '%s\tspecter analyze%s%s\n' "${specter_ids[$i]}" "${specter_threads[$i]:+ --threads ${specter_threads[$i]}}" \
      "${keylog:+ --keylog K}" >>"$labels"
  done
  local tf="${tshark_filter[*]}"
  printf 'tshark\ttshark %s %s\n' "${tshark_args[*]//$keylog/K}" "${tf%% -T *} -T fields ..." >>"$labels"
  [ "$suri" != skip ] && for mode in $SURICATA_MODES; do printf 'suricata-%s\tSuricata 7 (%s, HTTP log only)\n' "$mode" "$mode" >>"$labels"; done
  printf 'read-loop\tlibpcap read loop (pcap_next_ex)\ntcpdump\ttcpdump -r FILE -w /dev/null\ncat\tcat FILE (page cache)\n' >>"$labels"

  for round in $(seq 1 "$RUNS"); do
    echo "-- round $round/$RUNS (load avg $(cut -d' ' -f1-3 /proc/loadavg))"
    for i in "${!specter_ids[@]}"; do
      cmd=("$SPECTER" analyze --db "$WORK/inv/specter.db" "${specter_extra[@]}")
      [ -n "${specter_threads[$i]}" ] && cmd+=(--threads "${specter_threads[$i]}")
      measure "${specter_ids[$i]}" "$cap" 1 bash -c 'fresh "$@"' _ "$WORK/inv" "${cmd[@]}" "$cap"
    done
    if [ "$TSHARK" != skip ] && [ "$round" -le "$TSHARK_RUNS" ]; then
      MEASURE_STDOUT="$WORK/tshark.$kind.out" measure tshark "$tinput" 1 \
        tshark -n -r "$tinput" "${tshark_args[@]}" "${tshark_filter[@]}"
    fi
    if [ "$suri" != skip ]; then
      for mode in $SURICATA_MODES; do
        mapfile -d '' cmd < <(suricata_cmd "$mode" "$WORK/suricata-$mode" "$cap" "${suricata_extra[@]}")
        measure "suricata-$mode" "$cap" 1 bash -c 'fresh "$@"' _ "$WORK/suricata-$mode" "${cmd[@]}"
      done
    fi
    measure read-loop "$cap" 1 "$READ_LOOP" "$cap"
    if [ "$BASELINE" = 1 ]; then
      measure tcpdump "$cap" 1 tcpdump -r "$cap" -w /dev/null
      measure cat "$cap" 1 cat "$cap"
    fi
  done

  # ---------------------------------------------------------------- request counts
  local counts="$WORK/counts.$kind.tsv"; : >"$counts"
  if [ "$CHECK" = 1 ]; then
    echo "-- request counts"
    count_suricata() { grep -c '"http_method"' "$1/eve.json" 2>/dev/null || true; }
    printf 'whole\tspecter\t%s\n' "$("$SPECTER" exchanges "$cap" "${specter_extra[@]}" --format jsonl 2>/dev/null | wc -l)" >>"$counts"
    if [ "$suri" != skip ]; then
      printf 'whole\tsuricata\t%s\n' "$(count_suricata "$WORK/suricata-${SURICATA_MODES%% *}")" >>"$counts"
    fi
    if [ "$TSHARK" != skip ]; then
      printf 'tshark input\tspecter\t%s\n' "$("$SPECTER" exchanges "$tinput" "${specter_extra[@]}" --format jsonl 2>/dev/null | wc -l)" >>"$counts"
      # one row per frame; a frame can carry several HTTP/2 HEADERS (comma-separated): count
      # the methods in the method fields (the first, and the second for tls/mixed)
      printf 'tshark input\ttshark\t%s\n' "$(awk -F'\t' -v two="$two_methods" \
        '{ if ($1 != "") n += split($1, m, ","); if (two && $2 != "") n += split($2, m, ",") } END { print n + 0 }' \
        "$WORK/tshark.$kind.out")" >>"$counts"
      if [ "$suri" != skip ]; then
        local sd="$WORK/suricata-check"
        mapfile -d '' cmd < <(suricata_cmd single "$sd" "$tinput" "${suricata_extra[@]}")
        rm -rf "$sd"; mkdir -p "$sd"; "${cmd[@]}" >/dev/null 2>&1
        printf 'tshark input\tsuricata\t%s\n' "$(count_suricata "$sd")" >>"$counts"
      fi
    fi
    cat "$counts"
  fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$kind" "$cap" "$tinput" "$labels" "$counts" >>"$WORK/captures.tsv"
}

: >"$WORK/captures.tsv"
for spec in "$@"; do
  case "$spec" in *:*) ;; *) die "expected KIND:CAPTURE, got $spec";; esac
  [ -f "${spec#*:}" ] || die "capture not found: ${spec#*:}"
  bench_capture "${spec%%:*}" "${spec#*:}"
done

echo
echo "load avg at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$WORK" <<'PY'
import csv, statistics, sys, os
work = sys.argv[1]
caps = [l.rstrip("\n").split("\t") for l in open(os.path.join(work, "captures.tsv")) if l.strip()]
summary = []
for kind, cap, tinput, labels_f, counts_f in caps:
    # markdown: a | in a label (tshark's filter) would end the cell
    labels = {k: v.replace("|", "\\|") for k, v in
              (l.rstrip("\n").split("\t", 1) for l in open(labels_f) if l.strip())}
    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(work, f"results.{kind}.tsv")) if l.strip()]
    by, order = {}, []
    for tool, inp, nbytes, wall, rss, cpu, rc in rows:
        if tool not in by:
            order.append(tool)
            by[tool] = {"input": inp, "bytes": int(nbytes), "wall": [], "rss": [], "cpu": [], "rc": []}
        d = by[tool]
        d["wall"].append(float(wall)); d["rss"].append(int(rss)); d["cpu"].append(float(cpu)); d["rc"].append(int(rc))
    st = {}
    for t in order:
        d = by[t]
        w, c, mb = statistics.median(d["wall"]), statistics.median(d["cpu"]), d["bytes"] / 1e6
        st[t] = dict(mb=mb, w=w, c=c, mbs=mb / w if w else float("inf"), mbc=mb / c if c else float("inf"),
                     rss=max(d["rss"]) / 1024, n=len(d["wall"]), ok=all(r == 0 for r in d["rc"]),
                     prefix=d["input"] != cap)
    ref = st.get("analyze")
    print(f"\n### {kind}: `{os.path.basename(cap)}` ({by[order[0]]['bytes']/1e6:.1f} MB)\n")
    print("| tool | input MB | runs | wall s | MB/s | CPU s | MB/CPU-s | peak RSS MB | specter analyze ÷ tool (wall / CPU) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for t in order:
        s = st[t]
        ratio = ""
        if ref and t != "analyze" and s["ok"]:
            rc = f"{ref['mbc'] / s['mbc']:.2f}x" if s["mbc"] != float("inf") else "-"
            ratio = f"{ref['mbs'] / s['mbs']:.2f}x / {rc}"
        mbc = "-" if s["mbc"] == float("inf") else f"{s['mbc']:.1f}"
        note = "" if s["ok"] else " **FAILED**"
        inp = f"{s['mb']:.1f}" + (" (prefix)" if s["prefix"] else "")
        print(f"| {labels.get(t, t)}{note} | {inp} | {s['n']} | {s['w']:.2f} | {s['mbs']:.1f} | {s['c']:.2f} | {mbc} | {s['rss']:.1f} | {ratio} |")
    counts = [l.rstrip("\n").split("\t") for l in open(counts_f) if l.strip()]
    if counts:
        print("\nrequests counted: " + "; ".join(f"{w} {t} {n}" for w, t, n in counts))
    suri = [t for t in order if t.startswith("suricata-") and st[t]["ok"]]
    best = min(suri, key=lambda t: st[t]["w"]) if suri else None
    for t in order:
        if not t.startswith("analyze") or not st[t]["ok"]:
            continue
        s = st[t]
        vs = lambda o: (f"{s['mbs']/st[o]['mbs']:.1f}x ({s['mbc']/st[o]['mbc']:.1f}x)" if o in st and st[o]["ok"] else "-")
        rl = "-"
        if "read-loop" in st:
            r = st["read-loop"]
            rl = f"{100*s['mbs']/r['mbs']:.0f} %" + (f" ({100*s['mbc']/r['mbc']:.0f} %)" if r["mbc"] != float("inf") else "")
        summary.append((kind, labels.get(t, t), f"{s['mbs']:.0f}", vs("tshark"),
                        (vs(best) + f" [{best[9:]}]") if best else "-", rl, f"{s['rss']:.0f}"))
print("\n### Summary: specter analyze's throughput relative to the others (by wall time; by CPU time in brackets)\n")
print("| capture | specter | MB/s | ÷ tshark | ÷ Suricata (best config) | % of libpcap read loop | peak RSS MB |")
print("|---|---|---|---|---|---|---|")
for r in summary:
    print("| " + " | ".join(r) + " |")
PY
exit "$FAILED"
