#!/usr/bin/env python3
"""Small real gRPC server and client used to record grpc.pcap (see record.sh).

Needs PyPI `grpcio` only (no grpcio-tools, no generated code): the service is registered
with grpc.method_handlers_generic_handler and the messages are hand-encoded protobuf
(the encoder below writes the wire format of the .proto sketched here), so the capture
carries real protobuf payloads that any protobuf decoder can read without the schema.

    package shop.v1;
    message GetProductRequest   { string id = 1; }
    message Product             { string id = 1; string name = 2; int64 price_cents = 3;
                                  string currency = 4; }
    message ListProductsRequest { int32 page_size = 1; string page_token = 2; }
    message ListProductsResponse{ repeated Product products = 1; string next_page_token = 2; }
    message WatchPricesRequest  { string id = 1; int32 count = 2; }
    message PriceUpdate         { string id = 1; int64 price_cents = 2; int64 seq = 3; }
    service Catalog {
      rpc GetProduct(GetProductRequest) returns (Product);                 // NOT_FOUND for unknown ids
      rpc ListProducts(ListProductsRequest) returns (ListProductsResponse);
      rpc WatchPrices(WatchPricesRequest) returns (stream PriceUpdate);    // `count` messages
    }

USAGE
    grpc_shop.py serve  --port N     # 127.0.0.1 only; prints "listening on ..." when ready;
                                     # stops on SIGTERM/SIGINT (1 s grace)
    grpc_shop.py client --port N     # the fixed call sequence below; exit 1 on any surprise

Client calls, all on one insecure channel (one HTTP/2 connection), in this order:
    /shop.v1.Catalog/GetProduct    id=sku-1                   -> OK
    /shop.v1.Catalog/GetProduct    id=sku-2                   -> OK
    /shop.v1.Catalog/ListProducts  page_size=2                -> OK (2 products, next token)
    /shop.v1.Catalog/ListProducts  page_size=2 token=page-2   -> OK (1 product)
    /shop.v1.Catalog/WatchPrices   id=sku-1 count=5           -> OK, 5 streamed messages
    /shop.v1.Catalog/GetProduct    id=sku-999                 -> NOT_FOUND (grpc-status: 5)
"""
import argparse
import signal
import sys
import threading
from concurrent import futures

import grpc

SERVICE = "shop.v1.Catalog"
PRODUCTS = [
    ("sku-1", "Espresso cup", 1250, "EUR"),
    ("sku-2", "Milk jug 350 ml", 1990, "EUR"),
    ("sku-3", "Tamper 58 mm", 3400, "EUR"),
]


# ---------------------------------------------------------------- protobuf wire format
def _varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field, value):
    return _varint(field << 3 | 0) + _varint(value) if value else b""


def f_bytes(field, value):
    if isinstance(value, str):
        value = value.encode()
    return _varint(field << 3 | 2) + _varint(len(value)) + value if value else b""


def decode(buf):
    """{field: [values]}; varints as int, length-delimited as bytes."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            val, i = _read_varint(buf, i)
        elif wt == 2:
            ln, i = _read_varint(buf, i)
            val, i = bytes(buf[i:i + ln]), i + ln
        else:
            raise ValueError("unsupported wire type %d" % wt)
        out.setdefault(field, []).append(val)
    return out


def _read_varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, i
        shift += 7


def product_msg(p):
    return f_bytes(1, p[0]) + f_bytes(2, p[1]) + f_varint(3, p[2]) + f_bytes(4, p[3])


def first(msg, field, default=None):
    v = msg.get(field)
    return v[0] if v else default


# ---------------------------------------------------------------- server
def get_product(request, context):
    pid = first(decode(request), 1, b"").decode()
    for p in PRODUCTS:
        if p[0] == pid:
            return product_msg(p)
    context.abort(grpc.StatusCode.NOT_FOUND, "product %s not found" % pid)


def list_products(request, context):
    req = decode(request)
    size = first(req, 1, 10) or 10
    token = first(req, 2, b"").decode()
    start = int(token.split("-")[1]) - 1 if token.startswith("page-") else 0
    start *= size
    page = PRODUCTS[start:start + size]
    nxt = "page-%d" % (start // size + 2) if start + size < len(PRODUCTS) else ""
    return b"".join(f_bytes(1, product_msg(p)) for p in page) + f_bytes(2, nxt)


def watch_prices(request, context):
    req = decode(request)
    pid = first(req, 1, b"").decode()
    count = min(first(req, 2, 5) or 5, 20)
    base = next((p[2] for p in PRODUCTS if p[0] == pid), None)
    if base is None:
        context.abort(grpc.StatusCode.NOT_FOUND, "product %s not found" % pid)
    for seq in range(1, count + 1):
        yield f_bytes(1, pid) + f_varint(2, base + 10 * seq) + f_varint(3, seq)


def serve(port):
    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "GetProduct": grpc.unary_unary_rpc_method_handler(get_product),
        "ListProducts": grpc.unary_unary_rpc_method_handler(list_products),
        "WatchPrices": grpc.unary_stream_rpc_method_handler(watch_prices),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    if server.add_insecure_port("127.0.0.1:%d" % port) != port:
        sys.exit("could not bind 127.0.0.1:%d" % port)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("grpc_shop: listening on 127.0.0.1:%d" % port, flush=True)
    stop.wait()
    server.stop(grace=1).wait(5)
    print("grpc_shop: stopped", flush=True)


# ---------------------------------------------------------------- client
def client(port):
    # no proxy from the environment, one connection for every call
    channel = grpc.insecure_channel("127.0.0.1:%d" % port, options=[("grpc.enable_http_proxy", 0)])
    grpc.channel_ready_future(channel).result(timeout=10)
    get = channel.unary_unary("/%s/GetProduct" % SERVICE)
    lst = channel.unary_unary("/%s/ListProducts" % SERVICE)
    watch = channel.unary_stream("/%s/WatchPrices" % SERVICE)
    md = lambda n: (("x-request-id", "req-%04d" % n), ("x-client", "specter-fixture/1.0"))
    problems = []

    for n, pid in enumerate(("sku-1", "sku-2"), 1):
        p = decode(get(f_bytes(1, pid), timeout=5, metadata=md(n)))
        print("GetProduct %s -> OK %s" % (pid, first(p, 2, b"").decode()))
        if first(p, 1) != pid.encode():
            problems.append("GetProduct %s returned %r" % (pid, p))

    r1 = decode(lst(f_varint(1, 2), timeout=5, metadata=md(3)))
    r2 = decode(lst(f_varint(1, 2) + f_bytes(2, first(r1, 2, b"")), timeout=5, metadata=md(4)))
    print("ListProducts -> OK %d + %d products" % (len(r1.get(1, [])), len(r2.get(1, []))))
    if len(r1.get(1, [])) != 2 or len(r2.get(1, [])) != 1:
        problems.append("ListProducts pages %r %r" % (r1, r2))

    msgs = [decode(m) for m in watch(f_bytes(1, "sku-1") + f_varint(2, 5), timeout=5, metadata=md(5))]
    print("WatchPrices -> OK %d messages, prices %s" % (len(msgs), [first(m, 2) for m in msgs]))
    if len(msgs) != 5:
        problems.append("WatchPrices gave %d messages" % len(msgs))

    try:
        get(f_bytes(1, "sku-999"), timeout=5, metadata=md(6))
        problems.append("GetProduct sku-999 did not fail")
    except grpc.RpcError as e:
        print("GetProduct sku-999 -> %s %r" % (e.code().name, e.details()))
        if e.code() != grpc.StatusCode.NOT_FOUND:
            problems.append("GetProduct sku-999: %s" % e.code())

    channel.close()
    for p in problems:
        print("grpc_shop client: " + p, file=sys.stderr)
    return 1 if problems else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("serve", "client"))
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    if a.mode == "serve":
        serve(a.port)
    else:
        sys.exit(client(a.port))


if __name__ == "__main__":
    main()
