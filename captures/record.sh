#!/usr/bin/env bash
# record.sh -- record specter's own test captures from real servers on loopback.
#
# USAGE
#   captures/record.sh [--no-tsv] [--list] [NAME...]
#     NAME      record only these captures (default: all; see --list)
#     --no-tsv  do not (re)write <name>.requests.tsv (otherwise tshark is required)
#     --list    print the capture table and exit
#
# WHAT IT DOES (for each capture, in a fresh temp dir, every server restarted)
#   1. starts the servers the capture needs (column "servers" in the table below), all
#      bound to 127.0.0.1:
#        none/h1/h2c  api_server.py (python3 stdlib JSON API) on 18081 and, for h1/h2c, nginx
#                     on 18080 (static files + reverse proxy of /api/ to the python API with
#                     upstream keep-alive, gzip on for JSON/CSS/JS; HTTP/2 cleartext with
#                     prior knowledge for h2c);
#        nghttpd      nghttpd --no-tls on 18082 (HTTP/2 prior knowledge, static files, --echo-upload)
#        grpc         grpc_shop.py serve on 18083 (python grpcio, insecure)
#        ws           ws_echo.py serve on 18084 (python3 stdlib WebSocket + HTTP/1.1)
#        tls          openssl s_server -www -alpn h2,http/1.1 on 18085 (self-signed cert for
#                     api.test.internal made on the fly)
#        shop         shop_api.py serve on 18086 (Flask app, 34 routes, keep-alive WSGI gateway)
#        nginx-tls    nginx on 18087 with TLS 1.2 and 1.3 (ALPN h2 and http/1.1, session
#                     tickets, self-signed cert for api.test.internal), /api/ proxied to
#                     api_server.py on 18081 (only 18087 is recorded); clients curl and
#                     openssl s_client write the session keys to <name>.keylog, and
#                     <name>-dsb.pcapng is the capture with those keys injected
#                     (editcap --inject-secrets)
#   2. starts `tcpdump -i lo -s 0 -B 65536 -U -w ... 'tcp port P ...'` on only that capture's ports
#      (18080/18081 for none/h1/h2c, the one port above otherwise) and waits until it is
#      listening, so other loopback traffic never gets in;
#   3. runs a fixed set of clients (curl, a raw-socket pipelining client in python3,
#      wrk with a request-count-bounded lua script, nghttp, h2load, grpc_shop.py client,
#      ws_echo.py client, openssl s_client, shop_api.py client), all to 127.0.0.1 only;
#   4. stops the servers (nginx gracefully, so proxy keep-alive connections are closed on the
#      wire), then tcpdump (SIGINT), and moves <name>.pcap (and <name>.keylog for tls,
#      <name>.secrets.txt for shop) here; shop captures also (re)write shop-api.routes.tsv;
#   5. writes tshark's view <name>.requests.tsv with groundtruth.sh (copy of
#      /work/shared/captures/groundtruth.sh; override with GROUNDTRUTH=/path) and
#      checks the row count against the table below.
#
# REQUIREMENTS (Debian 12): run as root (tcpdump on lo);
#   apt-get install -y tcpdump nginx-light curl wrk tshark python3 openssl \
#                      nghttp2-client nghttp2-server
#   python3 -m pip install grpcio   (grpc capture; into the python3 on PATH; for Debian's
#                                    /usr/bin/python3 use apt-get install -y python3-grpcio)
#   python3 -m pip install flask    (shop captures; tested with Flask 3.1.3; Debian:
#                                    apt-get install -y python3-flask)
#   Only the tools of the selected captures are required; a missing one is an error,
#   except nghttp for h2c-nghttp, which is then skipped.
#
# Ports 18080-18086 (those of the selected captures) must be free.  Outputs are overwritten.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ADDR=127.0.0.1
WEB_PORT=18080
API_PORT=18081
API="http://$ADDR:$API_PORT"
WEB="http://$ADDR:$WEB_PORT"
FILTER="tcp port $WEB_PORT or tcp port $API_PORT"
FIXED_MTIME=1704067200   # 2024-01-01T00:00:00Z: static files get stable ETag/Last-Modified
H1_ARGS="-d tcp.port==$WEB_PORT,http -d tcp.port==$API_PORT,http"
H2_ARGS="-d tcp.port==$WEB_PORT,http2 -d tcp.port==$API_PORT,http"
# standalone servers, one port each (18087-18089 are reserved for later captures)
H2D_PORT=18082    # nghttpd, HTTP/2 cleartext with prior knowledge
GRPC_PORT=18083   # grpc_shop.py
WS_PORT=18084     # ws_echo.py
TLS_PORT=18085    # openssl s_server
TLS_HOST=api.test.internal
SHOP_PORT=18086   # shop_api.py (Flask)
TLSN_PORT=18087   # nginx with TLS (nginx-tls captures)
TLSN_ARGS="-d tcp.port==$TLSN_PORT,tls -o http.desegment_body:FALSE"
H2D="http://$ADDR:$H2D_PORT"

# name | servers (none/h1/h2c/nghttpd/grpc/ws/tls/shop, see above) | tshark args | expected TSV rows |
#   of which no-response | description
CAPTURES="\
keepalive-curl|none|$H1_ARGS|10|0|one curl run, 10 requests (GET/POST/PUT/DELETE; 200/201/204/404) on one keep-alive connection to the python API
pipelined|h1|$H1_ARGS|11|4|HTTP/1.1 pipelining from a raw socket: 3 requests in one write to the python API, same to nginx (one proxied upstream)
chunked-gzip|h1|$H1_ARGS|10|0|chunked responses, gzip (Content-Length and chunked), chunked request body; nginx gzipping proxied JSON and static JS
expect-100-continue|h1|$H1_ARGS|8|0|Expect: 100-continue POSTs: 100 then 201 (python, nginx), immediate 413 without 100 (python)
large-bodies|none|$H1_ARGS|2|0|~197 KB JSON download and ~287 KB JSON upload on one connection
load-wrk|none|$H1_ARGS|300|0|wrk -t2 -c2, lua script stops each thread after 150 responses (GETs + POSTs)
nginx-proxy|h1|$H1_ARGS|16|0|nginx static files (200/304/404/HEAD) and /api/ proxied to the python API (both legs recorded)
h2c-nghttp|h2c|$H2_ARGS|9|0|nghttp HTTP/2 cleartext (prior knowledge) to nginx, 5 concurrent streams then a POST; HTTP/1.1 upstream leg
h2-prior-knowledge|nghttpd|-d tcp.port==$H2D_PORT,http2|57|0|nghttpd h2c: nghttp 5 concurrent streams (one 404), curl GET + JSON POST (echoed), h2load 50 requests on 2 connections
grpc|grpc|-d tcp.port==$GRPC_PORT,http2|6|0|python grpcio, one channel: GetProduct x2, ListProducts x2, server-streaming WatchPrices (5 messages), GetProduct NOT_FOUND
websocket|ws|-d tcp.port==$WS_PORT,http|2|0|stdlib WebSocket: upgrade (101) + text/binary/ping/fragmented frames both ways + close; then a plain GET on a new connection
tls-alpn|tls|-d tcp.port==$TLS_PORT,tls -o tls.keylog_file:tls-alpn.keylog -o http.desegment_body:FALSE|2|0|openssl s_server (ALPN h2,http/1.1): curl --http1.1 TLS 1.2 and TLS 1.3 (SNI api.test.internal, key log kept), s_client ALPN h2 without data
tls12-nginx|nginx-tls|$TLSN_ARGS -o tls.keylog_file:tls12-nginx.keylog|19|0|TLS 1.2 to nginx: curl HTTP/1.1 (ECDHE-RSA-AES128-GCM), HTTP/2 (AES256-GCM-SHA384) and ChaCha20-Poly1305, Basic auth, openssl s_client full handshake then the session resumed (-sess_in)
tls13-nginx|nginx-tls|$TLSN_ARGS -o tls.keylog_file:tls13-nginx.keylog|17|0|TLS 1.3 to nginx: curl HTTP/2 (AES-128-GCM, AES-256-GCM) and HTTP/1.1 (ChaCha20-Poly1305), Basic auth, openssl s_client resumed with a PSK, and a KeyUpdate (s_client 'k') before and between requests
shop-api-a|shop|-d tcp.port==$SHOP_PORT,http|2500|0|Flask shop API (34 routes, bearer/basic/api-key/cookie auth, PII): shop_api.py client seed 1, 2500 requests on 4 keep-alive connections with reconnects
shop-api-b|shop|-d tcp.port==$SHOP_PORT,http|1500|0|the same Flask shop API: shop_api.py client seed 2, 1500 requests (other ids, every route again)
"

die() { echo "record.sh: error: $*" >&2; exit 1; }
log() { echo "record.sh: $*" >&2; }

# ---------------------------------------------------------------------------- arguments
WANT_TSV=1
SELECTED=()
for a in "$@"; do
  case "$a" in
    --no-tsv) WANT_TSV=0 ;;
    --list) printf '%s' "$CAPTURES" | awk -F'|' '{printf "%-20s %-7s %4s rows  %s\n", $1, $2, $4, $6}'; exit 0 ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $a (try --help)" ;;
    *) printf '%s' "$CAPTURES" | grep -q "^$a|" || die "unknown capture '$a' (try --list)"
       SELECTED+=("$a") ;;
  esac
done
if [ ${#SELECTED[@]} -eq 0 ]; then
  while IFS='|' read -r n _; do [ -n "$n" ] && SELECTED+=("$n"); done <<<"$CAPTURES"
fi

# ---------------------------------------------------------------------------- requirements
mode_of() { printf '%s' "$CAPTURES" | awk -F'|' -v n="$1" '$1==n {print $2; exit}'; }
ports_of_mode() {  # ports a capture's servers listen on (= the ports tcpdump records)
  case "$1" in
    none|h1|h2c) echo "$WEB_PORT $API_PORT" ;;
    nghttpd) echo "$H2D_PORT" ;;
    grpc) echo "$GRPC_PORT" ;;
    ws) echo "$WS_PORT" ;;
    tls) echo "$TLS_PORT" ;;
    shop) echo "$SHOP_PORT" ;;
    nginx-tls) echo "$TLSN_PORT" ;;
  esac
}
pkg_of_tool() {  # Debian package (or pip hint) providing a tool
  case "$1" in
    nginx) echo nginx-light ;;  timeout) echo coreutils ;;
    nghttp|h2load) echo nghttp2-client ;;  nghttpd) echo nghttp2-server ;;
    *) echo "$1" ;;
  esac
}
need=(tcpdump curl python3 timeout)
[ "$WANT_TSV" = 1 ] && need+=(tshark)
NEED_GRPCIO=0
NEED_FLASK=0
for n in "${SELECTED[@]}"; do
  case "$(mode_of "$n")" in
    h1|h2c) need+=(nginx) ;;
    nghttpd) need+=(nghttpd nghttp h2load) ;;
    grpc) NEED_GRPCIO=1 ;;
    shop) NEED_FLASK=1 ;;
    tls) need+=(openssl) ;;
    nginx-tls) need+=(openssl nginx editcap) ;;
  esac
  [ "$n" = load-wrk ] && need+=(wrk)
done
missing=()
for t in $(printf '%s\n' "${need[@]}" | awk '!seen[$0]++'); do
  command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
if [ "$NEED_GRPCIO" = 1 ] && command -v python3 >/dev/null 2>&1 \
    && ! python3 -c 'import grpc' >/dev/null 2>&1; then
  missing+=(grpcio)
fi
if [ "$NEED_FLASK" = 1 ] && command -v python3 >/dev/null 2>&1 \
    && ! python3 -c 'import flask' >/dev/null 2>&1; then
  missing+=(flask)
fi
if [ ${#missing[@]} -gt 0 ]; then
  hint=""
  pkgs="$(for t in "${missing[@]}"; do case "$t" in grpcio|flask) ;; *) pkg_of_tool "$t" ;; esac; done | sort -u | paste -sd' ')"
  [ -n "$pkgs" ] && hint="
  install them with: apt-get install -y $pkgs"
  printf '%s\n' "${missing[@]}" | grep -qx grpcio && hint="$hint
  install python grpcio with: $(command -v python3) -m pip install grpcio
  (for Debian's own /usr/bin/python3: apt-get install -y python3-grpcio)"
  printf '%s\n' "${missing[@]}" | grep -qx flask && hint="$hint
  install python flask with: $(command -v python3) -m pip install flask
  (for Debian's own /usr/bin/python3: apt-get install -y python3-flask)"
  die "missing tools for the selected captures: ${missing[*]}$hint
  (or select other captures by name, see --list; --no-tsv skips the tshark step)"
fi
HAVE_NGHTTP=1
command -v nghttp >/dev/null 2>&1 || HAVE_NGHTTP=0
[ "$(id -u)" = 0 ] || log "warning: not root; tcpdump on lo will probably fail"
GROUNDTRUTH="${GROUNDTRUTH:-$HERE/groundtruth.sh}"
if [ "$WANT_TSV" = 1 ] && [ ! -f "$GROUNDTRUTH" ]; then
  die "groundtruth script not found: $GROUNDTRUTH (set GROUNDTRUTH=/path/to/groundtruth.sh)"
fi

port_busy() {  # $1 port; true if something listens on 127.0.0.1:$1 (or on any address)
  if command -v ss >/dev/null 2>&1; then
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
  else
    (exec 3<>"/dev/tcp/$ADDR/$1") 2>/dev/null
  fi
}
for p in $(for n in "${SELECTED[@]}"; do ports_of_mode "$(mode_of "$n")"; done | tr ' ' '\n' | sort -u); do
  port_busy "$p" && die "port $p is already in use on this host; stop whatever listens there first"
done

# ---------------------------------------------------------------------------- temp dir, cleanup
WORK="$(mktemp -d /tmp/specter-record.XXXXXX)"
API_PID="" ; NGINX_PID="" ; SRV_PID="" ; TCPDUMP_PID=""   # SRV_PID: nghttpd/grpc/ws/tls/shop server
kill_wait() {  # $1 pid, $2 signal: signal, wait up to 5 s, then SIGKILL
  local pid="$1" sig="$2" i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -"$sig" "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { log "pid $pid ignored SIG$sig, killing"; kill -KILL "$pid" 2>/dev/null || true; }
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  set +e
  kill_wait "$NGINX_PID" QUIT; NGINX_PID=""
  kill_wait "$API_PID" TERM; API_PID=""
  kill_wait "$SRV_PID" TERM; SRV_PID=""
  kill_wait "$TCPDUMP_PID" INT; TCPDUMP_PID=""
  if [ "$rc" != 0 ] && [ -d "$WORK/logs" ]; then
    log "failed (exit $rc); last server logs:"
    tail -n 5 "$WORK"/logs/*.err "$WORK"/logs/*.out 2>/dev/null >&2
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/logs" "$WORK/out" "$WORK/nginx/www/static" "$WORK/nginx/tmp" "$WORK/data"

# ---------------------------------------------------------------------------- fixed data
write_fixtures() {
  local www="$WORK/nginx/www"
  cat >"$www/index.html" <<'EOF'
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Fixture shop</title>
  <link rel="stylesheet" href="/static/style.css">
  <script src="/static/app.js" defer></script>
</head>
<body>
  <h1>Fixture shop</h1>
  <p>Static page served by nginx; the data below comes from <code>/api/v1/users</code>.</p>
  <ul id="users"></ul>
</body>
</html>
EOF
  cat >"$www/static/style.css" <<'EOF'
body { font-family: sans-serif; margin: 2em auto; max-width: 40em; color: #222; }
h1 { font-size: 1.6em; border-bottom: 1px solid #ccc; }
code { background: #f4f4f4; padding: 0 .2em; }
#users li { list-style: square; margin: .2em 0; }
EOF
  {
    echo "// app.js -- loads users from the JSON API (fixture)"
    echo "'use strict';"
    echo "async function loadUsers() {"
    echo "  const res = await fetch('/api/v1/users', { headers: { Accept: 'application/json' } });"
    echo "  if (!res.ok) throw new Error('HTTP ' + res.status);"
    echo "  const body = await res.json();"
    echo "  const ul = document.getElementById('users');"
    echo "  for (const u of body.data) { const li = document.createElement('li'); li.textContent = u.name + ' <' + u.email + '>'; ul.appendChild(li); }"
    echo "}"
    for i in $(seq 1 40); do
      echo "function formatPrice$i(v) { return (v * $i / 100).toFixed(2) + ' EUR'; } // helper $i"
    done
    echo "document.addEventListener('DOMContentLoaded', () => { loadUsers().catch(console.error); });"
  } >"$www/static/app.js"
  printf 'User-agent: *\nDisallow: /api/\n' >"$www/robots.txt"
  find "$www" -type f -exec touch -d "@$FIXED_MTIME" {} +

  # request bodies
  python3 - "$WORK/data" <<'EOF'
import json, sys, os
d = sys.argv[1]
bio = ("Alice writes integration tests for HTTP parsers and likes long walks on the loopback "
       "interface. ") * 18
with open(os.path.join(d, "user-bio.json"), "w") as f:       # ~1.8 KB JSON for Expect tests
    json.dump({"name": "Erin Evans", "email": "erin@example.com", "role": "member", "bio": bio}, f)
with open(os.path.join(d, "batch.json"), "w") as f:           # ~4 KB JSON, sent chunked
    json.dump({"batch": [{"op": "create", "name": "User %d" % i, "email": "user%d@example.com" % i}
                         for i in range(1, 61)]}, f)
with open(os.path.join(d, "bulk-users.json"), "w") as f:      # ~287 KB JSON upload
    recs = [{"id": i, "name": "Bulk User %d" % i, "email": "bulk%d@example.com" % i,
             "tags": ["import", "batch-%d" % (i // 100)], "score": (i * 7919) % 1000}
            for i in range(1, 2701)]
    json.dump({"users": recs}, f, separators=(",", ":"))
with open(os.path.join(d, "attachment.bin"), "wb") as f:      # 8 KiB deterministic bytes
    f.write(bytes((i * 31 + 7) % 256 for i in range(8192)))
with open(os.path.join(d, "too-large.bin"), "wb") as f:       # 600 KiB, rejected with 413 (never sent)
    f.write(b"\0" * (600 * 1024))
EOF

  cat >"$WORK/data/load.lua" <<'EOF'
-- wrk script: fixed rotation of requests, each thread stops after LIMIT responses.
local LIMIT = 150
local paths = {
  "/api/v1/users",
  "/api/v1/users/1",
  "/api/v1/orders/1001?expand=items",
  "/api/v1/users/2",
  "/api/v1/users/404",
}
local i, done = 0, 0
request = function()
  i = i + 1
  if i % 6 == 0 then
    return wrk.format("POST", "/api/v1/users", { ["Content-Type"] = "application/json" },
                      '{"name":"Load Test","email":"load@example.com"}')
  end
  return wrk.format("GET", paths[(i % 6)])
end
response = function(status, headers, body)
  done = done + 1
  if done >= LIMIT then wrk.thread:stop() end
end
EOF

  cat >"$WORK/data/pipeline.py" <<'EOF'
# Raw-socket HTTP/1.1 pipelining: all requests in one write, then read until the server
# closes (the last request says Connection: close).   pipeline.py PORT PATH...
import socket, sys, re
port, paths = int(sys.argv[1]), sys.argv[2:]
reqs = []
for n, p in enumerate(paths):
    last = n == len(paths) - 1
    reqs.append("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: specter-pipeline/1.0\r\n"
                "Accept: */*\r\n%s\r\n" % (p, port, "Connection: close\r\n" if last else ""))
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall("".join(reqs).encode())
data = b""
while len(data) < 10 * 1024 * 1024:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
s.close()
codes = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
print("pipelined to port %d: %d requests, %d bytes back, status lines %s"
      % (port, len(paths), len(data), [c.decode() for c in codes]))
sys.exit(0 if len(codes) == len(paths) else 1)
EOF
}

write_nginx_conf() {  # $1 = h1 | h2c | tls
  local listen="listen $ADDR:$WEB_PORT;"
  [ "$1" = h2c ] && listen="listen $ADDR:$WEB_PORT http2;"
  if [ "$1" = tls ]; then
    listen="listen $ADDR:$TLSN_PORT ssl http2;
    ssl_certificate $WORK/tls/cert.pem; ssl_certificate_key $WORK/tls/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305;
    ssl_session_cache shared:tls:1m; ssl_session_tickets on;"
  fi
  cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/logs/nginx.err warn;
events { worker_connections 128; }
http {
  types {
    text/html html; text/css css; application/javascript js; application/json json; text/plain txt;
  }
  default_type application/octet-stream;
  access_log $WORK/logs/nginx-access.log;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  server_tokens off;
  sendfile on;
  keepalive_timeout 30s;
  keepalive_requests 1000;
  client_max_body_size 2m;
  gzip on;
  gzip_min_length 256;
  gzip_proxied any;
  gzip_vary on;
  gzip_types application/json text/css application/javascript;

  upstream api {
    server $ADDR:$API_PORT;
    keepalive 4;
  }
  server {
    $listen
    server_name localhost;
    root $WORK/nginx/www;
    location = /nginx-health { access_log off; default_type text/plain; return 200 "ok\n"; }
    location /api/ {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
    location / { index index.html; try_files \$uri \$uri/ =404; }
  }
}
EOF
}

# ---------------------------------------------------------------------------- servers
start_nginx_tls() {  # nginx with TLS on $TLSN_PORT, fresh self-signed cert
  mkdir -p "$WORK/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" \
    -subj "/CN=$TLS_HOST" -addext "subjectAltName=DNS:$TLS_HOST" >/dev/null 2>&1 || die "openssl req failed"
  write_nginx_conf tls
  nginx -t -q -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" -e "$WORK/logs/nginx.err" \
    >"$WORK/logs/nginx-t.err" 2>&1 || { cat "$WORK/logs/nginx-t.err" >&2; die "nginx config test failed"; }
  nginx -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" -e "$WORK/logs/nginx.err" \
    >"$WORK/logs/nginx.out" 2>&1 &
  NGINX_PID=$!
  wait_http "https://$ADDR:$TLSN_PORT/nginx-health" -k || die "nginx (TLS) did not come up on $ADDR:$TLSN_PORT"
}
wait_http() {  # $1 url, [$2 extra curl flag]; up to ~10 s
  local i
  for i in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 ${2:+"$2"} "$1" && return 0
    sleep 0.1
  done
  return 1
}
start_api() {
  python3 "$HERE/api_server.py" --bind "$ADDR" --port "$API_PORT" --log "$WORK/logs/api-access.log" \
    >"$WORK/logs/api.out" 2>&1 &
  API_PID=$!
  wait_http "$API/healthz" || die "python API did not come up on $ADDR:$API_PORT"
}
start_nginx() {  # $1 = h1 | h2c
  write_nginx_conf "$1"
  nginx -t -q -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" -e "$WORK/logs/nginx.err" \
    >"$WORK/logs/nginx-t.err" 2>&1 || { cat "$WORK/logs/nginx-t.err" >&2; die "nginx config test failed"; }
  nginx -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" -e "$WORK/logs/nginx.err" \
    >"$WORK/logs/nginx.out" 2>&1 &
  NGINX_PID=$!
  if [ "$1" = h2c ]; then
    wait_http "$WEB/nginx-health" --http2-prior-knowledge || die "nginx (h2c) did not come up on $ADDR:$WEB_PORT"
  else
    wait_http "$WEB/nginx-health" || die "nginx did not come up on $ADDR:$WEB_PORT"
  fi
}
start_tcpdump() {  # $1 = output file, $2 = capture filter (default: the nginx/API ports)
  local i
  : >"$WORK/logs/tcpdump.err"
  # -B: 64 MiB kernel buffer. In immediate mode each ring slot holds one whole packet (up to the
  # 64 KiB loopback MTU), so the default 2 MiB buffer holds a few dozen packets and drops bursts
  # (the first shop-api-b recording lost 40).
  tcpdump -i lo -s 0 -B 65536 -U --immediate-mode -Z root -n -w "$1" "${2:-$FILTER}" 2>"$WORK/logs/tcpdump.err" &
  TCPDUMP_PID=$!
  for i in $(seq 1 100); do
    grep -q "listening on" "$WORK/logs/tcpdump.err" && break
    kill -0 "$TCPDUMP_PID" 2>/dev/null || { cat "$WORK/logs/tcpdump.err" >&2; die "tcpdump failed to start"; }
    sleep 0.1
  done
  grep -q "listening on" "$WORK/logs/tcpdump.err" || die "tcpdump not listening after 10 s"
  sleep 0.5
}

# standalone servers: each runs as SRV_PID, bound to 127.0.0.1 only
wait_listen() {  # $1 port, $2 what; up to ~10 s, fails early if SRV_PID died
  local i
  for i in $(seq 1 100); do
    port_busy "$1" && return 0
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.1
  done
  die "$2 did not come up on $ADDR:$1"
}
write_h2_fixtures() {  # htdocs for nghttpd: the nginx static files plus two JSON files
  local d="$WORK/h2www"
  rm -rf "$d"; mkdir -p "$d/static" "$d/api"
  cp "$WORK/nginx/www/index.html" "$d/"
  cp "$WORK/nginx/www/static/style.css" "$WORK/nginx/www/static/app.js" "$d/static/"
  python3 - "$d/api" <<'EOF'
import json, sys, os
d = sys.argv[1]
products = [{"id": "sku-%d" % i, "name": "Product %d" % i, "price_cents": 1000 + 137 * i,
             "currency": "EUR", "tags": ["fixture", "h2"]} for i in range(1, 11)]
with open(os.path.join(d, "products.json"), "w") as f:
    json.dump({"data": products, "total": len(products)}, f, indent=1)
with open(os.path.join(d, "product-1.json"), "w") as f:
    json.dump(products[0], f)
EOF
  find "$d" -type f -exec touch -d "@$FIXED_MTIME" {} +
}
start_nghttpd() {
  write_h2_fixtures
  nghttpd --no-tls -a "$ADDR" -d "$WORK/h2www" --echo-upload "$H2D_PORT" \
    >"$WORK/logs/nghttpd.out" 2>"$WORK/logs/nghttpd.err" &
  SRV_PID=$!
  wait_listen "$H2D_PORT" nghttpd
  wait_http "$H2D/index.html" --http2-prior-knowledge || die "nghttpd does not answer on $ADDR:$H2D_PORT"
}
start_grpc() {
  python3 "$HERE/grpc_shop.py" serve --port "$GRPC_PORT" >"$WORK/logs/grpc.out" 2>"$WORK/logs/grpc.err" &
  SRV_PID=$!
  wait_listen "$GRPC_PORT" "grpc_shop.py"
}
start_ws() {
  python3 "$HERE/ws_echo.py" serve --port "$WS_PORT" >"$WORK/logs/ws.out" 2>"$WORK/logs/ws.err" &
  SRV_PID=$!
  wait_listen "$WS_PORT" "ws_echo.py"
}
start_tls() {  # fresh self-signed cert for $TLS_HOST (+ www.test.internal), s_server -www
  mkdir -p "$WORK/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" \
    -subj "/CN=$TLS_HOST" -addext "subjectAltName=DNS:$TLS_HOST,DNS:www.test.internal" \
    >"$WORK/logs/openssl-req.err" 2>&1 || { cat "$WORK/logs/openssl-req.err" >&2; die "openssl req failed"; }
  openssl s_server -accept "$ADDR:$TLS_PORT" -cert "$WORK/tls/cert.pem" -key "$WORK/tls/key.pem" \
    -alpn h2,http/1.1 -www </dev/null >"$WORK/logs/tls.out" 2>"$WORK/logs/tls.err" &
  SRV_PID=$!
  wait_listen "$TLS_PORT" "openssl s_server"
}
start_shop() {
  python3 "$HERE/shop_api.py" serve "$SHOP_PORT" >"$WORK/logs/shop.out" 2>"$WORK/logs/shop.err" &
  SRV_PID=$!
  wait_listen "$SHOP_PORT" "shop_api.py"
}

# ---------------------------------------------------------------------------- clients
# common curl options: quiet, bounded, body to the client log, one status line per request on stderr
CO=(-sS --max-time 30 -w '%{stderr}  %{http_code} new_conn=%{num_connects} %{method} %{url_effective}\n')
JSON=(-H 'Content-Type: application/json' -H 'Accept: application/json')

cap_keepalive_curl() {
  curl "${CO[@]}" -H 'Accept: application/json' -H 'Authorization: Bearer fixture-token-0001' \
      "$API/api/v1/users" "$API/api/v1/users/1" "$API/api/v1/users/2" \
      "$API/api/v1/orders/1001?expand=items" "$API/api/v1/orders/1002" \
    --next "${CO[@]}" "${JSON[@]}" --data-binary '{"name":"Dave Davis","email":"dave@example.com"}' "$API/api/v1/users" \
    --next "${CO[@]}" "${JSON[@]}" -X PUT --data-binary '{"name":"Bob Baker","email":"bob@example.com"}' "$API/api/v1/users/2" \
    --next "${CO[@]}" -X DELETE "$API/api/v1/users/3" \
    --next "${CO[@]}" -H 'Accept: application/json' "$API/api/v1/users/3" "$API/api/v1/users?limit=2"
}

cap_pipelined() {
  timeout 20 python3 "$WORK/data/pipeline.py" "$API_PORT" \
    /api/v1/users/1 "/api/v1/orders/1001?expand=items" /api/v1/users/2
  timeout 20 python3 "$WORK/data/pipeline.py" "$WEB_PORT" \
    /index.html /api/v1/users /static/style.css
}

cap_chunked_gzip() {
  curl "${CO[@]}" "$API/api/v1/events" \
    --next "${CO[@]}" --compressed "$API/api/v1/reports/summary" "$API/api/v1/reports/daily" \
    --next "${CO[@]}" "$API/api/v1/reports/daily" \
    --next "${CO[@]}" "${JSON[@]}" -H 'Transfer-Encoding: chunked' -H 'Expect:' \
      --data-binary "@$WORK/data/batch.json" "$API/api/v1/uploads"
  curl "${CO[@]}" --compressed "$WEB/api/v1/users" "$WEB/static/app.js" "$WEB/api/v1/events"
}

cap_expect_100_continue() {
  curl "${CO[@]}" "${JSON[@]}" -H 'Expect: 100-continue' --data-binary "@$WORK/data/user-bio.json" "$API/api/v1/users" \
    --next "${CO[@]}" -H 'Content-Type: application/octet-stream' -H 'Expect: 100-continue' \
      --data-binary "@$WORK/data/attachment.bin" "$API/api/v1/uploads" \
    --next "${CO[@]}" -H 'Content-Type: application/octet-stream' -H 'Expect: 100-continue' \
      --data-binary "@$WORK/data/too-large.bin" "$API/api/v1/uploads"
  curl "${CO[@]}" "${JSON[@]}" -H 'Expect: 100-continue' --data-binary "@$WORK/data/user-bio.json" "$WEB/api/v1/users"
}

cap_large_bodies() {
  curl "${CO[@]}" -H 'Accept: application/json' "$API/api/v1/export" \
    --next "${CO[@]}" "${JSON[@]}" -H 'Expect:' --data-binary "@$WORK/data/bulk-users.json" "$API/api/v1/uploads"
}

cap_load_wrk() {
  timeout 30 wrk -t2 -c2 -d5s --timeout 5s -s "$WORK/data/load.lua" "$API" >&2
}

cap_nginx_proxy() {
  local css="$WORK/nginx/www/static/style.css" etag
  etag="$(printf '"%x-%x"' "$FIXED_MTIME" "$(stat -c %s "$css")")"
  curl "${CO[@]}" "$WEB/" "$WEB/static/style.css" "$WEB/api/v1/users" "$WEB/api/v1/orders/1001?expand=items" \
      "$WEB/missing.html" \
    --next "${CO[@]}" --compressed "$WEB/static/app.js" \
    --next "${CO[@]}" -H "If-None-Match: $etag" "$WEB/static/style.css" \
    --next "${CO[@]}" -I "$WEB/static/app.js" \
    --next "${CO[@]}" "${JSON[@]}" --data-binary '{"name":"Frank Foster","email":"frank@example.com"}' "$WEB/api/v1/users" \
    --next "${CO[@]}" -X DELETE "$WEB/api/v1/users/2" \
    --next "${CO[@]}" -H 'Accept: application/json' "$WEB/api/v1/users/999"
}

cap_h2c_nghttp() {
  timeout 20 nghttp -n "$WEB/" "$WEB/static/style.css" "$WEB/static/app.js" \
    "$WEB/api/v1/users" "$WEB/api/v1/orders/1001?expand=items" >&2
  timeout 20 nghttp -n -H 'content-type: application/json' -d "$WORK/data/user-bio.json" \
    "$WEB/api/v1/users" >&2
}

cap_h2_prior_knowledge() {
  local out
  # one connection, 5 concurrent streams (nghttp sends all HEADERS before reading), one 404
  timeout 20 nghttp -nv "$H2D/" "$H2D/static/style.css" "$H2D/static/app.js" "$H2D/api/products.json" \
    "$H2D/missing.html" || return 1
  # curl: GET, then a JSON POST (nghttpd --echo-upload sends the body back). Two curl runs, so
  # two connections: curl 7.88.1 fails to reuse a prior-knowledge connection ("Error in the
  # HTTP2 framing layer", curl issue 10634, fixed after 7.88.1).
  curl "${CO[@]}" --http2-prior-knowledge -H 'Accept: application/json' "$H2D/api/product-1.json" || return 1
  curl "${CO[@]}" --http2-prior-knowledge "${JSON[@]}" \
    --data-binary '{"sku":"sku-1","qty":2,"note":"h2 prior knowledge"}' "$H2D/api/orders" || return 1
  out="$(timeout 30 h2load -n 50 -c 2 -m 4 "$H2D/api/products.json")"
  printf '%s\n' "$out"
  printf '%s\n' "$out" | grep '^requests:' | sed 's/^/  h2load /' >&2
  printf '%s\n' "$out" | grep -q '^requests: 50 total, 50 started, 50 done, 50 succeeded'
}

cap_grpc() {
  timeout 30 python3 "$HERE/grpc_shop.py" client --port "$GRPC_PORT"
}

cap_websocket() {
  timeout 30 python3 "$HERE/ws_echo.py" client --port "$WS_PORT"
}

cap_tls_alpn() {  # key log of every connection -> tls-alpn.keylog next to the capture
  local kl="$WORK/out/tls-alpn.keylog" url="https://$TLS_HOST:$TLS_PORT/" out
  local -a tc=(-k --http1.1 --resolve "$TLS_HOST:$TLS_PORT:$ADDR")
  : >"$kl"
  # --http1.1: curl then offers ALPN http/1.1 only. s_server -www speaks HTTP/1.0 whatever
  # ALPN says, so a curl that got h2 would send the HTTP/2 preface and hang.
  SSLKEYLOGFILE="$kl" curl "${CO[@]}" "${tc[@]}" --tlsv1.2 --tls-max 1.2 "$url" || return 1
  SSLKEYLOGFILE="$kl" curl "${CO[@]}" "${tc[@]}" --tlsv1.3 "$url" || return 1
  out="$(timeout 20 openssl s_client -connect "$ADDR:$TLS_PORT" -servername "$TLS_HOST" -alpn h2 \
           -keylogfile "$kl" </dev/null 2>&1)"
  printf '%s\n' "$out"
  printf '%s\n' "$out" | grep -E '^(ALPN protocol|New, TLS)' | sed 's/^/  s_client: /' >&2
  printf '%s\n' "$out" | grep -q '^ALPN protocol: h2'
}

# TLS to nginx: every client writes its session keys to $WORK/out/<name>.keylog.
tls_curl() {  # $1 keylog, rest: curl options and URLs
  local kl="$1"; shift
  SSLKEYLOGFILE="$kl" curl "${CO[@]}" -k --resolve "$TLS_HOST:$TLSN_PORT:$ADDR" "$@"
}
tls_s_client() {  # $1 keylog, $2 request path, rest: s_client options; one GET, then close
  local kl="$1" path="$2"; shift 2
  # stdin stays open until the response is in: s_client closes at end of input.
  { sleep 0.3; printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$TLS_HOST"; sleep 1; } |
    timeout 20 openssl s_client -connect "$ADDR:$TLSN_PORT" -servername "$TLS_HOST" -keylogfile "$kl" "$@" 2>&1 |
    grep -E '^(HTTP/|New, |Reused, |Protocol)' | sed 's/^/  s_client: /' >&2
}
cap_tls12_nginx() {
  local kl="$WORK/out/tls12-nginx.keylog" base="https://$TLS_HOST:$TLSN_PORT"
  local -a v12=(--tlsv1.2 --tls-max 1.2)
  : >"$kl"
  tls_curl "$kl" "${v12[@]}" --http1.1 --ciphers ECDHE-RSA-AES128-GCM-SHA256 \
    "$base/" "$base/static/style.css" "$base/api/v1/users?limit=2" "$base/api/v1/users/1" "$base/api/v1/users/999" || return 1
  tls_curl "$kl" "${v12[@]}" --http1.1 --ciphers ECDHE-RSA-AES128-GCM-SHA256 \
    -H 'Content-Type: application/json' --data-binary @"$WORK/data/user-bio.json" "$base/api/v1/users" || return 1
  tls_curl "$kl" "${v12[@]}" --http2 --ciphers ECDHE-RSA-AES256-GCM-SHA384 \
    "$base/api/v1/orders/7?expand=items" "$base/api/v1/events" "$base/api/v1/reports/summary" "$base/static/app.js" "$base/robots.txt" || return 1
  tls_curl "$kl" "${v12[@]}" --http2 --ciphers ECDHE-RSA-CHACHA20-POLY1305 "$base/api/v1/users" "$base/missing" || return 1
  tls_curl "$kl" "${v12[@]}" --http1.1 --ciphers ECDHE-RSA-CHACHA20-POLY1305 "$base/api/v1/reports/daily" "$base/index.html" || return 1
  # Basic credentials, inside TLS: not a cleartext posture finding.
  tls_curl "$kl" "${v12[@]}" --http1.1 -u alice:wonderland "$base/api/v1/users/7" || return 1
  # A full handshake, then the session resumed by id/ticket (abbreviated handshake).
  tls_s_client "$kl" /api/v1/users/2 -tls1_2 -sess_out "$WORK/tls/s12.pem"
  tls_s_client "$kl" /api/v1/users/3 -tls1_2 -sess_in "$WORK/tls/s12.pem"
  tls_s_client "$kl" /api/v1/orders/1 -tls1_2 -sess_in "$WORK/tls/s12.pem"
}
cap_tls13_nginx() {
  local kl="$WORK/out/tls13-nginx.keylog" base="https://$TLS_HOST:$TLSN_PORT"
  : >"$kl"
  tls_curl "$kl" --tlsv1.3 --http2 --tls13-ciphers TLS_AES_128_GCM_SHA256 \
    "$base/" "$base/static/style.css" "$base/api/v1/users?limit=3" "$base/api/v1/users/2" "$base/api/v1/users/404" || return 1
  tls_curl "$kl" --tlsv1.3 --http2 --tls13-ciphers TLS_AES_128_GCM_SHA256 \
    -H 'Content-Type: application/json' --data-binary @"$WORK/data/user-bio.json" "$base/api/v1/users" || return 1
  tls_curl "$kl" --tlsv1.3 --http2 --tls13-ciphers TLS_AES_256_GCM_SHA384 \
    "$base/api/v1/orders/3?expand=items" "$base/api/v1/events" "$base/static/app.js" || return 1
  tls_curl "$kl" --tlsv1.3 --http1.1 --tls13-ciphers TLS_CHACHA20_POLY1305_SHA256 \
    "$base/api/v1/reports/daily" "$base/robots.txt" "$base/nope" || return 1
  tls_curl "$kl" --tlsv1.3 --http2 -u alice:wonderland "$base/api/v1/users/7" || return 1
  # PSK resumption from a saved session.
  tls_s_client "$kl" /api/v1/users/4 -tls1_3 -sess_out "$WORK/tls/s13.pem"
  tls_s_client "$kl" /api/v1/users/5 -tls1_3 -sess_in "$WORK/tls/s13.pem"
  # KeyUpdate: 'k' on its own line makes s_client send one (and ask nginx for one too),
  # then a request, then another update and a second request on the same connection.
  { sleep 0.3; printf 'k\n'; sleep 0.3
    printf 'GET /api/v1/users/6 HTTP/1.1\r\nHost: %s\r\n\r\n' "$TLS_HOST"; sleep 0.5
    printf 'k\n'; sleep 0.3
    printf 'GET /api/v1/orders/2 HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$TLS_HOST"; sleep 1; } |
    timeout 20 openssl s_client -connect "$ADDR:$TLSN_PORT" -servername "$TLS_HOST" -keylogfile "$kl" -tls1_3 2>&1 |
    grep -E '^(HTTP/|KEYUPDATE)' | sed 's/^/  s_client: /' >&2
}

shop_client() {  # $1 name, $2 seed, $3 requests: the generator, then the route table
  local name="$1"
  timeout 120 python3 "$HERE/shop_api.py" client "$SHOP_PORT" "$2" "$3" "$WORK/out/$name.secrets.txt" || return 1
  python3 "$HERE/shop_api.py" routes >"$HERE/shop-api.routes.tsv.tmp" || return 1
  mv "$HERE/shop-api.routes.tsv.tmp" "$HERE/shop-api.routes.tsv"
}

cap_shop_api_a() { shop_client shop-api-a 1 2500; }

cap_shop_api_b() { shop_client shop-api-b 2 1500; }

# ---------------------------------------------------------------------------- driver
tsv_rows() { echo $(($(wc -l <"$1") - 1)); }

gt_run() {  # $1 = pcap in $HERE, $2 = tshark args from the table; TSV on stdout
  local -a extra=()
  # groundtruth.sh applies tshark-args.tsv itself for captures in its own directory
  if [ "$(cd "$(dirname "$GROUNDTRUTH")" && pwd)" != "$HERE" ]; then read -r -a extra <<<"$2"; fi
  "$GROUNDTRUTH" "$1" ${extra[@]+"${extra[@]}"}
}

write_registry() {  # tshark-args.tsv: per-capture tshark options, the format groundtruth.sh reads
  printf '%s' "$CAPTURES" | awk -F'|' 'NF >= 3 {printf "%s.pcap\t%s\n", $1, $3}' >"$HERE/tshark-args.tsv.tmp"
  mv "$HERE/tshark-args.tsv.tmp" "$HERE/tshark-args.tsv"
}

FAILED=()
SUMMARY=()
record() {  # $1 name
  local name="$1" mode args expected noresp desc pcap rows nr filter f dropped
  IFS='|' read -r _ mode args expected noresp desc < <(printf '%s' "$CAPTURES" | grep "^$name|")
  if [ "$mode" = h2c ] && [ "$HAVE_NGHTTP" = 0 ]; then
    log "skipping $name: nghttp not installed (apt-get install -y nghttp2-client)"
    SUMMARY+=("$name: skipped (no nghttp)")
    return 0
  fi
  log "== $name: $desc"
  pcap="$WORK/out/$name.pcap"
  case "$mode" in
    none|h1|h2c) start_api; if [ "$mode" != none ]; then start_nginx "$mode"; fi ;;
    nghttpd) start_nghttpd ;;
    grpc) start_grpc ;;
    ws) start_ws ;;
    tls) start_tls ;;
    shop) start_shop ;;
    nginx-tls) start_api; start_nginx_tls ;;
    *) die "capture $name: unknown server mode '$mode'" ;;
  esac
  filter="$(ports_of_mode "$mode" | awk '{for (i = 1; i <= NF; i++) printf "%stcp port %s", (i > 1 ? " or " : ""), $i}')"
  start_tcpdump "$pcap" "$filter"
  if ! "cap_${name//-/_}" >"$WORK/logs/client-$name.out"; then
    FAILED+=("$name: a client failed")
    log "a client failed for $name; its output:"; tail -n 20 "$WORK/logs/client-$name.out" >&2
  fi
  sleep 0.3
  kill_wait "$NGINX_PID" QUIT; NGINX_PID=""
  kill_wait "$API_PID" TERM; API_PID=""
  kill_wait "$SRV_PID" TERM; SRV_PID=""
  sleep 0.5
  kill_wait "$TCPDUMP_PID" INT; TCPDUMP_PID=""
  grep -E 'packets (captured|dropped by kernel)' "$WORK/logs/tcpdump.err" | sed 's/^/  tcpdump: /' >&2 || true
  dropped="$(sed -n 's/^\([0-9]*\) packets dropped by kernel$/\1/p' "$WORK/logs/tcpdump.err")"
  if [ -n "$dropped" ] && [ "$dropped" != 0 ]; then
    FAILED+=("$name: tcpdump dropped $dropped packets (kernel buffer)")
  fi
  [ -s "$pcap" ] || die "no capture written for $name"
  mv "$pcap" "$HERE/$name.pcap"
  chmod 644 "$HERE/$name.pcap"
  for f in "$WORK/out/$name".*; do   # side outputs, e.g. tls-alpn.keylog
    [ -e "$f" ] || continue
    mv "$f" "$HERE/"; chmod 644 "$HERE/$(basename "$f")"
  done
  if [ "$mode" = nginx-tls ]; then   # the same capture with its keys inside (pcapng DSB)
    editcap --inject-secrets "tls,$HERE/$name.keylog" "$HERE/$name.pcap" "$HERE/$name-dsb.pcapng"
    chmod 644 "$HERE/$name-dsb.pcapng"
  fi
  if [ "$WANT_TSV" = 1 ]; then
    gt_run "$HERE/$name.pcap" "$args" >"$HERE/$name.requests.tsv.tmp"
    mv "$HERE/$name.requests.tsv.tmp" "$HERE/$name.requests.tsv"
    rows="$(tsv_rows "$HERE/$name.requests.tsv")"
    SUMMARY+=("$(printf '%-22s %8s bytes  %4s rows (expected %s)' "$name.pcap" "$(stat -c %s "$HERE/$name.pcap")" "$rows" "$expected")")
    if [ "$rows" != "$expected" ]; then
      FAILED+=("$name: $rows TSV rows, expected $expected")
    fi
    nr="$(cut -f17 "$HERE/$name.requests.tsv" | grep -c '^no-response$' || true)"
    if [ "$nr" != "$noresp" ]; then
      FAILED+=("$name: $nr requests without a response in the TSV, expected $noresp")
    fi
  else
    SUMMARY+=("$(printf '%-22s %8s bytes' "$name.pcap" "$(stat -c %s "$HERE/$name.pcap")")")
  fi
}

write_fixtures
write_registry
for n in "${SELECTED[@]}"; do record "$n"; done

log "done:"
printf '  %s\n' "${SUMMARY[@]}" >&2
[ "$WANT_TSV" = 1 ] || log "warning: --no-tsv: the *.requests.tsv files were NOT regenerated and may no longer match the captures"
if [ ${#FAILED[@]} -gt 0 ]; then
  log "PROBLEMS:"
  printf '  %s\n' "${FAILED[@]}" >&2
  exit 1
fi
