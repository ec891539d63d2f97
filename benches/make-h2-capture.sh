#!/usr/bin/env bash
# make-h2-capture.sh -- record a large HTTP/2 cleartext (h2c) JSON-API capture for
# whole-process benchmarks. The HTTP/2 counterpart of make-capture.sh.
#
# USAGE
#   benches/make-h2-capture.sh [OUT.pcap] [SIZE_MB]
#     OUT.pcap  default /work/bench-data/h2c-api.pcap (keep it OUT of the git repo)
#     SIZE_MB   default 320; recording stops once the file reaches SIZE_MB MiB
#               (it ends up a little larger: tcpdump flushes its buffer on exit)
#
#   Environment:
#     PORT          server port, 18091..18099 only (default 18091)
#     MAX_SECONDS   hard bound on the load phase (default 1800); the capture is kept
#                   (smaller than asked) if the bound is reached first
#     SEED          seed for the generated documents and URI lists (default 42)
#
# WHAT IT DOES (everything on 127.0.0.1, one port in 18091..18099 only)
#   1. writes ~1,000 JSON documents (200 B .. 20 KiB) under API-like paths into a temp dir
#      (/api/v1/users/<n>.json, /api/v1/orders/<n>.json, /api/v1/products/SKU-<n>.json, ...)
#      and 60 URI lists of 2,500 lines (tens of thousands of distinct paths: ids, query
#      strings, ~2 % 404s);
#   2. starts nghttpd --no-tls (Debian nghttp2-server; 1 worker, serves files) on
#      127.0.0.1:PORT: HTTP/2 over cleartext TCP with prior knowledge (no Upgrade);
#   3. starts `tcpdump -i lo -s 0 -B 65536 -w OUT 'tcp port PORT'` (plain pcap, LINKTYPE
#      ETHERNET, microsecond timestamps) and waits until it is listening;
#   4. runs h2load (nghttp2-client) again and again, each run with new connections and its
#      own mix: 4..8 connections, 8..100 concurrent streams per connection (-m), 3,000..10,000
#      requests, the next URI list (-i), its own user-agent / authorization / accept
#      headers (:authority api.shop.test); 1 run in 5 (runs 2, 7, ...) POSTs a JSON body (-d) to
#      orders/users paths, about 1 in 4 uses 64 KiB stream windows (-w 16: flow control,
#      WINDOW_UPDATE frames);
#   5. polls the file size; at SIZE_MB stops h2load (TERM), waits 1 s, stops tcpdump (SIGINT),
#      prints tcpdump's captured / dropped-by-kernel counts, the h2load totals and capinfos.
#   All servers are stopped on exit (trap), the temp dir removed; on failure or interrupt
#   the partial capture is deleted.
#
#   tshark does not know the port is HTTP/2: use `-d tcp.port==18091,http2`.
#
# REQUIREMENTS (Debian 12): root; apt-get install -y nghttp2-server nghttp2-client tcpdump tshark python3
set -euo pipefail

OUT="${1:-/work/bench-data/h2c-api.pcap}"
SIZE_MB="${2:-320}"
MAX_SECONDS="${MAX_SECONDS:-1800}"
SEED="${SEED:-42}"
PORT="${PORT:-18091}"

log() { printf '[make-h2-capture %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

case "$SIZE_MB" in ''|*[!0-9]*) die "SIZE_MB must be a positive integer, got '$SIZE_MB'";; esac
[ "$SIZE_MB" -gt 0 ] || die "SIZE_MB must be > 0"
case "$MAX_SECONDS$SEED" in *[!0-9]*) die "MAX_SECONDS and SEED must be integers";; esac
case "$PORT" in 1809[1-9]) ;; *) die "PORT must be in 18091..18099 (others are used by other benchmarks), got '$PORT'";; esac
for t in nghttpd h2load tcpdump python3 capinfos ss; do
  command -v "$t" >/dev/null 2>&1 || die "$t not found (apt-get install -y nghttp2-server nghttp2-client tcpdump tshark python3)"
done
[ "$(id -u)" = 0 ] || log "warning: not root; tcpdump on lo will probably fail"
# a listener or live connection on the port (TIME-WAIT leftovers of an earlier run are fine)
if ss -Htan exclude time-wait "( sport = :$PORT or dport = :$PORT )" 2>/dev/null | grep -q .; then
  die "port $PORT is in use; pick another with PORT=1809x"
fi

OUT_DIR="$(dirname "$OUT")"
mkdir -p "$OUT_DIR"
OUT="$(cd "$OUT_DIR" && pwd)/$(basename "$OUT")"
case "$OUT" in
  /work/main/*|/work/main) die "refusing to write a large capture inside the repo ($OUT); use /work/bench-data/";;
esac

# ------------------------------------------------------------------ temp dir, cleanup
WORK="$(mktemp -d /tmp/specter-benchcap-h2.XXXXXX)"
chmod 755 "$WORK"
SERVER_PID="" ; TCPDUMP_PID="" ; H2LOAD_PID="" ; OUT_STARTED=""
# Background jobs of a non-interactive shell start with SIGINT ignored; tcpdump installs its
# own handler (and needs SIGINT to flush and print its counts), nghttpd and h2load do not:
# they get SIGTERM.
cleanup() {
  local rc=$?
  set +e
  kill_wait "$H2LOAD_PID" TERM; H2LOAD_PID=""
  kill_wait "$SERVER_PID" TERM; SERVER_PID=""
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

# ------------------------------------------------------------------ documents + URI lists
mkdir -p "$WORK/www" "$WORK/uris" "$WORK/bodies"
python3 - "$WORK" "$SEED" "$PORT" <<'PY'
import json, math, os, random, sys
work, seed, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
root = f"{work}/www"
rnd = random.Random(seed)
FIRST = ["ada", "alan", "grace", "linus", "margaret", "ken", "barbara", "dennis", "radia", "edsger",
         "frances", "john", "katherine", "tim", "vint", "hedy", "donald", "niklaus", "sophie", "guido"]
LAST = ["lovelace", "turing", "hopper", "torvalds", "hamilton", "thompson", "liskov", "ritchie",
        "perlman", "dijkstra", "allen", "mccarthy", "johnson", "berners-lee", "cerf", "lamarr"]
CITIES = ["Lyon", "Osaka", "Porto", "Tartu", "Quito", "Accra", "Perth", "Leeds", "Graz", "Turku"]
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november "
         "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()
CATS = ["books", "garden", "tools", "toys", "kitchen", "audio", "sports", "office"]
STATUSES = ["new", "paid", "shipped", "delivered", "cancelled"]

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
    return {"id": i, "status": rnd.choice(STATUSES), "total": round(rnd.uniform(1, 3000), 2),
            "currency": "EUR", "created_at": ts(), "items": rnd.randint(1, 12)}
def grow(make, target, wrap):
    elems = []
    doc = wrap(elems)
    while len(json.dumps(doc)) < target:
        elems.append(make(len(elems)))
        doc = wrap(elems)
    return doc
def write(rel, doc):
    path = f"{root}/{rel}"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(doc, fh, separators=(",", ":") if rnd.random() < 0.5 else None)
        fh.write("\n")
def logsize(lo, hi):
    return int(math.exp(rnd.uniform(math.log(lo), math.log(hi))))

USERS = list(range(1000, 1300))                  # 300 users, 200 B .. 3 KiB
ORDERS = list(range(100000, 100300))             # 300 orders, 500 B .. 8 KiB
SKUS = sorted(rnd.sample(range(1, 999999), 150)) # 150 products, 300 B .. 2 KiB
for n in USERS:
    u = user(n); u["roles"] = []
    target = logsize(200, 3000)
    while len(json.dumps(u)) < target:
        u["roles"].append({"role": rnd.choice(WORDS), "granted_at": ts()})
    write(f"api/v1/users/{n}.json", u)
for n in USERS[:100]:                            # 100 order lists, 2 KiB .. 20 KiB
    write(f"api/v1/users/{n}/orders.json",
          grow(lambda k: order(rnd.randint(1, 10**6)), logsize(2048, 20480),
               lambda e: {"data": e, "page": 1, "per_page": len(e), "total": 1000}))
for n in ORDERS:
    o = order(n); o["lines"] = []
    target = logsize(500, 8192)
    while len(json.dumps(o)) < target:
        o["lines"].append(item(len(o["lines"])))
    write(f"api/v1/orders/{n}.json", o)
for n in ORDERS[:100]:                           # 100 item lists, 500 B .. 8 KiB
    write(f"api/v1/orders/{n}/items.json",
          grow(item, logsize(500, 8192), lambda e: {"order_id": n, "items": e, "count": len(e)}))
for n in range(1, 51):                           # 50 product pages, 1 KiB .. 20 KiB
    write(f"api/v1/products/page-{n}.json",
          grow(lambda k: product(), logsize(1024, 20480),
               lambda e: {"data": e, "page": n, "next": f"/api/v1/products/page-{n + 1}.json"}))
for s in SKUS:
    p = product(); p["sku"] = "SKU-%06d" % s; p["reviews"] = []
    target = logsize(300, 2048)
    while len(json.dumps(p)) < target:
        p["reviews"].append({"stars": rnd.randint(1, 5), "text": sentence(rnd.randint(3, 12))})
    write("api/v1/products/SKU-%06d.json" % s, p)
for n in range(20):                              # 20 search result pages, 1 KiB .. 10 KiB
    write(f"api/v2/search/{n}.json",
          grow(lambda k: {"type": rnd.choice(["user", "product", "order"]), "score": rnd.random(),
                          "title": sentence(4)}, logsize(1024, 10240),
               lambda e: {"hits": e, "took_ms": rnd.randint(1, 90)}))
write("api/v1/stats.json", {"uptime_s": 123456, "requests": 987654321, "version": "2.7.1"})
with open(f"{root}/healthz", "w") as fh:
    fh.write("ok\n")

def q(params):
    return "?" + "&".join(f"{k}={v}" for k, v in params) if params else ""
def get_uri():
    x = rnd.random()
    if x < 0.30:
        p = [("fields", rnd.choice(["id,email", "id,name,address", "all"]))] if rnd.random() < 0.4 else []
        if rnd.random() < 0.3: p.append(("include", "roles"))
        return f"/api/v1/users/{rnd.choice(USERS)}.json" + q(p)
    if x < 0.40:
        return (f"/api/v1/users/{rnd.choice(USERS[:100])}/orders.json"
                + q([("status", rnd.choice(STATUSES)), ("page", rnd.randint(1, 20))]))
    if x < 0.55:
        return f"/api/v1/orders/{rnd.choice(ORDERS)}.json" + (q([("expand", "lines")]) if rnd.random() < 0.3 else "")
    if x < 0.62:
        return f"/api/v1/orders/{rnd.choice(ORDERS[:100])}/items.json"
    if x < 0.74:
        return (f"/api/v1/products/page-{rnd.randint(1, 50)}.json"
                + q([("category", rnd.choice(CATS)), ("limit", rnd.choice([10, 20, 50]))]))
    if x < 0.86:
        return "/api/v1/products/SKU-%06d.json" % rnd.choice(SKUS)
    if x < 0.95:
        return (f"/api/v2/search/{rnd.randrange(20)}.json"
                + q([("q", "+".join(rnd.sample(WORDS, rnd.randint(1, 3)))), ("limit", rnd.randint(1, 50))]))
    if x < 0.965:
        return "/api/v1/stats.json"
    if x < 0.98:
        return "/healthz"
    if x < 0.99:
        return f"/api/v1/admin/users.json?page={rnd.randint(1, 10)}"      # 404
    return f"/api/v1/unknown/{rnd.randint(1, 1000)}.json"              # 404
def post_uri():
    if rnd.random() < 0.6:
        return f"/api/v1/orders/{rnd.choice(ORDERS[:100])}/items.json"
    return f"/api/v1/users/{rnd.choice(USERS)}.json"

# URI lists: h2load uses the scheme/host/port of the first line only, and every client of a
# run walks the same list from the top (each sends at most 10,000 / 4 = 2,500 requests), so
# there are many short lists and each run takes the next one.
first = f"http://127.0.0.1:{port}"
for i in range(48):
    with open(f"{work}/uris/get-{i}.txt", "w") as fh:
        for j in range(2500):
            fh.write((first if j == 0 else "") + get_uri() + "\n")
for i in range(12):
    with open(f"{work}/uris/post-{i}.txt", "w") as fh:
        for j in range(2500):
            fh.write((first if j == 0 else "") + post_uri() + "\n")
# POST bodies, 100 B .. ~2 KiB
for i in range(4):
    items = [{"sku": "SKU-%06d" % rnd.choice(SKUS), "qty": rnd.randint(1, 9), "note": sentence(rnd.randint(1, 6))}
             for _ in range([1, 3, 8, 20][i])]
    with open(f"{work}/bodies/{i}.json", "w") as fh:
        json.dump({"customer_id": rnd.randint(1, 50000), "currency": "EUR", "items": items,
                   "comment": sentence(rnd.randint(2, 20))}, fh)
PY
NDOCS=$(find "$WORK/www" -type f | wc -l)
log "generated $NDOCS documents ($(du -sh "$WORK/www" | cut -f1)) and $(cat "$WORK"/uris/*.txt | sort -u | wc -l) distinct URIs"

# ------------------------------------------------------------------ nghttpd
# The mime-types file maps .json to application/json (the Debian default file may be absent).
printf 'application/json\tjson\ntext/plain\ttxt\n' >"$WORK/mime.types"
nghttpd --no-tls -a 127.0.0.1 -d "$WORK/www" -n 1 -m 100 --mime-types-file="$WORK/mime.types" \
  "$PORT" >"$WORK/nghttpd.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 1 50); do
  if ss -Htln "sport = :$PORT" 2>/dev/null | grep -q .; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || die "nghttpd exited: $(cat "$WORK/nghttpd.log")"
  sleep 0.1
done
ss -Htln "sport = :$PORT" 2>/dev/null | grep -q . || die "nghttpd not listening on $PORT"
log "nghttpd (h2c, prior knowledge) listening on 127.0.0.1:$PORT (pid $SERVER_PID)"

# ------------------------------------------------------------------ tcpdump
rm -f "$OUT"
OUT_STARTED=1
start_tcpdump "$OUT" "$WORK/tcpdump.log" "tcp port $PORT"

# ------------------------------------------------------------------ load: h2load runs
AGENTS=("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
        "okhttp/4.12.0" "Go-http-client/2.0" "curl/8.5.0" "grpc-gateway-probe/1.3"
        "shop-ios/3.4.1 (iPhone; iOS 17.2)" "shop-android/3.4.0 (Pixel 8; Android 14)")
RANDOM=$SEED
LIMIT=$(( SIZE_MB * 1024 * 1024 ))
START=$(date +%s.%N)
START_S=$(date +%s)
RUN=0 ; FAILS=0 ; CUT="" ; reason="size reached"
: >"$WORK/h2load-all.log"
start_run() {
  local c m n uris w agent args=()
  RUN=$(( RUN + 1 ))
  c=$(( 4 + RANDOM % 5 ))                         # 4..8 connections
  local ms=(8 16 32 64 100); m=${ms[$(( RANDOM % 5 ))]}   # concurrent streams per connection
  n=$(( 3000 + RANDOM % 7001 ))                   # 3,000..10,000 requests
  agent=${AGENTS[$(( RANDOM % ${#AGENTS[@]} ))]}
  args=(-c "$c" -m "$m" -n "$n" -H ":authority: api.shop.test" -H "user-agent: $agent")
  if [ $(( RANDOM % 10 )) -lt 8 ]; then
    args+=(-H "authorization: Bearer eyJhbGciOiJIUzI1NiJ9.$(printf '%04x%04x%04x' $RANDOM $RANDOM $RANDOM)")
  fi
  if [ $(( RANDOM % 4 )) = 0 ]; then args+=(-w 16); w=16; else w=30; fi
  if [ $(( RUN % 5 )) = 2 ]; then                  # runs 2, 7, 12, ...: POST with a JSON body
    uris="$WORK/uris/post-$(( RUN / 5 % 12 )).txt"
    args+=(-d "$WORK/bodies/$(( RANDOM % 4 )).json" -H "content-type: application/json")
  else
    uris="$WORK/uris/get-$(( RUN % 48 )).txt"
    args+=(-H "accept: application/json")
    [ $(( RANDOM % 4 )) = 0 ] && args+=(-H "accept-encoding: gzip, deflate, br")
  fi
  args+=(-i "$uris")
  echo "== run $RUN: h2load -c $c -m $m -n $n -w $w $(basename "$uris")$([[ " ${args[*]} " == *" -d "* ]] && echo ' POST')" >>"$WORK/h2load-all.log"
  h2load "${args[@]}" >"$WORK/h2load.log" 2>&1 &
  H2LOAD_PID=$!
}
finish_run() {  # collect the log of the run that just ended
  local rc=0
  wait "$H2LOAD_PID" || rc=$?
  H2LOAD_PID=""
  grep -vE '^(progress|starting|spawning|Warm-up|Main benchmark)' "$WORK/h2load.log" \
    | sed -n '1,12p' >>"$WORK/h2load-all.log"
  if [ "$rc" != 0 ] || ! grep -q "^requests:" "$WORK/h2load.log"; then
    FAILS=$(( FAILS + 1 ))
    log "h2load run $RUN failed (exit $rc): $(tail -n 3 "$WORK/h2load.log" | tr '\n' ' ')"
    [ "$FAILS" -lt 3 ] || die "h2load failed 3 times"
  fi
}
log "h2load runs against http://127.0.0.1:$PORT; stopping at $SIZE_MB MiB or after ${MAX_SECONDS}s"
last_report=0
start_run
while :; do
  size=$(stat -c %s "$OUT" 2>/dev/null || echo 0)
  [ "$size" -ge "$LIMIT" ] && break
  now=$(date +%s)
  if [ $(( now - START_S )) -ge "$MAX_SECONDS" ]; then reason="time bound ${MAX_SECONDS}s"; break; fi
  kill -0 "$TCPDUMP_PID" 2>/dev/null || die "tcpdump died: $(cat "$WORK/tcpdump.log")"
  kill -0 "$SERVER_PID" 2>/dev/null || die "nghttpd died: $(cat "$WORK/nghttpd.log")"
  if ! kill -0 "$H2LOAD_PID" 2>/dev/null; then
    finish_run
    start_run
  fi
  if [ $(( now - last_report )) -ge 15 ]; then
    log "  $(( size / 1048576 )) MiB, h2load run $RUN"
    last_report=$now
  fi
  sleep 0.1
done
if [ -n "$H2LOAD_PID" ] && kill -0 "$H2LOAD_PID" 2>/dev/null; then
  echo "(run $RUN stopped at the size limit: no summary)" >>"$WORK/h2load-all.log"
  kill_wait "$H2LOAD_PID" TERM; H2LOAD_PID=""; CUT=" (the last one cut at the size limit)"
else
  finish_run; CUT=" (all complete)"
fi
sleep 1   # let the last frames / FINs through
kill_wait "$TCPDUMP_PID" INT; TCPDUMP_PID=""
END=$(date +%s.%N)
kill_wait "$SERVER_PID" TERM; SERVER_PID=""

ELAPSED=$(python3 -c "print(f'{$END - $START:.1f}')")
SIZE=$(stat -c %s "$OUT")
log "stopped: $reason"
echo "== h2load runs =="
cat "$WORK/h2load-all.log"
# totals over the completed runs (the last run, cut at the size limit, prints no summary)
read -r TOT_DONE TOT_OK TOT_FAIL < <(awk '/^requests:/{d+=$6; s+=$8; f+=$10} END{print d+0, s+0, f+0}' "$WORK/h2load-all.log")
echo "== tcpdump =="; grep -E "captured|received|dropped" "$WORK/tcpdump.log" || cat "$WORK/tcpdump.log"
DROPPED=$(tcpdump_dropped "$WORK/tcpdump.log")
echo "== capinfos =="; capinfos -t -c -s -d -u -E -l "$OUT" || true
echo "== summary =="
printf 'file            %s\n' "$OUT"
printf 'size            %s bytes (%.1f MiB)\n' "$SIZE" "$(python3 -c "print($SIZE/1048576)")"
printf 'load phase      %s s, %d h2load runs%s\n' "$ELAPSED" "$RUN" "$CUT"
printf 'h2load totals   %s requests done in the completed runs (%s succeeded, %s failed: h2load counts 4xx as failed)\n' "$TOT_DONE" "$TOT_OK" "$TOT_FAIL"
printf 'dropped by kernel %s\n' "${DROPPED:-unknown}"
[ "${DROPPED:-0}" = 0 ] || log "warning: tcpdump reported ${DROPPED} dropped packets: the capture has TCP gaps (rerun on a quieter machine)"
