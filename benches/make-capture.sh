#!/usr/bin/env bash
# make-capture.sh -- record a large HTTP/1.1 JSON-API capture for whole-process benchmarks.
#
# USAGE
#   benches/make-capture.sh [OUT.pcap] [SIZE_MB]
#     OUT.pcap  default /work/bench-data/http1-api.pcap (keep it OUT of the git repo)
#     SIZE_MB   default 1024; recording stops once the file reaches SIZE_MB MiB
#               (it ends up a few MiB larger: tcpdump flushes its buffer on exit)
#
#   Environment:
#     MAX_SECONDS   hard bound on the load phase (default 1800); the capture is kept
#                   (smaller than asked) if the bound is reached first
#     CONNECTIONS   wrk connections (default 8), THREADS wrk threads (default 1)
#     SEED          seed for the generated JSON documents (default 42)
#
# WHAT IT DOES (everything on 127.0.0.1, port 18090 only)
#   1. writes an nginx config + ~500 JSON documents (200 B .. 20 KiB) into a temp dir;
#   2. starts nginx (1 worker, keep-alive, gzip for clients that ask) on 127.0.0.1:18090;
#   3. starts `tcpdump -i lo -s 0 -B 65536 -w OUT 'tcp port 18090'` (plain pcap, LINKTYPE
#      ETHERNET, microsecond timestamps) and waits until it is listening;
#   4. runs wrk with a lua script: GET/POST/PUT/PATCH/DELETE over ~15 endpoint
#      templates with thousands of distinct ids and query strings, JSON request bodies,
#      ~25% of requests with Accept-Encoding: gzip (chunked gzip responses);
#      no HEAD: wrk's response parser does not know the request method and would wait
#      for the Content-Length body of a HEAD response until its timeout;
#   5. polls the file size; at SIZE_MB stops wrk, waits 1 s, stops tcpdump (SIGINT),
#      prints tcpdump's captured / dropped-by-kernel counts and capinfos.
#   All servers are stopped on exit (trap), the temp dir removed; on failure or interrupt
#   the partial capture is deleted.
#
#   tshark does not know port 18090 is HTTP: use `-d tcp.port==18090,http`.
#
# REQUIREMENTS (Debian 12): root; apt-get install -y nginx-light wrk tcpdump tshark python3
set -euo pipefail

OUT="${1:-/work/bench-data/http1-api.pcap}"
SIZE_MB="${2:-1024}"
MAX_SECONDS="${MAX_SECONDS:-1800}"
CONNECTIONS="${CONNECTIONS:-8}"
THREADS="${THREADS:-1}"
SEED="${SEED:-42}"
PORT=18090

log() { printf '[make-capture %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

case "$SIZE_MB" in ''|*[!0-9]*) die "SIZE_MB must be a positive integer, got '$SIZE_MB'";; esac
[ "$SIZE_MB" -gt 0 ] || die "SIZE_MB must be > 0"
for t in nginx wrk tcpdump python3 capinfos; do
  command -v "$t" >/dev/null 2>&1 || die "$t not found (apt-get install -y nginx-light wrk tcpdump tshark python3)"
done
[ "$(id -u)" = 0 ] || log "warning: not root; tcpdump on lo will probably fail"
if ss -Htln "sport = :$PORT" 2>/dev/null | grep -q .; then
  die "port $PORT is already in use"
fi

OUT_DIR="$(dirname "$OUT")"
mkdir -p "$OUT_DIR"
OUT="$(cd "$OUT_DIR" && pwd)/$(basename "$OUT")"
case "$OUT" in
  /work/main/*) die "refusing to write a large capture inside the repo ($OUT); use /work/bench-data/";;
esac

# ------------------------------------------------------------------ temp dir, cleanup
WORK="$(mktemp -d /tmp/specter-benchcap.XXXXXX)"
chmod 755 "$WORK"
NGINX_PID="" ; TCPDUMP_PID="" ; WRK_PID="" ; OUT_STARTED=""
cleanup() {
  local rc=$?
  set +e
  kill_wait "$WRK_PID" INT; WRK_PID=""
  kill_wait "$NGINX_PID" QUIT; NGINX_PID=""
  kill_wait "$TCPDUMP_PID" INT; TCPDUMP_PID=""
  if [ "$rc" != 0 ]; then
    log "failed (exit $rc); last log lines:"
    tail -n 5 "$WORK"/*.log 2>/dev/null >&2
    if [ -n "$OUT_STARTED" ]; then log "removing the partial capture $OUT"; rm -f "$OUT"; fi
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ------------------------------------------------------------------ JSON documents
mkdir -p "$WORK/www" "$WORK/tmp"
python3 - "$WORK/www" "$SEED" <<'PY'
import json, os, random, sys
root, seed = sys.argv[1], int(sys.argv[2])
rnd = random.Random(seed)
FIRST = ["ada", "alan", "grace", "linus", "margaret", "ken", "barbara", "dennis", "radia", "edsger",
         "frances", "john", "katherine", "tim", "vint", "hedy", "donald", "niklaus", "sophie", "guido"]
LAST = ["lovelace", "turing", "hopper", "torvalds", "hamilton", "thompson", "liskov", "ritchie",
        "perlman", "dijkstra", "allen", "mccarthy", "johnson", "berners-lee", "cerf", "lamarr"]
CITIES = ["Lyon", "Osaka", "Porto", "Tartu", "Quito", "Accra", "Perth", "Leeds", "Graz", "Turku"]
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november "
         "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()
CATS = ["books", "garden", "tools", "toys", "kitchen", "audio", "sports", "office"]

def ts():
    return "2024-%02d-%02dT%02d:%02d:%02dZ" % (rnd.randint(1, 12), rnd.randint(1, 28),
                                               rnd.randint(0, 23), rnd.randint(0, 59), rnd.randint(0, 59))
def sentence(n):
    return " ".join(rnd.choice(WORDS) for _ in range(n))
def user(i):
    f, l = rnd.choice(FIRST), rnd.choice(LAST)
    return {"id": i, "username": f"{f}.{l}{i}", "email": f"{f}.{l}{i}@example.test",
            "name": f"{f.title()} {l.title()}", "created_at": ts(), "active": rnd.random() < 0.9,
            "address": {"city": rnd.choice(CITIES), "zip": "%05d" % rnd.randint(0, 99999)}}
def item(j):
    return {"sku": "SKU-%06d" % rnd.randint(0, 999999), "qty": rnd.randint(1, 9),
            "unit_price": round(rnd.uniform(0.5, 500), 2), "title": sentence(rnd.randint(2, 6)),
            "category": rnd.choice(CATS), "line": j}
def product():
    return {"sku": "SKU-%06d" % rnd.randint(0, 999999), "title": sentence(rnd.randint(2, 5)),
            "price": round(rnd.uniform(0.5, 900), 2), "stock": rnd.randint(0, 500),
            "category": rnd.choice(CATS), "tags": rnd.sample(WORDS, 3),
            "description": sentence(rnd.randint(5, 30))}
def order(i):
    return {"id": i, "status": rnd.choice(["new", "paid", "shipped", "delivered", "cancelled"]),
            "total": round(rnd.uniform(1, 3000), 2), "currency": "EUR", "created_at": ts(),
            "items": rnd.randint(1, 12)}

def grow(make, target, wrap):
    """Add elements until the serialised document reaches about `target` bytes."""
    elems = []
    doc = wrap(elems)
    while len(json.dumps(doc)) < target:
        elems.append(make(len(elems)))
        doc = wrap(elems)
    return doc

def write(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(doc, fh, separators=(",", ":") if rnd.random() < 0.5 else None)
        fh.write("\n")

def logsize(lo, hi):  # log-uniform size in bytes
    import math
    return int(math.exp(rnd.uniform(math.log(lo), math.log(hi))))

# users/NN.json: 200 B .. 3 KiB (user object, some with a "preferences"/"roles" tail)
for n in range(100):
    target = logsize(200, 3000)
    u = user(n)
    u["roles"] = []
    while len(json.dumps(u)) < target:
        u["roles"].append({"role": rnd.choice(WORDS), "granted_at": ts()})
    write(f"{root}/users/{n:02d}.json", u)
# items/NN.json: 500 B .. 8 KiB (line items of an order)
for n in range(100):
    write(f"{root}/items/{n:02d}.json",
          grow(item, logsize(500, 8192), lambda e: {"order_id": n, "items": e, "count": len(e)}))
# user-orders/NN.json: 2 KiB .. 20 KiB (paged list of orders)
for n in range(100):
    write(f"{root}/user-orders/{n:02d}.json",
          grow(lambda k: order(rnd.randint(1, 10**6)), logsize(2048, 20480),
               lambda e: {"data": e, "page": 1, "per_page": len(e), "total": 1000}))
# products/N.json (pages 1..50): 1 KiB .. 20 KiB, products/sku/NN.json: 300 B .. 2 KiB
for n in range(0, 51):
    write(f"{root}/products/{n}.json",
          grow(lambda k: product(), logsize(1024, 20480),
               lambda e: {"data": e, "page": n, "next": f"/api/v1/products?page={n + 1}"}))
for n in range(100):
    p = product(); p["reviews"] = []
    target = logsize(300, 2048)
    while len(json.dumps(p)) < target:
        p["reviews"].append({"stars": rnd.randint(1, 5), "text": sentence(rnd.randint(3, 12))})
    write(f"{root}/products/sku/{n:02d}.json", p)
# search/N.json (0..9): 1 KiB .. 10 KiB
for n in range(10):
    write(f"{root}/search/{n}.json",
          grow(lambda k: {"type": rnd.choice(["user", "product", "order"]), "score": rnd.random(),
                          "title": sentence(4)}, logsize(1024, 10240),
               lambda e: {"hits": e, "took_ms": rnd.randint(1, 90)}))
write(f"{root}/stats.json", {"uptime_s": 123456, "requests": 987654321, "version": "2.7.1"})
PY
log "generated $(find "$WORK/www" -type f | wc -l) JSON documents ($(du -sh "$WORK/www" | cut -f1))"

# ------------------------------------------------------------------ nginx
nginx_conf_head "$WORK" >"$WORK/nginx.conf"
cat >>"$WORK/nginx.conf" <<EOF
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 60s;
  keepalive_requests 2000;   # connections get closed and reopened now and then
  gzip on;
  gzip_types application/json;
  gzip_min_length 1024;
  gzip_comp_level 1;
  etag on;
  # no "if" + try_files (try_files is not inherited by an if block): pick documents with map
  map \$arg_page \$page { ~^([1-9]|[1-4][0-9]|50)\$ \$arg_page; default 0; }
  map \$request_id \$search_doc { ~([0-9])[a-f]*\$ \$1; default 0; }

  server {
    listen 127.0.0.1:$PORT;
    server_name _;
    root $WORK/www;
    add_header X-Request-Id \$request_id always;
    add_header Cache-Control "no-store" always;

    location = /healthz { default_type text/plain; return 200 "ok\n"; }

    # users: GET/HEAD -> users/NN.json (NN = last two digits of the id); PUT/PATCH/DELETE
    location ~ ^/api/v1/users/\d*?(\d\d)$ {
      if (\$request_method = PUT)    { return 200 '{"id":"\$1","updated":true,"request_id":"\$request_id"}'; }
      if (\$request_method = PATCH)  { return 200 '{"id":"\$1","patched":true}'; }
      if (\$request_method = DELETE) { return 204; }
      try_files /users/\$1.json =404;
    }
    location ~ ^/api/v1/users/\d*?(\d\d)/orders$ { try_files /user-orders/\$1.json =404; }
    location = /api/v1/users {
      if (\$request_method = POST) { return 201 '{"id":"\$request_id","created":true}'; }
      try_files /user-orders/00.json =404;
    }

    # orders
    location = /api/v1/orders {
      if (\$request_method = POST) {
        add_header Location /api/v1/orders/\$request_id always;
        return 201 '{"id":"\$request_id","status":"new"}';
      }
      try_files /user-orders/42.json =404;
    }
    location ~ ^/api/v1/orders/\d*?(\d\d)$ {
      if (\$request_method = DELETE) { return 204; }
      try_files /items/\$1.json =404;
    }
    location ~ ^/api/v1/orders/\d*?(\d\d)/items$ {
      if (\$request_method = POST) { return 201 '{"order":"\$1","added":true,"request_id":"\$request_id"}'; }
      try_files /items/\$1.json =404;
    }

    # products: list pages (by ?page=N, 1..50) and items by SKU
    location = /api/v1/products {
      try_files /products/\$page.json =404;
    }
    location ~ ^/api/v1/products/SKU-\d*?(\d\d)$ { try_files /products/sku/\$1.json =404; }
    location ~ ^/api/v1/products/SKU-\d*?(\d\d)/reviews$ {
      if (\$request_method = POST) { return 201 '{"review":"\$request_id"}'; }
      try_files /products/sku/\$1.json =404;
    }

    # search (v2): document chosen by the last decimal digit of the request id
    location = /api/v2/search {
      try_files /search/\$search_doc.json =404;
    }

    location = /api/v1/auth/login {
      if (\$request_method = POST) { return 200 '{"access_token":"\$request_id\$request_id","token_type":"Bearer","expires_in":3600}'; }
      return 405 '{"error":"method not allowed"}';
    }
    location = /api/v1/auth/refresh { return 200 '{"access_token":"\$request_id","expires_in":3600}'; }
    location /api/v1/admin/ { return 401 '{"error":"unauthorized"}'; }
    location = /api/v1/stats { try_files /stats.json =404; }
    location / { return 404 '{"error":"not found"}'; }
  }
}
EOF
nginx -t -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx-test.log" 2>&1 || { cat "$WORK/nginx-test.log" >&2; die "nginx config test failed"; }
nginx -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx.log" 2>&1 &
NGINX_PID=$!
for i in $(seq 1 50); do
  if ss -Htln "sport = :$PORT" 2>/dev/null | grep -q .; then break; fi
  kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited: $(cat "$WORK/nginx-error.log" "$WORK/nginx.log" 2>/dev/null)"
  sleep 0.1
done
ss -Htln "sport = :$PORT" 2>/dev/null | grep -q . || die "nginx not listening on $PORT"
log "nginx listening on 127.0.0.1:$PORT (pid $NGINX_PID)"

# ------------------------------------------------------------------ wrk lua script
cat >"$WORK/load.lua" <<'LUA'
-- Varied JSON-API traffic: many distinct ids, query strings, methods and bodies.
local counter = 0
local agents = {
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
  "okhttp/4.12.0", "python-requests/2.31.0", "Go-http-client/1.1", "curl/8.5.0",
  "shop-ios/3.4.1 (iPhone; iOS 17.2)", "shop-android/3.4.0 (Pixel 8; Android 14)",
}
local statuses = { "new", "paid", "shipped", "delivered", "cancelled" }
local cats = { "books", "garden", "tools", "toys", "kitchen", "audio", "sports", "office" }
local words = { "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "kilo" }
local tid = 0

function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
end

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end

local function r(n) return math.random(1, n) end
local function pick(t) return t[math.random(1, #t)] end
local function words_n(n)
  local w = {}
  for i = 1, n do w[i] = pick(words) end
  return table.concat(w, " ")
end

local function headers(json_body, gzip)
  local h = {
    ["Host"] = "api.shop.test",
    ["User-Agent"] = pick(agents),
    ["Accept"] = "application/json",
  }
  if math.random() < 0.8 then
    h["Authorization"] = "Bearer eyJhbGciOiJIUzI1NiJ9." .. string.format("%08x%08x", r(0x7fffffff), r(0x7fffffff))
  end
  if gzip then h["Accept-Encoding"] = "gzip" end
  if json_body then h["Content-Type"] = "application/json" end
  if math.random() < 0.3 then h["X-Correlation-Id"] = string.format("%x-%x", r(0x7fffffff), r(0xffff)) end
  return h
end

local function order_body()
  local items = {}
  for i = 1, r(12) do
    items[i] = string.format('{"sku":"SKU-%06d","qty":%d,"note":"%s"}', r(999999), r(9), words_n(r(6)))
  end
  return string.format('{"customer_id":%d,"currency":"EUR","items":[%s],"comment":"%s"}',
    r(50000), table.concat(items, ","), words_n(r(20)))
end

request = function()
  counter = counter + 1
  local x = math.random()
  local gz = math.random() < 0.25
  local m, p, body = "GET", nil, nil
  if x < 0.28 then
    p = "/api/v1/users/" .. r(50000)
  elseif x < 0.36 then
    p = "/api/v1/users/" .. r(50000) .. "/orders?status=" .. pick(statuses) .. "&page=" .. r(20)
  elseif x < 0.48 then
    p = "/api/v1/orders/" .. (100000 + r(20000)) .. "/items"
  elseif x < 0.52 then
    p = "/api/v1/orders/" .. (100000 + r(20000))
  elseif x < 0.60 then
    p = "/api/v1/products?category=" .. pick(cats) .. "&page=" .. r(50) .. "&limit=" .. pick({10, 20, 50})
  elseif x < 0.66 then
    p = "/api/v1/products/SKU-" .. string.format("%06d", r(999999))
  elseif x < 0.69 then
    p = "/api/v1/products/SKU-" .. string.format("%06d", r(999999)) .. "/reviews"
  elseif x < 0.73 then
    p = "/api/v2/search?q=" .. pick(words) .. "+" .. pick(words) .. "&limit=" .. r(50)
  elseif x < 0.83 then
    m, p, body = "POST", "/api/v1/orders", order_body()
  elseif x < 0.87 then
    m, p = "POST", "/api/v1/orders/" .. (100000 + r(20000)) .. "/items"
    body = string.format('{"sku":"SKU-%06d","qty":%d}', r(999999), r(9))
  elseif x < 0.89 then
    m, p = "POST", "/api/v1/products/SKU-" .. string.format("%06d", r(999999)) .. "/reviews"
    body = string.format('{"stars":%d,"text":"%s"}', r(5), words_n(r(40)))
  elseif x < 0.92 then
    m, p = "PUT", "/api/v1/users/" .. r(50000)
    body = string.format('{"email":"user%d@example.test","name":"%s","active":true}', r(50000), words_n(2))
  elseif x < 0.93 then
    m, p = "PATCH", "/api/v1/users/" .. r(50000)
    body = string.format('{"active":%s}', math.random() < 0.5 and "true" or "false")
  elseif x < 0.94 then
    m, p = "DELETE", "/api/v1/users/" .. r(50000)
  elseif x < 0.95 then
    m, p = "DELETE", "/api/v1/orders/" .. (100000 + r(20000))
  elseif x < 0.96 then
    m, p = "POST", "/api/v1/auth/login"
    body = string.format('{"username":"user%d","password":"%s"}', r(50000), words_n(2))
  elseif x < 0.965 then
    m, p = "POST", "/api/v1/auth/refresh"
    body = '{"refresh_token":"' .. string.format("%08x", r(0x7fffffff)) .. '"}'
  elseif x < 0.98 then
    p = "/api/v1/admin/users?page=" .. r(10)
  elseif x < 0.985 then
    p = "/api/v1/stats"
  elseif x < 0.99 then
    p = "/healthz"
  else
    p = "/api/v1/unknown/" .. r(1000)
  end
  return wrk.format(m, p, headers(body ~= nil, gz), body)
end
LUA

# ------------------------------------------------------------------ tcpdump
rm -f "$OUT"
OUT_STARTED=1
start_tcpdump "$OUT" "$WORK/tcpdump.log" "tcp port $PORT"

# ------------------------------------------------------------------ load
LIMIT=$(( SIZE_MB * 1024 * 1024 ))
START=$(date +%s.%N)
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${MAX_SECONDS}s" --timeout 10s --latency \
    -s "$WORK/load.lua" "http://127.0.0.1:$PORT/" >"$WORK/wrk.log" 2>&1 &
WRK_PID=$!
log "wrk -t$THREADS -c$CONNECTIONS running (pid $WRK_PID); stopping at $SIZE_MB MiB or after ${MAX_SECONDS}s"
last_report=0
reason="size reached"
while :; do
  size=$(stat -c %s "$OUT" 2>/dev/null || echo 0)
  [ "$size" -ge "$LIMIT" ] && break
  if ! kill -0 "$WRK_PID" 2>/dev/null; then reason="wrk ended (time bound ${MAX_SECONDS}s)"; break; fi
  kill -0 "$TCPDUMP_PID" 2>/dev/null || die "tcpdump died: $(cat "$WORK/tcpdump.log")"
  now=$(date +%s)
  if [ $(( now - last_report )) -ge 15 ]; then
    log "  $(( size / 1048576 )) MiB"
    last_report=$now
  fi
  sleep 0.2
done
kill_wait "$WRK_PID" INT; WRK_PID=""
sleep 1   # let the last responses / FINs through
kill_wait "$TCPDUMP_PID" INT; TCPDUMP_PID=""
END=$(date +%s.%N)
kill_wait "$NGINX_PID" QUIT; NGINX_PID=""

ELAPSED=$(python3 -c "print(f'{$END - $START:.1f}')")
SIZE=$(stat -c %s "$OUT")
log "stopped: $reason"
echo "== wrk ==";    sed -n '1,40p' "$WORK/wrk.log"
echo "== tcpdump =="; grep -E "captured|received|dropped" "$WORK/tcpdump.log" || cat "$WORK/tcpdump.log"
DROPPED=$(tcpdump_dropped "$WORK/tcpdump.log")
echo "== capinfos =="; capinfos -t -c -s -d -u -E -l "$OUT" || true
echo "== summary =="
printf 'file            %s\n' "$OUT"
printf 'size            %s bytes (%.1f MiB)\n' "$SIZE" "$(python3 -c "print($SIZE/1048576)")"
printf 'load phase      %s s\n' "$ELAPSED"
printf 'dropped by kernel %s\n' "${DROPPED:-unknown}"
[ "${DROPPED:-0}" = 0 ] || log "warning: tcpdump reported ${DROPPED} dropped packets: the capture has TCP gaps (try CONNECTIONS=4 or a quieter machine)"
