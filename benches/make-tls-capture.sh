#!/usr/bin/env bash
# make-tls-capture.sh -- record a large HTTPS JSON-API capture WITH its session keys, for the
# decryption benchmark (specter exchanges --keylog against tshark -o tls.keylog_file).
#
# USAGE
#   benches/make-tls-capture.sh [OUT.pcap] [SIZE_MB]
#     OUT.pcap  default /work/bench-data/tls-api.pcap (keep it OUT of the git repo); the key
#               log is written next to it as OUT.keylog
#     SIZE_MB   default 320; recording stops once the file reaches SIZE_MB MiB
#
#   Environment: PORT (default 18092), MAX_SECONDS (default 1200), SEED (default 42)
#
# WHAT IT DOES (everything on 127.0.0.1)
#   1. writes ~600 JSON documents (200 B .. 24 KiB) under API-like paths into a temp dir;
#   2. starts nginx (1 worker) with TLS 1.2 and 1.3, ALPN h2 and http/1.1, ECDHE-RSA
#      AES-128/256-GCM and ChaCha20-Poly1305, on 127.0.0.1:PORT (self-signed certificate);
#   3. starts `tcpdump -i lo -s 0 -B 65536 -w OUT 'tcp port PORT'`;
#   4. runs two curl loops with SSLKEYLOGFILE=OUT.keylog (curl writes every session's
#      secrets): each curl run is one connection carrying 300 requests, cycling through
#      TLS 1.2 / 1.3, HTTP/1.1 / HTTP/2 and the three AEAD suites; 1 run in 4 POSTs JSON;
#   5. at SIZE_MB stops the clients, then tcpdump, and prints capinfos and the drop count.
#
#   tshark does not know the port is TLS: use `-d tcp.port==PORT,tls -o tls.keylog_file:OUT.keylog`.
#
# REQUIREMENTS (Debian 12): root; apt-get install -y nginx-light curl openssl tcpdump tshark python3
set -euo pipefail

OUT="${1:-/work/bench-data/tls-api.pcap}"
SIZE_MB="${2:-320}"
PORT="${PORT:-18092}"
MAX_SECONDS="${MAX_SECONDS:-1200}"
SEED="${SEED:-42}"
HOST=api.bench.test
KEYLOG="${OUT%.pcap}.keylog"
log() { printf '[make-tls-capture %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

case "$(cd "$(dirname "$OUT")" && pwd)" in /work/main*|*/wt-*) echo "refusing to write into a repo: $OUT" >&2; exit 2;; esac
mkdir -p "$(dirname "$OUT")"
WORK="$(mktemp -d /tmp/specter-tlsbench.XXXXXX)"
NGINX_PID="" ; TCPDUMP_PID="" ; LOOPS=()
cleanup() {
  set +e
  for p in "${LOOPS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [ -n "$TCPDUMP_PID" ] && { kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID"; }
  [ -n "$NGINX_PID" ] && { kill -QUIT "$NGINX_PID"; wait "$NGINX_PID"; }
  rm -rf "$WORK"
}
trap cleanup EXIT

# 1. documents
python3 - "$WORK/www" "$SEED" <<'PY'
import json, os, random, sys
root, seed = sys.argv[1], int(sys.argv[2])
rnd = random.Random(seed)
def doc(n):
    items = [{"id": rnd.randrange(10**6), "name": "item %d" % rnd.randrange(10**4),
              "email": "user%d@example.com" % rnd.randrange(10**5),
              "price": round(rnd.random() * 500, 2), "tags": ["a", "b", "c"][: rnd.randrange(4)]}
             for _ in range(n)]
    return json.dumps({"data": items, "total": n, "page": 1})
for kind, count in (("users", 200), ("orders", 200), ("products", 200)):
    d = os.path.join(root, "api/v1", kind)
    os.makedirs(d, exist_ok=True)
    for i in range(count):
        with open(os.path.join(d, "%d.json" % i), "w") as fh:
            fh.write(doc(rnd.choice([1, 2, 5, 20, 60, 150])))
PY
mkdir -p "$WORK/tmp" "$WORK/logs"
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
  -subj "/CN=$HOST" -addext "subjectAltName=DNS:$HOST" >/dev/null 2>&1
cat >"$WORK/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1; pid $WORK/nginx.pid;
error_log $WORK/logs/nginx.err warn;
events { worker_connections 256; }
http {
  types { application/json json; }
  default_type application/json;
  access_log off;
  client_body_temp_path $WORK/tmp/body; proxy_temp_path $WORK/tmp/proxy;
  fastcgi_temp_path $WORK/tmp/fcgi; uwsgi_temp_path $WORK/tmp/uwsgi; scgi_temp_path $WORK/tmp/scgi;
  keepalive_requests 10000; keepalive_timeout 30s;
  server {
    listen 127.0.0.1:$PORT ssl http2;
    ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305;
    root $WORK/www;
    location ~ ^/api/v1/(users|orders|products)/(\d+)\$ {
      if (\$request_method = POST) { return 201 '{"ok":true}'; }
      try_files /api/v1/\$1/\$2.json =404;
    }
  }
}
EOF
nginx -p "$WORK/" -c "$WORK/nginx.conf" -e "$WORK/logs/nginx.err" >/dev/null 2>&1 &
NGINX_PID=$!
for _ in $(seq 1 50); do curl -sk -o /dev/null "https://127.0.0.1:$PORT/api/v1/users/1" && break; sleep 0.1; done

# 3. tcpdump
rm -f "$OUT" "$KEYLOG"
tcpdump -i lo -s 0 -B 65536 -n -w "$OUT" "tcp port $PORT" 2>"$WORK/logs/tcpdump.err" &
TCPDUMP_PID=$!
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/logs/tcpdump.err" && break; sleep 0.1; done
sleep 0.5

# 4. clients
VARIANTS=("${TLS_CURL_VARIANTS[@]}")
client_loop() {  # $1 loop id
  local run=0 variant
  while :; do
    run=$((run + 1))
    read -r -a variant <<<"${VARIANTS[$(( (run + $1) % ${#VARIANTS[@]} ))]}"
    python3 -c "import random,sys; r=random.Random($1*100000+$run)
kinds=['users','orders','products']
for i in range(300): print('url = \"https://$HOST:$PORT/api/v1/%s/%d\"' % (r.choice(kinds), r.randrange(210)))
print('output = \"/dev/null\"\n' * 300, end='')" >"$WORK/urls.$1"
    if (( run % 4 == 0 )); then variant+=(-X POST -H 'Content-Type: application/json' -d '{"name":"bench","qty":1}'); fi
    SSLKEYLOGFILE="$KEYLOG" curl -sk --resolve "$HOST:$PORT:127.0.0.1" "${variant[@]}" -K "$WORK/urls.$1" || true
  done
}
client_loop 1 & LOOPS+=($!)
client_loop 2 & LOOPS+=($!)
start=$(date +%s)
while :; do
  size=$(stat -c %s "$OUT" 2>/dev/null || echo 0)
  (( size >= SIZE_MB * 1048576 )) && break
  (( $(date +%s) - start >= MAX_SECONDS )) && { echo "time bound reached" >&2; break; }
  sleep 1
done
for p in "${LOOPS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
LOOPS=()
sleep 1
kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID" || true; TCPDUMP_PID=""
grep -E "packets (captured|dropped)" "$WORK/logs/tcpdump.err" >&2 || true
capinfos -c -s -u "$OUT" >&2 || true
echo "keys: $(wc -l <"$KEYLOG") lines in $KEYLOG" >&2
