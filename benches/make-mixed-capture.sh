#!/usr/bin/env bash
# make-mixed-capture.sh -- record a mixed capture: HTTP/1.1, HTTP/2 cleartext, HTTPS with its
# session keys, and non-HTTP noise (DNS over UDP, a binary TCP protocol), all at once, for
# the whole-process benchmarks (bench.sh).
#
# USAGE
#   benches/make-mixed-capture.sh [OUT.pcap] [SIZE_MB]
#     OUT.pcap  default /work/bench-data/mixed.pcap (keep it OUT of the git repo); the TLS
#               key log is written next to it as OUT.keylog (OUT without .pcap)
#     SIZE_MB   default 300; recording stops once the file reaches SIZE_MB MiB
#
#   Environment: MAX_SECONDS (default 900) bounds the load phase; SEED (default 42) fixes
#   the documents.
#
# WHAT IT DOES (everything on 127.0.0.1, ports 18093-18097 only)
#   18093/tcp  HTTP/1.1: nginx (1 worker, keep-alive) driven by wrk (-t1 -c4, lua script:
#              GET on users/orders/products/search with query strings, ~20% POST with JSON
#              bodies, Bearer tokens, a 1 ms delay between requests per connection)
#   18094/tcp  HTTP/2 cleartext with prior knowledge: nghttpd --no-tls driven by h2load
#              runs (4 connections, 8 streams each, 500 requests/s per connection, GET+POST)
#   18095/tcp  HTTPS: the same nginx with TLS 1.2/1.3 (ALPN h2, http/1.1), driven by two curl
#              loops with SSLKEYLOGFILE=OUT.keylog: one connection of 200 requests per run,
#              cycling through TLS 1.2/1.3, HTTP/1.1/HTTP/2 and the three AEAD suites
#   18096/udp  DNS: a python responder (A records) and a python client sending queries
#   18097/tcp  a binary request/response protocol (python): length-prefixed random
#              messages of 16 B to 4 KiB, 50 to 500 per connection, ~100/s per client, 2 clients
#   One `tcpdump -i lo -s 0 -B 65536` records all five ports to a plain pcap. At SIZE_MB
#   MiB the clients are stopped, 1 s later tcpdump (SIGINT); the output has each port's
#   share of the file, tcpdump's dropped-by-kernel count and capinfos. A trap stops
#   every server and client on any exit; on failure the partial capture is removed.
#
#   tshark needs: -d tcp.port==18093,http -d tcp.port==18094,http2 -d tcp.port==18095,tls
#                 -o tls.keylog_file:OUT.keylog
#
# REQUIREMENTS (Debian 12): root; apt-get install -y nginx-light wrk nghttp2-server
#   nghttp2-client curl openssl tcpdump tshark python3
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-/work/bench-data/mixed.pcap}"
SIZE_MB="${2:-300}"
MAX_SECONDS="${MAX_SECONDS:-900}"
SEED="${SEED:-42}"
P_H1=18093 P_H2=18094 P_TLS=18095 P_DNS=18096 P_BIN=18097
HOST=api.mixed.test

log() { printf '[make-mixed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=lib.sh
. "$HERE/lib.sh"

case "$SIZE_MB" in ''|*[!0-9]*) die "SIZE_MB must be a positive integer, got '$SIZE_MB'";; esac
[ "$SIZE_MB" -gt 0 ] || die "SIZE_MB must be > 0"
for t in nginx wrk nghttpd h2load curl openssl tcpdump python3 capinfos; do
  command -v "$t" >/dev/null 2>&1 || die "$t not found (apt-get install -y nginx-light wrk nghttp2-server nghttp2-client curl openssl tcpdump tshark python3)"
done
[ "$(id -u)" = 0 ] || log "warning: not root; tcpdump on lo will probably fail"
for p in $P_H1 $P_H2 $P_TLS $P_BIN; do
  ! ss -Htln "sport = :$p" 2>/dev/null | grep -q . || die "tcp port $p is already in use"
done
! ss -Hunl "sport = :$P_DNS" 2>/dev/null | grep -q . || die "udp port $P_DNS is already in use"

mkdir -p "$(dirname "$OUT")"
OUT="$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")"
case "$OUT" in
  /work/main/*|/work/wt-*) die "refusing to write a large capture inside a repo ($OUT); use /work/bench-data/";;
esac
KEYLOG="${OUT%.pcap}.keylog"

# ------------------------------------------------------------------ temp dir, cleanup
WORK="$(mktemp -d /tmp/specter-mixedcap.XXXXXX)"
chmod 755 "$WORK"
NGINX_PID="" ; NGHTTPD_PID="" ; TCPDUMP_PID="" ; OUT_STARTED="" ; CLIENTS=() ; SERVERS=()
cleanup() {
  local rc=$? p
  set +e
  for p in "${CLIENTS[@]}"; do kill_wait "$p" TERM; done
  for p in "${SERVERS[@]}"; do kill_wait "$p" TERM; done
  kill_wait "$NGHTTPD_PID" TERM
  kill_wait "$NGINX_PID" QUIT
  kill_wait "$TCPDUMP_PID" INT
  if [ "$rc" != 0 ]; then
    log "failed (exit $rc); last log lines:"
    tail -n 5 "$WORK"/*.log 2>/dev/null >&2
    if [ -n "$OUT_STARTED" ]; then log "removing the partial capture $OUT"; rm -f "$OUT" "$KEYLOG"; fi
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ------------------------------------------------------------------ documents, URI lists
mkdir -p "$WORK/www" "$WORK/tmp"
python3 - "$WORK" "$SEED" "$HOST" "$P_H2" <<'PY'
import json, os, random, sys
work, seed, host, h2port = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rnd = random.Random(seed)
words = "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima".split()
def doc(n):
    items = [{"id": rnd.randrange(10**6), "name": " ".join(rnd.sample(words, 2)),
              "email": "user%d@example.com" % rnd.randrange(10**5),
              "price": round(rnd.random() * 500, 2), "tags": rnd.sample(words, rnd.randrange(4))}
             for _ in range(n)]
    return json.dumps({"data": items, "total": n, "page": 1})
for kind in ("users", "orders", "products", "search"):
    d = os.path.join(work, "www/api/v1", kind)
    os.makedirs(d, exist_ok=True)
    for i in range(100):
        with open(os.path.join(d, "%d.json" % i), "w") as fh:
            fh.write(doc(rnd.choice([1, 2, 5, 10, 30, 80])))
# h2load URI lists (nghttpd ignores the query string)
for n in range(10):
    with open(os.path.join(work, "h2uris.%d" % n), "w") as fh:
        for _ in range(2000):
            kind = rnd.choice(["users", "orders", "products", "search"])
            q = rnd.choice(["", "?page=%d" % rnd.randrange(1, 30), "?q=%s" % rnd.choice(words)])
            fh.write("http://127.0.0.1:%s/api/v1/%s/%d.json%s\n" % (h2port, kind, rnd.randrange(100), q))
PY
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
  -subj "/CN=$HOST" -addext "subjectAltName=DNS:$HOST" >/dev/null 2>&1

# ------------------------------------------------------------------ nginx: h1 + TLS
nginx_conf_head "$WORK" >"$WORK/nginx.conf"
cat >>"$WORK/nginx.conf" <<EOF
  keepalive_timeout 60s;
  keepalive_requests 1000;
  server {
    listen 127.0.0.1:$P_H1;
    listen 127.0.0.1:$P_TLS ssl http2;
    ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305;
    root $WORK/www;
    location ~ ^/api/v1/(users|orders|products|search)/\d*?(\d\d?)\$ {
      if (\$request_method = POST) { return 201 '{"id":"\$request_id","created":true}'; }
      try_files /api/v1/\$1/\$2.json =404;
    }
    location / { return 404 '{"error":"not found"}'; }
  }
}
EOF
nginx -t -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx-test.log" 2>&1 || { cat "$WORK/nginx-test.log" >&2; die "nginx config test failed"; }
nginx -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx.log" 2>&1 &
NGINX_PID=$!

# ------------------------------------------------------------------ nghttpd: h2c
nghttpd --no-tls -d "$WORK/www" -n 1 "$P_H2" >"$WORK/nghttpd.log" 2>&1 &
NGHTTPD_PID=$!

# ------------------------------------------------------------------ python: DNS + binary
cat >"$WORK/noise.py" <<'PY'
"""Non-HTTP noise for the mixed capture: `dns-server PORT`, `dns-client PORT`,
`bin-server PORT`, `bin-client PORT SEED`."""
import os, random, socket, struct, sys, threading, time

def dns_server(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    while True:
        q, addr = s.recvfrom(2048)
        if len(q) < 12:
            continue
        # header: same id, QR=1 RD RA, 1 question, 1 answer; answer: pointer to the name, A, IN
        ans = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 300, 4) + os.urandom(4)
        s.sendto(q[:2] + b"\x81\x80" + q[4:6] + b"\x00\x01\x00\x00\x00\x00" + q[12:] + ans, addr)

def dns_client(port):
    rnd = random.Random(7)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    labels = ["api", "www", "cdn", "auth", "mail", "db", "cache", "queue"]
    while True:
        name = "%s%d.%s.example.test" % (rnd.choice(labels), rnd.randrange(1000), rnd.choice(labels))
        qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
        s.sendto(struct.pack(">HHHHHH", rnd.randrange(65536), 0x0100, 1, 0, 0, 0) + qname
                 + struct.pack(">HH", 1, 1), ("127.0.0.1", port))
        try:
            s.recvfrom(2048)
        except socket.timeout:
            pass
        time.sleep(0.0005)

def recv_exact(c, n):
    buf = b""
    while len(buf) < n:
        b = c.recv(n - len(buf))
        if not b:
            raise EOFError
        buf += b
    return buf

def bin_handle(c):
    try:
        recv_exact(c, 6)  # the client's greeting
        while True:
            kind, n = struct.unpack(">BI", recv_exact(c, 5))
            recv_exact(c, n)
            m = random.randrange(16, 4096)
            c.sendall(struct.pack(">BI", kind | 0x80, m) + os.urandom(m))
    except (EOFError, OSError):
        pass
    finally:
        c.close()

def bin_server(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=bin_handle, args=(c,), daemon=True).start()

def bin_client(port, seed):
    rnd = random.Random(seed)
    while True:
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"\x00BNCH\x01")  # a greeting that is nothing like HTTP
        for _ in range(rnd.randrange(50, 500)):
            n = rnd.randrange(16, 4096)
            c.sendall(struct.pack(">BI", rnd.randrange(1, 16), n) + os.urandom(n))
            _, m = struct.unpack(">BI", recv_exact(c, 5))
            recv_exact(c, m)
            time.sleep(0.01)
        c.close()

if __name__ == "__main__":
    what, port = sys.argv[1], int(sys.argv[2])
    if what == "bin-server":
        bin_server(port)
    elif what == "dns-server":
        dns_server(port)
    elif what == "dns-client":
        dns_client(port)
    elif what == "bin-client":
        bin_client(port, int(sys.argv[3]))
PY
python3 "$WORK/noise.py" dns-server "$P_DNS" >"$WORK/dns-server.log" 2>&1 & SERVERS+=($!)
python3 "$WORK/noise.py" bin-server "$P_BIN" >"$WORK/bin-server.log" 2>&1 & SERVERS+=($!)

for p in $P_H1 $P_H2 $P_TLS $P_BIN; do
  for i in $(seq 1 50); do ss -Htln "sport = :$p" 2>/dev/null | grep -q . && break; sleep 0.1; done
  ss -Htln "sport = :$p" 2>/dev/null | grep -q . || die "nothing listening on $p: $(cat "$WORK"/*.log)"
done
log "servers up: nginx $P_H1 (http) + $P_TLS (https), nghttpd $P_H2 (h2c), dns $P_DNS/udp, binary $P_BIN"

# ------------------------------------------------------------------ tcpdump
rm -f "$OUT" "$KEYLOG"
OUT_STARTED=1
start_tcpdump "$OUT" "$WORK/tcpdump.log" \
  "(tcp and (port $P_H1 or port $P_H2 or port $P_TLS or port $P_BIN)) or (udp and port $P_DNS)"

# ------------------------------------------------------------------ clients
cat >"$WORK/load.lua" <<'LUA'
local agents = { "okhttp/4.12.0", "python-requests/2.31.0", "Go-http-client/1.1", "shop-web/2.0" }
local kinds = { "users", "orders", "products", "search" }
local function r(n) return math.random(1, n) end
local function pick(t) return t[math.random(1, #t)] end
function init(args) math.randomseed(os.time()) end
function delay() return 1 end
request = function()
  local h = { ["Host"] = "api.mixed.test", ["User-Agent"] = pick(agents), ["Accept"] = "application/json" }
  if math.random() < 0.8 then h["Authorization"] = string.format("Bearer tok%08x", r(0x7fffffff)) end
  local kind = pick(kinds)
  if math.random() < 0.2 then
    h["Content-Type"] = "application/json"
    local body = string.format('{"name":"n%d","qty":%d,"note":"%s"}', r(99999), r(9), string.rep("x", r(1500)))
    return wrk.format("POST", "/api/v1/" .. kind .. "/" .. r(99), h, body)
  end
  local q = ({ "", "?page=" .. r(40), "?q=w" .. r(500) .. "&limit=" .. r(50) })[r(3)]
  return wrk.format("GET", "/api/v1/" .. kind .. "/" .. r(999) .. q, h)
end
LUA
wrk -t1 -c4 -d"${MAX_SECONDS}s" --timeout 10s -s "$WORK/load.lua" "http://127.0.0.1:$P_H1/" >"$WORK/wrk.log" 2>&1 &
CLIENTS+=($!)

# a client loop runs each client in the background and waits for it, so that the TERM that
# stops the loop (trapped) also stops the client it is waiting for
loop_child() { "$@" & CHILD=$!; wait "$CHILD" || true; }
h2_loop() {
  local run=0
  trap 'kill "$CHILD" 2>/dev/null; exit 0' TERM
  while :; do
    run=$((run + 1))
    if (( run % 3 == 0 )); then
      printf '{"order":%d,"items":[1,2,3],"note":"h2 post"}' "$run" >"$WORK/h2body"
      loop_child h2load -c 4 -m 8 --rps 500 -n 2000 -d "$WORK/h2body" -H "authorization: Bearer h2run$run" \
        -i "$WORK/h2uris.$((run % 10))" >>"$WORK/h2load.log" 2>&1
    else
      loop_child h2load -c 4 -m 8 --rps 500 -n 2000 -H "user-agent: h2-bench/$run" \
        -i "$WORK/h2uris.$((run % 10))" >>"$WORK/h2load.log" 2>&1
    fi
  done
}
h2_loop & CLIENTS+=($!)

VARIANTS=("${TLS_CURL_VARIANTS[@]}")
tls_loop() {  # $1 loop id
  local run=0 variant
  trap 'kill "$CHILD" 2>/dev/null; exit 0' TERM
  while :; do
    run=$((run + 1))
    read -r -a variant <<<"${VARIANTS[$(( (run + $1) % ${#VARIANTS[@]} ))]}"
    python3 -c "import random; r=random.Random($1*100000+$run)
kinds=['users','orders','products','search']
for i in range(200): print('url = \"https://$HOST:$P_TLS/api/v1/%s/%d\"' % (r.choice(kinds), r.randrange(120)))
print('output = \"/dev/null\"\n' * 200, end='')" >"$WORK/tlsurls.$1"
    if (( run % 4 == 0 )); then variant+=(-X POST -H 'Content-Type: application/json' -d '{"name":"bench","qty":1}'); fi
    SSLKEYLOGFILE="$KEYLOG" loop_child curl -sk --resolve "$HOST:$P_TLS:127.0.0.1" "${variant[@]}" -K "$WORK/tlsurls.$1"
  done
}
tls_loop 1 & CLIENTS+=($!)
tls_loop 2 & CLIENTS+=($!)

python3 "$WORK/noise.py" dns-client "$P_DNS" >"$WORK/dns-client.log" 2>&1 & CLIENTS+=($!)
python3 "$WORK/noise.py" bin-client "$P_BIN" 1 >"$WORK/bin-client1.log" 2>&1 & CLIENTS+=($!)
python3 "$WORK/noise.py" bin-client "$P_BIN" 2 >"$WORK/bin-client2.log" 2>&1 & CLIENTS+=($!)

# ------------------------------------------------------------------ wait for the size
LIMIT=$(( SIZE_MB * 1024 * 1024 ))
START=$(date +%s)
log "clients running; stopping at $SIZE_MB MiB or after ${MAX_SECONDS}s"
reason="size reached"; last_report=$START
while :; do
  size=$(stat -c %s "$OUT" 2>/dev/null || echo 0)
  [ "$size" -ge "$LIMIT" ] && break
  now=$(date +%s)
  if [ $(( now - START )) -ge "$MAX_SECONDS" ]; then reason="time bound (${MAX_SECONDS}s)"; break; fi
  kill -0 "$TCPDUMP_PID" 2>/dev/null || die "tcpdump died: $(cat "$WORK/tcpdump.log")"
  if [ $(( now - last_report )) -ge 15 ]; then log "  $(( size / 1048576 )) MiB"; last_report=$now; fi
  sleep 0.2
done
for p in "${CLIENTS[@]}"; do kill_wait "$p" TERM; done
CLIENTS=()
sleep 1   # let the last responses and FINs through
kill_wait "$TCPDUMP_PID" INT; TCPDUMP_PID=""
ELAPSED=$(( $(date +%s) - START ))
log "stopped: $reason"

# ------------------------------------------------------------------ report
SIZE=$(stat -c %s "$OUT")
echo "== per port (tcpdump -r OUT -w - FILTER | wc -c) =="
for spec in "tcp port $P_H1:HTTP/1.1" "tcp port $P_H2:h2c" "tcp port $P_TLS:HTTPS" \
            "udp port $P_DNS:DNS" "tcp port $P_BIN:binary TCP"; do
  f="${spec%%:*}"; what="${spec#*:}"
  n=$(tcpdump -r "$OUT" -w - "$f" 2>/dev/null | wc -c)
  printf '  %-14s %-12s %12s bytes (%4.1f %%)\n' "$f" "$what" "$n" "$(python3 -c "print(100*$n/$SIZE)")"
done
echo "== h2load totals (finished runs) =="; { grep -E '^requests:' "$WORK/h2load.log" || true; } | awk '{t+=$2; s+=$8} END {print "  runs " NR ", requests " t ", succeeded " s}'
echo "== tcpdump =="; grep -E "captured|received|dropped" "$WORK/tcpdump.log" || cat "$WORK/tcpdump.log"
DROPPED=$(tcpdump_dropped "$WORK/tcpdump.log")
echo "== capinfos =="; capinfos -t -c -s -d -u -E -l "$OUT" || true
echo "== summary =="
printf 'file              %s\n' "$OUT"
printf 'key log           %s (%s lines)\n' "$KEYLOG" "$(wc -l <"$KEYLOG")"
printf 'size              %s bytes (%.1f MiB)\n' "$SIZE" "$(python3 -c "print($SIZE/1048576)")"
printf 'load phase        %s s\n' "$ELAPSED"
printf 'dropped by kernel %s\n' "${DROPPED:-unknown}"
[ "${DROPPED:-0}" = 0 ] || log "warning: tcpdump reported ${DROPPED} dropped packets: the capture has TCP gaps (rerun on a quieter machine)"
