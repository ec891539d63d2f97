# lib.sh -- shell functions shared by the benchmark scripts (sourced, not run).
#
#   capture makers (make-capture.sh, make-mixed-capture.sh):
#     kill_wait PID SIGNAL           signal a process, wait up to 10 s, then SIGKILL it
#     start_tcpdump OUT LOG FILTER   record lo to OUT; sets TCPDUMP_PID, returns once listening
#     tcpdump_dropped LOG            the "dropped by kernel" count tcpdump printed on exit
#     nginx_conf_head DIR            prints the start of an nginx config that keeps everything
#                                    in DIR (1 worker, foreground), up to inside `http {`
#     TLS_CURL_VARIANTS              curl options cycling TLS 1.2/1.3, HTTP/1.1/2, AEAD suites
#   timing (run.sh, bench.sh):
#     specter_binary                 checks/builds $SPECTER (cargo build --release if it is
#                                    this repo's and missing, or BUILD=1); sets SPECTER_OK
#     tshark_prefix CAPTURE MB DIR   prints the path of a cached editcap prefix of ~MB MB
#     measure TOOL INPUT N CMD...    N runs of CMD under /usr/bin/time -v, stdout to /dev/null
#                                    (or to $MEASURE_STDOUT);
#                                    appends "tool input bytes wall rss_kb cpu exit" rows to
#                                    $RESULTS; sets FAILED=1 if a run fails
# The caller defines log() and die(), and WORK (a temp dir) for the timing functions.

kill_wait() {  # $1 pid, $2 signal: signal, wait up to 10 s, then SIGKILL
  local pid="$1" sig="$2" i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -"$sig" "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid ignored SIG$sig, killing"; kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

start_tcpdump() {  # $1 out file, $2 log file, $3 filter
  local out="$1" tlog="$2" filter="$3" i
  tcpdump -i lo -s 0 -B 65536 -n -Z root -w "$out" "$filter" >"$tlog" 2>&1 &
  TCPDUMP_PID=$!
  for i in $(seq 1 100); do
    grep -q "listening on" "$tlog" 2>/dev/null && break
    kill -0 "$TCPDUMP_PID" 2>/dev/null || die "tcpdump exited: $(cat "$tlog")"
    sleep 0.1
  done
  grep -q "listening on" "$tlog" || die "tcpdump did not start: $(cat "$tlog")"
  sleep 0.5
  log "tcpdump recording to $out (pid $TCPDUMP_PID)"
}

tcpdump_dropped() {  # $1 tcpdump's log
  sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel.*/\1/p' "$1"
}

nginx_conf_head() {  # $1 dir: pid, logs and temp files go there (DIR/tmp must exist)
  cat <<EOF
worker_processes 1;
daemon off;
user root root;
pid $1/nginx.pid;
error_log $1/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $1/tmp/body;
  proxy_temp_path $1/tmp/proxy;
  fastcgi_temp_path $1/tmp/fastcgi;
  uwsgi_temp_path $1/tmp/uwsgi;
  scgi_temp_path $1/tmp/scgi;
  types { application/json json; }
  default_type application/json;
EOF
}

# curl options for TLS clients with a key log (make-tls-capture.sh, make-mixed-capture.sh):
# one per curl run, cycling TLS 1.2/1.3, HTTP/1.1/HTTP/2 and the three AEAD suites
TLS_CURL_VARIANTS=(
  "--tlsv1.2 --tls-max 1.2 --http1.1 --ciphers ECDHE-RSA-AES128-GCM-SHA256"
  "--tlsv1.3 --http2 --tls13-ciphers TLS_AES_128_GCM_SHA256"
  "--tlsv1.2 --tls-max 1.2 --http2 --ciphers ECDHE-RSA-AES256-GCM-SHA384"
  "--tlsv1.3 --http1.1 --tls13-ciphers TLS_CHACHA20_POLY1305_SHA256"
  "--tlsv1.2 --tls-max 1.2 --http1.1 --ciphers ECDHE-RSA-CHACHA20-POLY1305"
  "--tlsv1.3 --http2 --tls13-ciphers TLS_AES_256_GCM_SHA384"
)

specter_binary() {  # uses SPECTER, REPO, BUILD, WORK; sets SPECTER_OK
  SPECTER_OK=1
  if [ "${BUILD:-0}" = 1 ] || [ ! -x "$SPECTER" ]; then
    if [ "$SPECTER" = "$REPO/target/release/specter" ]; then
      log "building specter: cargo build --release (in $REPO)"
      if ! (cd "$REPO" && cargo build --release) >"$WORK/build.log" 2>&1; then
        log "cargo build --release FAILED; specter is not timed. Last lines:"
        tail -n 20 "$WORK/build.log" >&2
        SPECTER_OK=0
      fi
    fi
    [ -x "$SPECTER" ] || SPECTER_OK=0
  fi
}

# the git commit the specter binary was built from, as far as we can tell: for a binary in
# a repo's target/*/, the repo's HEAD and the last commit that changed the code (src/,
# Cargo.*), with ", src modified" if src/ differs from HEAD (the build may then be of
# uncommitted code); for a binary elsewhere only its date
specter_describe() {  # $1 binary
  local bin="$1" dir code
  dir="$(cd "$(dirname "$bin")/../.." 2>/dev/null && pwd)"
  printf '%s (built %s' "$bin" "$(stat -c '%y' "$bin" | cut -d. -f1)"
  if [ -n "$dir" ] && git -C "$dir" rev-parse --git-dir >/dev/null 2>&1; then
    code="$(git -C "$dir" log -1 --format=%h -- src Cargo.toml Cargo.lock 2>/dev/null)"
    printf ', git HEAD %s, code at %s%s' "$(git -C "$dir" rev-parse --short HEAD)" "${code:-?}" \
      "$(git -C "$dir" diff --quiet HEAD -- src 2>/dev/null || echo ', src modified')"
  fi
  printf ')'
}

tshark_prefix() {  # $1 capture, $2 MB, $3 cache dir: prints the prefix's path
  local cap="$1" mb="$2" dir="$3" packets bytes keep out
  bytes=$(stat -c %s "$cap")
  if [ "$bytes" -le $(( mb * 1000000 )) ]; then printf '%s\n' "$cap"; return 0; fi
  packets=$(capinfos -M -c -T -r "$cap" 2>/dev/null | awk -F'\t' 'NR==1{print $2}')
  # packets to keep ~= packets * MB / size (editcap -r keeps a packet range)
  keep=$(python3 -c "print(max(1, int(${packets:-0} * $mb * 1e6 / $bytes)))")
  mkdir -p "$dir"
  out="$dir/$(basename "${cap%.*}").first${mb}MB.pcap"
  if [ ! -s "$out" ] || [ "$out" -ot "$cap" ]; then
    log "making tshark prefix: editcap -r (first $keep packets) -> $out"
    editcap -F pcap -r "$cap" "$out" "1-$keep" >&2 || die "editcap failed"
  fi
  printf '%s\n' "$out"
}

measure() {  # TOOL INPUT N CMD...  (CMD's stdout goes to /dev/null, stderr to a log)
  local tool="$1" input="$2" n="$3"; shift 3
  local bytes i tf rc wall rss cpu t0 t1
  bytes=$(stat -c %s "$input")
  for i in $(seq 1 "$n"); do
    tf="$WORK/time.$tool.$i"
    t0=$(date +%s%N)
    /usr/bin/time -v -o "$tf" "$@" >"${MEASURE_STDOUT:-/dev/null}" 2>"$WORK/stderr.$tool.$i"
    rc=$?
    t1=$(date +%s%N)
    # wall time from date (ns; /usr/bin/time prints it to 10 ms), RSS and CPU from time -v
    read -r wall rss cpu < <(python3 - "$tf" "$t0" "$t1" <<'PY'
import sys
wall = (int(sys.argv[3]) - int(sys.argv[2])) / 1e9
rss = 0; cpu = 0.0
for line in open(sys.argv[1]):
    k, _, v = line.strip().rpartition(": ")
    if k == "Maximum resident set size (kbytes)":
        rss = int(v)
    elif k in ("User time (seconds)", "System time (seconds)"):
        cpu += float(v)
print(f"{wall:.3f} {int(rss)} {cpu:.2f}")
PY
)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$input" "$bytes" "$wall" "$rss" "$cpu" "$rc" >>"$RESULTS"
    printf '  %-18s run %d/%d: wall %8.3f s  cpu %7.2f s  rss %7.1f MB  exit %s  (load %s)\n' \
      "$tool" "$i" "$n" "$wall" "$cpu" "$(python3 -c "print($rss/1024)")" "$rc" "$(cut -d' ' -f1 /proc/loadavg)"
    if [ "$rc" != 0 ]; then
      FAILED=1
      log "$tool exited with status $rc; stderr tail:"; tail -n 5 "$WORK/stderr.$tool.$i" >&2
    fi
  done
}
