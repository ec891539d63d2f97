#!/usr/bin/env python3
"""Shop API: a real Flask application with 34 routes, and its traffic generator.

Records shop-api-a.pcap and shop-api-b.pcap (see record.sh). The API inventory tests use them:
endpoint templating, auth detection and PII detection.

USAGE
    shop_api.py serve PORT                        # Flask app on 127.0.0.1:PORT, HTTP/1.1 keep-alive
    shop_api.py routes                            # route table as TSV, generated from app.url_map
    shop_api.py client PORT SEED N SECRETS_FILE   # N requests (deterministic for SEED); every
                                                  # secret sent or received is appended to
                                                  # SECRETS_FILE, one per line, deduplicated
    shop_api.py audit [SEED N]                    # server and client in one process. Scans URL,
                                                  # query and bodies of every exchange for each
                                                  # PII kind and compares with the `pii` column
                                                  # of `routes`. Exit 1 on a difference.

ROUTES (`shop_api.py routes` prints the authoritative table)
    Each view function carries @meta(auth=..., pii=...).
      auth: none | bearer | api_key | basic | cookie. A before_request hook enforces it, so the
            table says what the server really requires.
      pii:  kinds of sensitive data that the route's traffic carries in the URL, query, request
            body or response body: email, phone, card_number, iban, jwt, password (also
            client_secret), date_of_birth. Credentials in the Authorization, Cookie and X-API-Key
            headers do not count.
    Auth schemes: Bearer JWT (HS256, claims iss/aud/sub/iat/exp) on /users*, /orders*,
    /payments*, /uploads, /sessions and /api/v2/users; X-API-Key on /partners; HTTP Basic on
    /admin; a `session` cookie on /cart, set by /auth/login. No auth on health, products,
    articles, reports, files, objects, legacy/export and auth/*.
    Sensitive data appears only where it belongs: users carry email, phone (E.164) and
    date_of_birth; GET /payments/{payment_id} leaks a full card number (the PII-leaking
    endpoint); POST /payments carries one in the request and masks it in the response;
    partner invoices carry an IBAN; login and token carry a password or client_secret in, and
    a JWT out. All of it is fake: example.* mail domains, fictional phone ranges
    (+1 NXX-555-01XX, +44 7700 900XXX), Luhn-valid test card numbers, IBANs with valid check
    digits and random account numbers.

DATA
    Entities are derived from their ids (seeded PRNGs), so any id in a large range exists, or
    is a stable 404. Order UUIDs encode their user and order number. Writes (POST, PUT, PATCH,
    DELETE) go to an in-memory overlay. Timestamps of new objects and JWT iat/exp use the wall
    clock. Everything else is deterministic.

SERVER
    werkzeug's development server (3.1) sends `Connection: close` on every response, even with
    WSGIRequestHandler.protocol_version = "HTTP/1.1". So the app is served by a small
    keep-alive WSGI gateway on the stdlib ThreadingHTTPServer (KeepAliveHandler below). It
    reads Content-Length request bodies only (no chunked uploads), adds Content-Length to every
    response, writes each response with one send(), and sets TCP_NODELAY.

CLIENT
    stdlib http.client, single-threaded, 4 keep-alive connections picked at random per request.
    About 1.2% of requests are followed by a client-side close (the next request on that slot
    reconnects). Host is api.shop.test. Every route is called at least 5 times. Ids are
    thousands of distinct ints over large ranges, UUIDs, sha256 hex, slugs, ObjectIds, dates
    and 24-char session ids. Optional query parameters are present only sometimes. Bodies are
    JSON, x-www-form-urlencoded and multipart. There are deliberate 400/401/403/404/422.
"""
import base64
import hashlib
import hmac
import http.client
import io
import json
import random
import re
import socket
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, unquote_plus, urlencode

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, ValidationError

ADDR = "127.0.0.1"
HOST = "api.shop.test"
API_VERSION = "2.14.3"

# Fixture keys (not secrets of anything real): JWT signing key and the key that derives
# passwords, API keys and session ids, so that the client "knows" its own credentials.
JWT_KEY = b"shop-fixture-jwt-signing-key-2024"
DERIVE_KEY = b"shop-fixture-derivation-key"
JWT_ISS = "https://auth.shop.test"
JWT_AUD = "shop-api"

USER_MAX = 4_999_999          # generated users: ids 1..USER_MAX (about 8% of them missing)
PRODUCT_MAX = 249_999
PAYMENT_MAX = 8_999_999
PARTNER_MAX = 5000
TODAY_FLOOR = date(2016, 1, 1)  # first day with a sales report

KINDS = ("email", "phone", "card_number", "iban", "jwt", "password", "date_of_birth")
AUTH_SCHEMES = ("none", "bearer", "api_key", "basic", "cookie")

# ---------------------------------------------------------------------------- word lists
FIRST = ["maria", "james", "sofia", "liam", "emma", "noah", "olivia", "lucas", "mia", "elias",
         "hannah", "leon", "chloe", "mateo", "lena", "oscar", "amelia", "felix", "isla", "hugo",
         "nora", "adam", "clara", "jonas", "ava", "theo", "lily", "david", "zoe", "samuel",
         "grace", "daniel", "ella", "henry", "ruby", "paul", "alice", "tom", "julia", "max",
         "sara", "ben", "laura", "jack", "anna", "finn", "eva", "leo", "ines", "omar",
         "yara", "ivan", "priya", "kenji", "aisha", "mehmet", "lucia", "pierre", "nina", "raj"]
LAST = ["keller", "smith", "garcia", "müller", "rossi", "nguyen", "johnson", "schmidt", "martin",
        "brown", "lopez", "fischer", "dubois", "wilson", "silva", "weber", "taylor", "moreau",
        "clarke", "novak", "kowalski", "jensen", "larsen", "becker", "hughes", "patel", "kim",
        "tanaka", "santos", "ferrari", "costa", "hall", "wright", "meyer", "wagner", "bauer",
        "young", "walker", "evans", "roberts", "lambert", "petit", "janssen", "visser", "berg",
        "holm", "sato", "ali", "khan", "cohen", "murphy", "kelly", "byrne", "ward", "price",
        "morris", "hoffmann", "richter", "wolf", "vogel"]
ADJ = ["quiet", "bright", "hidden", "golden", "silver", "rapid", "gentle", "modern", "simple",
       "ancient", "clever", "cosy", "crisp", "daring", "early", "fresh", "grand", "honest",
       "humble", "lively", "lucky", "mellow", "misty", "noble", "patient", "plain", "proud",
       "rustic", "sharp", "smooth", "solid", "steady", "sunny", "swift", "tidy", "urban", "vivid",
       "warm", "wild", "wise", "brave", "calm", "curious", "distant", "eager", "fancy", "frozen",
       "green", "hearty", "icy", "jolly", "keen", "little", "mighty", "northern", "open",
       "polished", "quick", "rare", "royal", "salty", "shiny", "silent", "sleepy", "spicy",
       "tiny", "velvet", "windy", "young", "zesty"]
NOUN = ["river", "garden", "kitchen", "mountain", "harbor", "forest", "market", "lantern",
        "compass", "meadow", "orchard", "canyon", "island", "valley", "bridge", "castle",
        "cottage", "desert", "engine", "falcon", "glacier", "harvest", "journey", "kettle",
        "ladder", "mirror", "notebook", "ocean", "pepper", "pocket", "puzzle", "rocket", "saddle",
        "shadow", "spoon", "station", "teapot", "thunder", "tunnel", "village", "violin",
        "wallet", "window", "winter", "workshop", "backpack", "bicycle", "blanket", "camera",
        "candle", "carpet", "coffee", "cookie", "crystal", "feather", "garage", "helmet",
        "jacket", "jungle", "library", "marble", "needle", "paddle", "pillow", "planet", "quilt",
        "ribbon", "sandal", "sweater", "tractor"]
ARTICLE_KIND = ["guide", "tips", "review", "basics", "checklist", "story", "recipe", "tutorial",
                "roundup", "secrets", "myths", "essentials", "handbook", "primer", "lessons",
                "ideas", "notes", "diary", "hacks", "playbook"]
CATEGORIES = ["books", "electronics", "garden", "kitchen", "toys", "sports", "fashion", "beauty"]
EMAIL_DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com"]
USER_STATUS = ["active", "suspended", "pending"]
ORDER_STATUS = ["pending", "paid", "shipped", "delivered", "cancelled"]
CURRENCIES = ["EUR", "USD", "GBP"]
LANGS = ["en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "it-IT"]


# ---------------------------------------------------------------------------- helpers
def rnd(*parts):
    """A PRNG seeded by the parts (str seeds are hashed with sha512: stable across runs)."""
    return random.Random("|".join(str(p) for p in parts))


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def now():
    return datetime.now(timezone.utc).replace(microsecond=0)


def money(cents, currency):
    return {"amount": "%d.%02d" % (cents // 100, cents % 100), "currency": currency}


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def derive(*parts):
    return hmac.new(DERIVE_KEY, "|".join(str(p) for p in parts).encode(), hashlib.sha256).digest()


B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(b, n):
    v = int.from_bytes(b, "big")
    out = []
    for _ in range(n):
        v, d = divmod(v, 62)
        out.append(B62[d])
    return "".join(out)


def ts_between(r, start, end):
    return start + timedelta(seconds=r.randrange(int((end - start).total_seconds())))


EPOCH_2019 = datetime(2019, 1, 1, tzinfo=timezone.utc)
EPOCH_2024 = datetime(2024, 1, 1, tzinfo=timezone.utc)
DATA_END = datetime(2026, 11, 1, tzinfo=timezone.utc)


# ---------------------------------------------------------------------------- card numbers, IBANs
def luhn_digit(payload):
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(num):
    return num.isdigit() and 13 <= len(num) <= 19 and luhn_digit(num[:-1]) == num[-1]


WELL_KNOWN_CARDS = {"visa": ["4111111111111111", "4242424242424242", "4012888888881881"],
                    "mastercard": ["5555555555554444", "5105105105105100", "2223003122003222"],
                    "amex": ["378282246310005", "371449635398431"]}


def gen_card(r):
    """(brand, Luhn-valid number): Visa 4..., Mastercard 51-55/2221-2720, Amex 34/37."""
    brand = r.choices(["visa", "mastercard", "amex"], [55, 35, 10])[0]
    if r.random() < 0.15:
        return brand, r.choice(WELL_KNOWN_CARDS[brand])
    if brand == "visa":
        prefix, length = "4", 16
    elif brand == "mastercard":
        prefix, length = (str(r.randint(51, 55)) if r.random() < 0.8 else str(r.randint(2221, 2720))), 16
    else:
        prefix, length = r.choice(["34", "37"]), 15
    body = prefix + "".join(str(r.randrange(10)) for _ in range(length - 1 - len(prefix)))
    return brand, body + luhn_digit(body)


def card_brand(num):
    if num.startswith("4"):
        return "visa"
    if num[:2] in ("34", "37"):
        return "amex"
    if num[:2] in ("51", "52", "53", "54", "55") or 2221 <= int(num[:4]) <= 2720:
        return "mastercard"
    return "unknown"


def iban_check(country, bban):
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return "%02d" % (98 - int(digits) % 97)


def iban_ok(s):
    s = s.replace(" ", "")
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", s):
        return False
    return int("".join(str(int(c, 36)) for c in s[4:] + s[:4])) % 97 == 1


GB_BANKS = [("NWBK", "NWBKGB2L"), ("BARC", "BARCGB22"), ("HBUK", "HBUKGB4B"), ("LOYD", "LOYDGB2L"),
            ("MIDL", "MIDLGB22")]
DE_BANKS = [("10070000", "DEUTDEBBXXX"), ("37040044", "COBADEFFXXX"), ("50010517", "INGDDEFFXXX"),
            ("20041133", "COMDDEHHXXX"), ("12030000", "BYLADEM1001")]


def gen_iban(r):
    """(IBAN, BIC) with valid mod-97 check digits: GB (bank + sort code + account) or DE."""
    if r.random() < 0.5:
        bank, bic = r.choice(GB_BANKS)
        bban = bank + "%06d" % r.randrange(10 ** 6) + "%08d" % r.randrange(10 ** 8)
        return "GB" + iban_check("GB", bban) + bban, bic
    blz, bic = r.choice(DE_BANKS)
    bban = blz + "%010d" % r.randrange(10 ** 10)
    return "DE" + iban_check("DE", bban) + bban, bic


# ---------------------------------------------------------------------------- JWT (HS256)
def jwt_encode(claims, key=JWT_KEY):
    head = b64u(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "shop-2024-1"},
                           separators=(",", ":")).encode())
    body = b64u(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(key, ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, b64u(sig))


def jwt_decode(token):
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("malformed token")
    try:
        header = json.loads(b64u_dec(parts[0]))
        claims = json.loads(b64u_dec(parts[1]))
        sig = b64u_dec(parts[2])
    except (ValueError, TypeError):
        raise ValueError("malformed token")
    if header.get("alg") != "HS256":
        raise ValueError("unsupported alg")
    want = hmac.new(JWT_KEY, ("%s.%s" % (parts[0], parts[1])).encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(sig, want):
        raise ValueError("bad signature")
    if claims.get("iss") != JWT_ISS or claims.get("aud") != JWT_AUD:
        raise ValueError("wrong issuer or audience")
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():
        raise ValueError("token expired")
    return claims


def issue_jwt(sub, scope, ttl, jti):
    t = int(time.time())
    return jwt_encode({"iss": JWT_ISS, "aud": JWT_AUD, "sub": str(sub), "iat": t, "exp": t + ttl,
                       "scope": scope, "jti": jti})


# ---------------------------------------------------------------------------- people
def gen_phone(r):
    region = r.choices(["us", "gb", "de", "fr"], [45, 25, 20, 10])[0]
    if region == "us":   # NXX-555-0100..0199: reserved for fiction
        return "+1%d55501%02d" % (r.choice([201, 212, 305, 312, 415, 503, 617, 646, 702, 808]),
                                  r.randrange(100))
    if region == "gb":   # 07700 900000..900999: Ofcom drama range
        return "+447700900%03d" % r.randrange(1000)
    if region == "de":
        return "+49151%08d" % r.randrange(10 ** 8)
    return "+336%08d" % r.randrange(10 ** 8)


def user_exists(uid):
    return 1 <= uid <= USER_MAX and rnd("user-exists", uid).random() >= 0.08


def gen_user(uid):
    r = rnd("user", uid)
    first, last = r.choice(FIRST), r.choice(LAST)
    ascii_last = last.replace("ü", "ue")
    username = "%s.%s" % (first, ascii_last) + (str(r.randint(2, 99)) if r.random() < 0.6 else "")
    status = r.choices(USER_STATUS, [85, 5, 10])[0]
    created = ts_between(r, EPOCH_2019, DATA_END)
    u = {
        "id": uid,
        "username": username,
        "name": "%s %s" % (first.capitalize(), last.capitalize()),
        "email": "%s@%s" % (username, r.choice(EMAIL_DOMAINS)),
        "phone": gen_phone(r),
        "date_of_birth": (date(1950, 1, 1) + timedelta(days=r.randrange(20000))).isoformat(),
        "status": status,
        "roles": ["customer"] + (["seller"] if r.random() < 0.1 else []),
        "created_at": iso(created),
        "last_login_at": None if status == "pending" or r.random() < 0.15
        else iso(created + timedelta(seconds=r.randrange(86400 * 400))),
        "avatar_url": ("https://cdn.shop.test/avatars/%d.jpg" % uid) if r.random() < 0.5 else None,
        "preferences": {"language": r.choice(LANGS), "currency": r.choice(CURRENCIES),
                        "newsletter": r.random() < 0.4},
    }
    if r.random() < 0.3:
        u["nickname"] = r.choice(ADJ) + r.choice(NOUN).capitalize()
    return u


# login accounts: 24 generated users with derived passwords
def _accounts():
    r = rnd("accounts")
    out, seen = [], set()
    while len(out) < 24:
        uid = r.randint(1, USER_MAX)
        if not user_exists(uid):
            continue
        name = gen_user(uid)["username"]
        if name in seen:
            continue
        seen.add(name)
        out.append((name, uid))
    return out


ACCOUNTS = _accounts()
ACCOUNT_BY_NAME = dict(ACCOUNTS)


def account_password(username):
    r = rnd("password", username)
    return (r.choice(ADJ).capitalize() + r.choice(NOUN).capitalize() + str(r.randint(10, 99))
            + r.choice("!#$%&*?@"))


OAUTH_CLIENTS = ["reporting-service", "warehouse-sync", "mobile-bff", "fraud-scoring"]


def client_secret(client_id):
    return "cs_" + b64u(derive("client-secret", client_id))[:40]


ADMINS = {"admin": "Adm1n-Sh0p!2024", "ops-bot": "ops-" + b64u(derive("ops-bot"))[:20]}


def partner_api_key(pid):
    return "pk_live_" + base62(derive("partner-key", pid), 32)


_PARTNER_BY_KEY = {}
_PARTNER_LOCK = threading.Lock()


def partner_for_key(key):
    with _PARTNER_LOCK:
        if not _PARTNER_BY_KEY:
            _PARTNER_BY_KEY.update((partner_api_key(pid), pid) for pid in range(1, PARTNER_MAX + 1))
    return _PARTNER_BY_KEY.get(key)


def gen_partner(pid):
    r = rnd("partner", pid)
    iban, bic = gen_iban(r)
    suffix = "GmbH" if iban.startswith("DE") else r.choice(["Ltd", "Trading Ltd", "Supplies Ltd"])
    return {"id": pid, "name": "%s %s %s" % (r.choice(LAST).capitalize(), r.choice(NOUN).capitalize(), suffix),
            "currency": "EUR" if iban.startswith("DE") else "GBP", "iban": iban, "bic": bic}


# ---------------------------------------------------------------------------- products, orders
def product_exists(pid):
    return 1 <= pid <= PRODUCT_MAX and rnd("product-exists", pid).random() >= 0.1


def product_category(pid):
    return CATEGORIES[pid % len(CATEGORIES)]


def gen_product(pid, full=True):
    r = rnd("product", pid)
    cat = product_category(pid)
    name = "%s %s" % (r.choice(ADJ).capitalize(), r.choice(NOUN).capitalize())
    currency = "EUR"
    price = r.randint(299, 49999)
    reviews = r.choice([0, 0, 1, 3, 8, 15, 42, 120])
    p = {"id": pid, "sku": "%s-%06d" % (cat[:3].upper(), pid), "name": name, "category": cat,
         "price": money(price, currency),
         "rating": round(r.uniform(2.5, 5.0), 1) if reviews else None,
         "in_stock": r.random() < 0.85}
    if not full:
        return p
    p.update({
        "description": "The %s is a %s %s for everyday use." % (name, r.choice(ADJ), r.choice(NOUN)),
        "compare_at_price": money(price + r.randint(100, 5000), currency) if r.random() < 0.25 else None,
        "stock": r.randint(1, 500) if p["in_stock"] else 0,
        "review_count": reviews,
        "tags": r.sample(ADJ, r.randint(0, 3)),
        "images": ["https://cdn.shop.test/products/%d/%d.jpg" % (pid, i) for i in range(1, r.randint(1, 4))],
        "created_at": iso(ts_between(r, EPOCH_2019, DATA_END)),
    })
    if cat in ("electronics", "kitchen", "toys"):
        p["attributes"] = {"weight_g": r.randint(50, 5000), "color": r.choice(["black", "white", "red", "blue", "green"])}
    elif cat == "fashion":
        p["attributes"] = {"sizes": r.sample(["XS", "S", "M", "L", "XL"], r.randint(2, 5)), "material": r.choice(["cotton", "wool", "linen"])}
    elif cat == "books":
        p["attributes"] = {"pages": r.randint(80, 900), "format": r.choice(["paperback", "hardcover", "ebook"])}
    if r.random() < 0.05:
        p["discontinued"] = True
    return p


def user_order_numbers(uid):
    if not user_exists(uid):
        return []
    r = rnd("orders", uid)
    k = r.choice([0, 0, 1, 1, 2, 3, 4, 5, 7, 9])
    return sorted(r.sample(range(100_000, 9_999_999), k))


_UUID_MASK = bytes.fromhex("5a3c9e17d2b4")


def order_uuid(uid, num):
    b = bytearray(hashlib.sha256(("order|%d|%d" % (uid, num)).encode()).digest()[:16])
    b[6] = 0x40 | (b[6] & 0x0F)
    b[8] = 0x80 | (b[8] & 0x3F)
    payload = uid.to_bytes(3, "big") + num.to_bytes(3, "big")
    b[10:16] = bytes(x ^ m for x, m in zip(payload, _UUID_MASK))
    return str(uuid.UUID(bytes=bytes(b)))


def order_from_uuid(u):
    payload = bytes(x ^ m for x, m in zip(u.bytes[10:16], _UUID_MASK))
    uid, num = int.from_bytes(payload[:3], "big"), int.from_bytes(payload[3:], "big")
    if order_uuid(uid, num) != str(u) or num not in user_order_numbers(uid):
        return None
    return uid, num


def order_items(uid, num):
    r = rnd("order-items", uid, num)
    currency = r.choice(CURRENCIES)
    items = []
    for item_id in sorted(r.sample(range(1_000_000, 99_999_999), r.randint(1, 4))):
        pid = r.randint(1, PRODUCT_MAX)
        p = gen_product(pid, full=False)
        items.append({"item_id": item_id, "product_id": pid, "sku": p["sku"], "name": p["name"],
                      "quantity": r.randint(1, 3), "unit_price": money(r.randint(299, 19999), currency)})
    return currency, items


def gen_order(uid, num, with_items=True):
    r = rnd("order", uid, num)
    currency, items = order_items(uid, num)
    status = r.choices(ORDER_STATUS, [10, 20, 20, 40, 10])[0]
    created = ts_between(r, EPOCH_2019, DATA_END)
    total = sum(int(i["unit_price"]["amount"].replace(".", "")) * i["quantity"] for i in items)
    o = {"id": order_uuid(uid, num), "number": num, "user_id": uid, "status": status,
         "created_at": iso(created),
         "updated_at": iso(created + timedelta(hours=r.randint(1, 400))) if status != "pending" else None,
         "total": money(total, currency), "item_count": len(items)}
    if with_items:
        ship = {"method": r.choice(["standard", "express", "pickup"])}
        if ship["method"] != "pickup":
            ship["carrier"] = r.choice(["DHL", "UPS", "DPD", "Royal Mail"])
            if status in ("shipped", "delivered"):
                ship["tracking_number"] = "TRK%010d" % r.randrange(10 ** 10)
        o["items"] = items
        o["shipping"] = ship
        o["coupon_code"] = r.choice(["SPRING24", "WELCOME10", "FREESHIP"]) if r.random() < 0.2 else None
        if status == "cancelled":
            o["cancel_reason"] = r.choice(["customer_request", "payment_failed", "out_of_stock"])
    return o


def article_slug_ok(slug):
    return re.fullmatch(r"[a-z]+(?:-[a-z]+){1,7}", slug) is not None


def gen_slug(r):
    form = r.random()
    a, n, k = r.choice(ADJ), r.choice(NOUN), r.choice(ARTICLE_KIND)
    if form < 0.6:
        return "%s-%s-%s" % (a, n, k)
    if form < 0.75:
        return "how-to-choose-a-%s-%s" % (a, n)
    if form < 0.9:
        return "the-%s-%s-%s" % (a, n, k)
    return "%s-%s-for-beginners" % (n, k)


# ---------------------------------------------------------------------------- in-memory overlay
class State:
    lock = threading.Lock()
    users = {}            # uid -> user dict, or None when deleted
    next_user = USER_MAX + 1
    payments = {}         # payment id -> payment dict (full card number kept: it leaks on GET)
    next_payment = PAYMENT_MAX + 1
    sessions = {}         # session cookie -> {"user_id", "items": {product_id: qty}, "updated_at"}
    counter = 0           # logins, tokens, reviews, uploads

    @classmethod
    def tick(cls):
        with cls.lock:
            cls.counter += 1
            return cls.counter


def load_user(uid):
    with State.lock:
        if uid in State.users:
            u = State.users[uid]
            return dict(u) if u is not None else None
    return gen_user(uid) if user_exists(uid) else None


# ---------------------------------------------------------------------------- Flask app
app = Flask(__name__, static_folder=None)
app.json.sort_keys = False
app.json.compact = True


class ObjectIdConverter(BaseConverter):
    regex = r"[0-9a-f]{24}"


class IsoDateConverter(BaseConverter):
    regex = r"\d{4}-\d{2}-\d{2}"

    def to_python(self, value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValidationError()

    def to_url(self, value):
        return value.isoformat() if isinstance(value, date) else str(value)


app.url_map.converters["objectid"] = ObjectIdConverter
app.url_map.converters["date"] = IsoDateConverter


def meta(auth="none", pii="-"):
    """Declare the auth scheme a view requires (enforced) and the PII kinds its traffic carries."""
    kinds = [] if pii in ("", "-") else [k.strip() for k in pii.split(",")]
    if auth not in AUTH_SCHEMES or any(k not in KINDS for k in kinds):
        raise ValueError("bad meta(auth=%r, pii=%r)" % (auth, pii))

    def deco(f):
        f.shop_auth = auth
        f.shop_pii = tuple(k for k in KINDS if k in kinds)
        return f
    return deco


def j(obj, status=200, headers=None):
    resp = jsonify(obj)
    resp.status_code = status
    if headers:
        resp.headers.update(headers)
    return resp


def err(status, code, message, headers=None, **extra):
    body = {"error": code, "message": message}
    body.update(extra)
    return j(body, status, headers)


def no_content():
    return app.response_class(status=204)


def unauthorized(message, challenge):
    return err(401, "unauthorized", message, {"WWW-Authenticate": challenge})


def _check_bearer():
    h = request.headers.get("Authorization", "")
    if not h.startswith("Bearer "):
        return unauthorized("missing bearer token", 'Bearer realm="shop"')
    try:
        g.claims = jwt_decode(h[7:].strip())
    except ValueError as e:
        return unauthorized("invalid token: %s" % e,
                            'Bearer realm="shop", error="invalid_token", error_description="%s"' % e)
    return None


def _check_basic():
    h = request.headers.get("Authorization", "")
    challenge = 'Basic realm="shop-admin", charset="UTF-8"'
    if not h.startswith("Basic "):
        return unauthorized("missing credentials", challenge)
    try:
        user, _, pw = base64.b64decode(h[6:].strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return unauthorized("malformed credentials", challenge)
    if user not in ADMINS or not hmac.compare_digest(ADMINS[user], pw):
        return unauthorized("invalid credentials", challenge)
    g.admin = user
    return None


def _check_cookie():
    token = request.cookies.get("session")
    with State.lock:
        sess = State.sessions.get(token) if token else None
    if sess is None:
        return unauthorized("no valid session" if token else "missing session cookie",
                            'Cookie realm="shop", cookie-name="session"')
    g.session = token
    return None


def _check_api_key():
    key = request.headers.get("X-API-Key")
    if not key:
        return unauthorized("missing API key", 'ApiKey realm="partners", header="X-API-Key"')
    pid = partner_for_key(key)
    if pid is None:
        return unauthorized("unknown API key", 'ApiKey realm="partners", header="X-API-Key"')
    g.partner_id = pid
    return None


AUTH_CHECKS = {"bearer": _check_bearer, "basic": _check_basic, "cookie": _check_cookie,
               "api_key": _check_api_key}


@app.before_request
def _enforce_auth():
    view = app.view_functions.get(request.endpoint) if request.endpoint else None
    scheme = getattr(view, "shop_auth", "none")
    return AUTH_CHECKS[scheme]() if scheme != "none" else None


@app.errorhandler(HTTPException)
def _http_error(e):
    resp = e.get_response()
    messages = {404: "no such resource", 405: "method not allowed for this resource"}
    code = re.sub(r"[^a-z]+", "_", e.name.lower()).strip("_")
    resp.set_data(json.dumps({"error": code, "message": messages.get(e.code, e.description)},
                             separators=(",", ":")))
    resp.content_type = "application/json"
    return resp


def arg_int(name, default, lo, hi):
    """Optional integer query parameter; raises ValueError when present and invalid."""
    v = request.args.get(name)
    if v is None:
        return default
    n = int(v)
    if not lo <= n <= hi:
        raise ValueError(name)
    return n


def bad_query(name):
    return err(400, "bad_request", "invalid query parameter: %s" % name, parameter=name)


def json_body():
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
PHONE_RE = re.compile(r"\+[1-9]\d{7,14}")


def validate_user_fields(body, partial):
    problems = {}
    required = () if partial else ("name", "email", "phone", "date_of_birth")
    for f in required:
        if f not in body:
            problems[f] = "required"
    if "email" in body and not (isinstance(body["email"], str) and EMAIL_RE.fullmatch(body["email"])):
        problems["email"] = "invalid email address"
    if "phone" in body and not (isinstance(body["phone"], str) and PHONE_RE.fullmatch(body["phone"])):
        problems["phone"] = "expected E.164, e.g. +14155550123"
    if "date_of_birth" in body:
        try:
            date.fromisoformat(body["date_of_birth"])
        except (TypeError, ValueError):
            problems["date_of_birth"] = "expected YYYY-MM-DD"
    if "status" in body and body["status"] not in USER_STATUS:
        problems["status"] = "one of: " + ", ".join(USER_STATUS)
    return problems


USER_FIELDS = ("name", "email", "phone", "date_of_birth", "status", "nickname", "preferences")


# ---- health and auth -------------------------------------------------------------------
@app.get("/api/v1/health")
@meta(auth="none")
def health():
    return j({"status": "ok", "version": API_VERSION, "time": iso(now()),
              "checks": {"database": "ok", "cache": "ok", "search": "ok"}})


@app.post("/api/v1/auth/login")
@meta(auth="none", pii="password,jwt")
def auth_login():
    body = json_body()
    if body is None or not isinstance(body.get("username"), str) or not isinstance(body.get("password"), str):
        return err(400, "bad_request", "expected JSON with username and password")
    uid = ACCOUNT_BY_NAME.get(body["username"])
    if uid is None or not hmac.compare_digest(account_password(body["username"]), body["password"]):
        return err(401, "invalid_credentials", "username or password is wrong")
    n = State.tick()
    token = issue_jwt(uid, "profile orders payments", 3600, "%016x" % int.from_bytes(derive("jti", n)[:8], "big"))
    sid = b64u(derive("session", body["username"], n))
    with State.lock:
        State.sessions[sid] = {"user_id": uid, "items": {}, "updated_at": iso(now())}
    resp = j({"access_token": token, "token_type": "Bearer", "expires_in": 3600,
              "user": {"id": uid, "username": body["username"]}})
    resp.set_cookie("session", sid, path="/api/v1", httponly=True, samesite="Lax", max_age=86400)
    return resp


@app.post("/api/v1/auth/token")
@meta(auth="none", pii="password,jwt")
def auth_token():
    f = request.form
    if f.get("grant_type") != "client_credentials":
        return j({"error": "unsupported_grant_type",
                  "error_description": "only client_credentials is supported"}, 400)
    cid, secret = f.get("client_id", ""), f.get("client_secret", "")
    if cid not in OAUTH_CLIENTS or not hmac.compare_digest(client_secret(cid), secret):
        return j({"error": "invalid_client", "error_description": "client authentication failed"}, 401,
                 {"WWW-Authenticate": 'Basic realm="oauth"'})
    scope = f.get("scope") or "orders:read payments:write"
    n = State.tick()
    token = issue_jwt(cid, scope, 1800, "%016x" % int.from_bytes(derive("jti", n)[:8], "big"))
    return j({"access_token": token, "token_type": "Bearer", "expires_in": 1800, "scope": scope})


# ---- users -------------------------------------------------------------------------------
def _user_page_ids(page, per_page, status):
    ids, i = [], (page - 1) * per_page * 3
    while len(ids) < per_page and i < (page * per_page * 3) + 400:
        uid = 1 + (i * 104_729) % USER_MAX
        i += 1
        if user_exists(uid) and (status is None or gen_user(uid)["status"] == status):
            ids.append(uid)
    return ids


@app.get("/api/v1/users")
@meta(auth="bearer", pii="email,phone,date_of_birth")
def users_list():
    try:
        page = arg_int("page", 1, 1, 10_000)
        per_page = arg_int("per_page", 10, 1, 50)
    except ValueError as e:
        return bad_query(str(e))
    status = request.args.get("status")
    if status is not None and status not in USER_STATUS:
        return bad_query("status")
    data = [load_user(uid) for uid in _user_page_ids(page, per_page, status)]
    total = {None: 4_600_000, "active": 3_910_000, "suspended": 230_000, "pending": 460_000}[status]
    q = {"page": page + 1, "per_page": per_page}
    if status:
        q["status"] = status
    return j({"data": [u for u in data if u], "page": page, "per_page": per_page, "total": total,
              "next": "/api/v1/users?" + urlencode(q) if page * per_page < total else None})


@app.post("/api/v1/users")
@meta(auth="bearer", pii="email,phone,date_of_birth")
def users_create():
    body = json_body()
    if body is None:
        return err(400, "bad_request", "expected a JSON object")
    problems = validate_user_fields(body, partial=False)
    if problems:
        return err(422, "validation_error", "invalid user", fields=problems)
    with State.lock:
        uid = State.next_user
        State.next_user += 1
    u = {"id": uid, "username": body["email"].split("@")[0].lower(), "name": body["name"],
         "email": body["email"], "phone": body["phone"], "date_of_birth": body["date_of_birth"],
         "status": "pending", "roles": ["customer"], "created_at": iso(now()), "last_login_at": None,
         "avatar_url": None,
         "preferences": body.get("preferences") or {"language": "en-US", "currency": "EUR", "newsletter": False}}
    with State.lock:
        State.users[uid] = u
    return j(u, 201, {"Location": "/api/v1/users/%d" % uid})


@app.get("/api/v1/users/<int:user_id>")
@meta(auth="bearer", pii="email,phone,date_of_birth")
def users_get(user_id):
    u = load_user(user_id)
    return j(u) if u else err(404, "not_found", "user %d not found" % user_id)


def _write_user(user_id, partial):
    u = load_user(user_id)
    if u is None:
        return err(404, "not_found", "user %d not found" % user_id)
    body = json_body()
    if body is None:
        return err(400, "bad_request", "expected a JSON object")
    problems = validate_user_fields(body, partial=partial)
    if problems:
        return err(422, "validation_error", "invalid user", fields=problems)
    for f in USER_FIELDS:
        if f in body:
            if f == "preferences" and isinstance(body[f], dict):
                u["preferences"] = dict(u["preferences"], **body[f])
            else:
                u[f] = body[f]
    u["updated_at"] = iso(now())
    with State.lock:
        State.users[user_id] = u
    return j(u)


@app.put("/api/v1/users/<int:user_id>")
@meta(auth="bearer", pii="email,phone,date_of_birth")
def users_replace(user_id):
    return _write_user(user_id, partial=False)


@app.patch("/api/v1/users/<int:user_id>")
@meta(auth="bearer", pii="email,phone,date_of_birth")
def users_update(user_id):
    return _write_user(user_id, partial=True)


@app.delete("/api/v1/users/<int:user_id>")
@meta(auth="bearer")
def users_delete(user_id):
    if load_user(user_id) is None:
        return err(404, "not_found", "user %d not found" % user_id)
    with State.lock:
        State.users[user_id] = None
    return no_content()


@app.get("/api/v1/users/me")
@meta(auth="bearer", pii="email,phone,date_of_birth")
def users_me():
    sub = g.claims.get("sub", "")
    if not sub.isdigit():
        return err(403, "forbidden", "a user token is required")
    u = load_user(int(sub))
    return j(u) if u else err(404, "not_found", "user no longer exists")


@app.get("/api/v1/users/search")
@meta(auth="bearer", pii="email")
def users_search():
    q = request.args.get("q", "").strip()
    if not 2 <= len(q) <= 64:
        return bad_query("q")
    try:
        limit = arg_int("limit", 10, 1, 25)
    except ValueError as e:
        return bad_query(str(e))
    ql = q.lower()
    results = []
    if "@" in q:
        r = rnd("search-email", ql)
        if r.random() < 0.8:
            results.append({"id": r.randint(1, USER_MAX), "username": ql.split("@")[0],
                            "name": None, "email": ql, "status": "active"})
    else:
        r = rnd("search", ql)
        for _ in range(300):
            uid = r.randint(1, USER_MAX)
            if not user_exists(uid):
                continue
            u = gen_user(uid)
            if ql in u["username"] or ql in u["name"].lower():
                results.append({k: u[k] for k in ("id", "username", "name", "email", "status")})
                if len(results) >= limit:
                    break
    return j({"query": q, "count": len(results), "results": results})


@app.get("/api/v1/users/<int:user_id>/orders")
@meta(auth="bearer")
def user_orders_list(user_id):
    if load_user(user_id) is None:
        return err(404, "not_found", "user %d not found" % user_id)
    status = request.args.get("status")
    if status is not None and status not in ORDER_STATUS:
        return bad_query("status")
    try:
        page = arg_int("page", 1, 1, 100)
    except ValueError as e:
        return bad_query(str(e))
    orders = [gen_order(user_id, n, with_items=False) for n in user_order_numbers(user_id)]
    if status:
        orders = [o for o in orders if o["status"] == status]
    return j({"user_id": user_id, "data": orders[(page - 1) * 20:page * 20], "page": page, "total": len(orders)})


@app.get("/api/v1/users/<int:user_id>/orders/<int:order_id>")
@meta(auth="bearer")
def user_orders_get(user_id, order_id):
    if load_user(user_id) is None or order_id not in user_order_numbers(user_id):
        return err(404, "not_found", "order %d not found for user %d" % (order_id, user_id))
    return j(gen_order(user_id, order_id))


@app.get("/api/v2/users/<int:user_id>")
@meta(auth="bearer", pii="email,phone,date_of_birth")
def v2_users_get(user_id):
    u = load_user(user_id)
    if u is None:
        return j({"errors": [{"code": "user_not_found", "detail": "user %d not found" % user_id}]}, 404)
    out = {"id": str(u["id"]), "username": u["username"], "status": u["status"],
           "profile": {"display_name": u["name"], "date_of_birth": u["date_of_birth"],
                       "avatar": {"url": u["avatar_url"]} if u.get("avatar_url") else None},
           "contact": {"email": u["email"], "email_verified": u["status"] == "active", "phone": u["phone"]},
           "settings": u["preferences"],
           "meta": {"created_at": u["created_at"], "updated_at": u.get("updated_at")},
           "links": {"self": "/api/v2/users/%d" % u["id"], "orders": "/api/v1/users/%d/orders" % u["id"]}}
    return j({"data": out, "api_version": "2"})


# ---- orders ------------------------------------------------------------------------------
@app.get("/api/v1/orders/<uuid:order_id>")
@meta(auth="bearer")
def orders_get(order_id):
    found = order_from_uuid(order_id)
    if found is None:
        return err(404, "not_found", "order %s not found" % order_id)
    expand = request.args.get("expand")
    if expand not in (None, "items"):
        return bad_query("expand")
    o = gen_order(*found)
    if expand != "items":
        del o["items"]
    return j(o)


@app.get("/api/v1/orders/<uuid:order_id>/items/<int:item_id>")
@meta(auth="bearer")
def order_items_get(order_id, item_id):
    found = order_from_uuid(order_id)
    if found is None:
        return err(404, "not_found", "order %s not found" % order_id)
    _, items = order_items(*found)
    for it in items:
        if it["item_id"] == item_id:
            r = rnd("item-status", item_id)
            out = dict(it, order_id=str(order_id),
                       status=r.choices(["fulfilled", "backordered", "returned"], [80, 10, 10])[0])
            if out["status"] == "fulfilled" and r.random() < 0.5:
                out["return_window_ends"] = (date(2024, 1, 1) + timedelta(days=r.randrange(1000))).isoformat()
            return j(out)
    return err(404, "not_found", "item %d not in order %s" % (item_id, order_id))


# ---- catalogue ---------------------------------------------------------------------------
@app.get("/api/v1/products")
@meta(auth="none")
def products_list():
    category = request.args.get("category")
    if category is not None and category not in CATEGORIES:
        return bad_query("category")
    sort = request.args.get("sort", "relevance")
    if sort not in ("relevance", "price", "-price", "rating", "newest"):
        return bad_query("sort")
    try:
        page = arg_int("page", 1, 1, 500)
        per_page = arg_int("per_page", 12, 1, 48)
    except ValueError as e:
        return bad_query(str(e))
    r = rnd("plist", category, sort, page, per_page)
    data = []
    while len(data) < per_page:
        pid = r.randrange(1, PRODUCT_MAX // 8) * 8
        pid += CATEGORIES.index(category) if category else r.randrange(8)
        if product_exists(pid):
            data.append(gen_product(pid, full=False))
    if sort in ("price", "-price"):
        data.sort(key=lambda p: float(p["price"]["amount"]), reverse=sort == "-price")
    elif sort == "rating":
        data.sort(key=lambda p: p["rating"] or 0, reverse=True)
    total = 28_125 if category else 225_000
    out = {"data": data, "page": page, "per_page": per_page, "total": total, "sort": sort}
    if page == 1 and not category:
        out["facets"] = {"category": {c: 28_125 for c in CATEGORIES}}
    return j(out)


@app.get("/api/v1/products/<int:product_id>")
@meta(auth="none")
def products_get(product_id):
    if not product_exists(product_id):
        return err(404, "not_found", "product %d not found" % product_id)
    p = gen_product(product_id)
    cur = request.args.get("currency")
    if cur is not None:
        if cur not in CURRENCIES:
            return bad_query("currency")
        p["price"]["currency"] = cur
    return j(p)


def gen_review(product_id, i):
    r = rnd("review", product_id, i)
    rating = r.choices([1, 2, 3, 4, 5], [5, 7, 15, 33, 40])[0]
    out = {"id": product_id * 1000 + i, "rating": rating,
           "title": "%s %s" % (r.choice(ADJ).capitalize(), r.choice(NOUN)),
           "body": "Bought it for the %s. %s." % (r.choice(NOUN), r.choice(["Works well", "Would buy again", "Not great", "Exactly as described", "Arrived late"])),
           "author": {"display_name": "%s %s." % (r.choice(FIRST).capitalize(), r.choice(LAST)[0].upper())},
           "created_at": iso(ts_between(r, EPOCH_2019, DATA_END)),
           "verified_purchase": r.random() < 0.7, "helpful_count": r.choice([0, 0, 1, 2, 5, 13])}
    if r.random() < 0.15:
        out["seller_reply"] = {"body": "Thanks for the feedback!", "created_at": out["created_at"]}
    return out


@app.get("/api/v1/products/<int:product_id>/reviews")
@meta(auth="none")
def reviews_list(product_id):
    if not product_exists(product_id):
        return err(404, "not_found", "product %d not found" % product_id)
    sort = request.args.get("sort", "newest")
    if sort not in ("newest", "helpful", "rating"):
        return bad_query("sort")
    try:
        page = arg_int("page", 1, 1, 100)
        min_rating = arg_int("min_rating", 1, 1, 5)
    except ValueError as e:
        return bad_query(str(e))
    total = gen_product(product_id)["review_count"]
    data = [gen_review(product_id, i) for i in range((page - 1) * 5 + 1, min(total, page * 5) + 1)]
    data = [x for x in data if x["rating"] >= min_rating]
    if sort == "helpful":
        data.sort(key=lambda x: -x["helpful_count"])
    elif sort == "rating":
        data.sort(key=lambda x: -x["rating"])
    return j({"product_id": product_id, "data": data, "page": page, "total": total,
              "average_rating": gen_product(product_id)["rating"]})


@app.post("/api/v1/products/<int:product_id>/reviews")
@meta(auth="none")
def reviews_create(product_id):
    if not product_exists(product_id):
        return err(404, "not_found", "product %d not found" % product_id)
    body = json_body()
    if body is None:
        return err(400, "bad_request", "expected a JSON object")
    problems = {}
    if body.get("rating") not in (1, 2, 3, 4, 5):
        problems["rating"] = "integer 1..5"
    if not isinstance(body.get("title"), str) or not body["title"]:
        problems["title"] = "required"
    if problems:
        return err(422, "validation_error", "invalid review", fields=problems)
    n = State.tick()
    out = {"id": 900_000_000 + n, "product_id": product_id, "rating": body["rating"], "title": body["title"],
           "body": body.get("body", ""), "author": {"display_name": body.get("display_name") or "Anonymous"},
           "created_at": iso(now()), "verified_purchase": False, "helpful_count": 0,
           "moderation": "pending"}
    return j(out, 201, {"Location": "/api/v1/products/%d/reviews/%d" % (product_id, out["id"])})


@app.get("/api/v1/articles/<slug>")
@meta(auth="none")
def articles_get(slug):
    if not article_slug_ok(slug) or rnd("article-exists", slug).random() < 0.08:
        return err(404, "not_found", "article not found")
    r = rnd("article", slug)
    words = slug.split("-")
    published = ts_between(r, EPOCH_2019, DATA_END)
    lang = request.args.get("lang", "en")
    if lang not in ("en", "de", "fr"):
        return bad_query("lang")
    out = {"slug": slug, "title": " ".join(w.capitalize() for w in words), "lang": lang,
           "author": {"name": "%s %s" % (r.choice(FIRST).capitalize(), r.choice(LAST).capitalize()),
                      "team": r.choice(["editorial", "community", "buying-guides"])},
           "published_at": iso(published),
           "updated_at": iso(published + timedelta(days=r.randint(1, 300))) if r.random() < 0.4 else None,
           "tags": sorted(set(r.sample(words, min(2, len(words))))),
           "reading_time_minutes": r.randint(2, 14),
           "summary": "Everything about the %s %s, in %d minutes." % (r.choice(ADJ), r.choice(NOUN), r.randint(2, 9)),
           "related": ["%s-%s-%s" % (r.choice(ADJ), r.choice(NOUN), r.choice(ARTICLE_KIND)) for _ in range(r.randint(0, 3))]}
    if r.random() < 0.3:
        out["hero_image"] = {"url": "https://cdn.shop.test/articles/%s.jpg" % slug, "alt": out["title"]}
    return j(out)


# ---- files, sessions, objects, reports -----------------------------------------------------
UPLOADED = {}   # sha256 -> metadata of files uploaded through /uploads


@app.get("/api/v1/files/<file_hash>")
@meta(auth="none")
def files_get(file_hash):
    if not re.fullmatch(r"[0-9a-f]{64}", file_hash):
        return err(400, "bad_request", "file id must be a lowercase hex sha256")
    with State.lock:
        if file_hash in UPLOADED:
            return j(UPLOADED[file_hash])
    r = rnd("file", file_hash)
    if r.random() < 0.12:
        return err(404, "not_found", "file not found")
    ctype, ext = r.choice([("image/png", "png"), ("image/jpeg", "jpg"), ("application/pdf", "pdf"), ("text/csv", "csv")])
    uploaded = ts_between(r, EPOCH_2019, DATA_END)
    scan = r.choice(["clean", "clean", "clean", "pending"])
    return j({"sha256": file_hash, "filename": "%s-%s.%s" % (r.choice(NOUN), r.choice(NOUN), ext),
              "content_type": ctype, "size": r.randint(200, 4_000_000), "uploaded_at": iso(uploaded),
              "storage": {"bucket": "shop-files-%s" % r.choice(["eu", "us"]), "class": r.choice(["standard", "archive"])},
              "scan": {"status": scan, "scanned_at": iso(uploaded + timedelta(minutes=3)) if scan == "clean" else None}})


@app.delete("/api/v1/sessions/<token>")
@meta(auth="bearer")
def sessions_delete(token):
    if not re.fullmatch(r"[A-Za-z0-9_-]{24}", token) or rnd("session-exists", token).random() < 0.1:
        return err(404, "not_found", "session not found")
    return no_content()


@app.get("/api/v1/objects/<objectid:object_id>")
@meta(auth="none")
def objects_get(object_id):
    created = datetime.fromtimestamp(int(object_id[:8], 16), timezone.utc)
    r = rnd("object", object_id)
    if created > now() or created.year < 2015 or r.random() < 0.1:
        return err(404, "not_found", "object %s not found" % object_id)
    kind = r.choice(["note", "event", "asset", "device"])
    attrs = {"note": lambda: {"text": "Remember the %s %s" % (r.choice(ADJ), r.choice(NOUN)), "pinned": r.random() < 0.2},
             "event": lambda: {"name": r.choice(["page_view", "add_to_cart", "checkout"]), "count": r.randint(1, 900)},
             "asset": lambda: {"path": "/assets/%s.svg" % r.choice(NOUN), "bytes": r.randint(300, 90000)},
             "device": lambda: {"serial": "SN-%08X" % r.randrange(1 << 32), "platform": r.choice(["ios", "android", "web"])}}[kind]()
    doc = {"id": object_id, "kind": kind, "created_at": iso(created), "version": r.randint(1, 12), "attributes": attrs}
    if r.random() < 0.2:
        doc["archived"] = True
    fields = request.args.get("fields")
    if fields:
        doc = {k: v for k, v in doc.items() if k == "id" or k in fields.split(",")}
    return j(doc)


@app.get("/api/v1/reports/<date:report_date>")
@meta(auth="none")
def reports_get(report_date):
    if report_date >= now().date():
        return err(404, "not_found", "report for %s is not available yet" % report_date.isoformat())
    if report_date < TODAY_FLOOR:
        return err(422, "unprocessable", "reports start on %s" % TODAY_FLOOR.isoformat())
    gran = request.args.get("granularity", "day")
    cur = request.args.get("currency", "EUR")
    if gran not in ("day", "hour") or cur not in CURRENCIES:
        return bad_query("granularity" if gran not in ("day", "hour") else "currency")
    r = rnd("report", report_date.isoformat())
    orders = r.randint(800, 12_000)
    revenue = orders * r.randint(2500, 9000)
    out = {"date": report_date.isoformat(), "currency": cur, "orders": orders, "revenue": money(revenue, cur),
           "refunds": money(revenue // r.randint(30, 80), cur), "average_order_value": money(revenue // orders, cur),
           "top_products": [{"product_id": r.randint(1, PRODUCT_MAX), "units": r.randint(50, 900)} for _ in range(3)],
           "generated_at": iso(datetime.combine(report_date + timedelta(days=1), datetime.min.time(), timezone.utc) + timedelta(minutes=17))}
    if gran == "hour":
        out["hourly_orders"] = [r.randint(5, orders // 12) for _ in range(24)]
    return j(out)


# ---- payments, uploads ---------------------------------------------------------------------
def gen_payment(pid):
    r = rnd("payment", pid)
    brand, number = gen_card(r)
    status = r.choices(["captured", "authorized", "refunded", "failed"], [70, 15, 8, 7])[0]
    created = ts_between(r, EPOCH_2019, DATA_END)
    uid = r.randint(1, USER_MAX)
    currency = r.choice(CURRENCIES)
    out = {"id": pid, "order_id": order_uuid(uid, r.randint(100_000, 9_999_998)), "status": status,
           "amount": money(r.randint(500, 90000), currency),
           "card": {"brand": brand, "number": number, "exp_month": r.randint(1, 12), "exp_year": r.randint(2025, 2031)},
           "created_at": iso(created),
           "captured_at": iso(created + timedelta(seconds=r.randint(2, 600))) if status in ("captured", "refunded") else None}
    if status == "failed":
        out["failure_reason"] = r.choice(["insufficient_funds", "card_declined", "expired_card"])
    return out


@app.post("/api/v1/payments")
@meta(auth="bearer", pii="card_number")
def payments_create():
    body = json_body()
    if body is None or not isinstance(body.get("card"), dict) or not isinstance(body.get("amount"), dict):
        return err(400, "bad_request", "expected JSON with order_id, amount and card")
    card = body["card"]
    number = str(card.get("number", ""))
    problems = {}
    if not luhn_ok(number):
        problems["card.number"] = "invalid card number"
    if not isinstance(card.get("exp_year"), int) or card["exp_year"] < 2026:
        problems["card.exp_year"] = "card expired"
    try:
        uuid.UUID(str(body.get("order_id")))
    except ValueError:
        problems["order_id"] = "expected a UUID"
    if problems:
        return err(422, "validation_error", "payment rejected", fields=problems)
    with State.lock:
        pid = State.next_payment
        State.next_payment += 1
    status = "declined" if number.endswith("0002") else "authorized"
    stored = {"id": pid, "order_id": body["order_id"], "status": status, "amount": body["amount"],
              "card": {"brand": card_brand(number), "number": number, "exp_month": card.get("exp_month"),
                       "exp_year": card["exp_year"]},
              "created_at": iso(now()), "captured_at": None}
    with State.lock:
        State.payments[pid] = stored
    masked = number[:6] + "*" * (len(number) - 10) + number[-4:]
    out = {"id": pid, "order_id": body["order_id"], "status": status, "amount": body["amount"],
           "card": {"brand": stored["card"]["brand"], "last4": number[-4:], "masked": masked,
                    "exp_month": card.get("exp_month"), "exp_year": card["exp_year"]},
           "three_ds": {"required": stored["card"]["brand"] == "amex"}, "created_at": stored["created_at"]}
    return j(out, 201, {"Location": "/api/v1/payments/%d" % pid})


@app.get("/api/v1/payments/<int:payment_id>")
@meta(auth="bearer", pii="card_number")
def payments_get(payment_id):
    with State.lock:
        stored = State.payments.get(payment_id)
    if stored is not None:
        return j(stored)
    if not 1 <= payment_id <= PAYMENT_MAX or rnd("payment-exists", payment_id).random() < 0.08:
        return err(404, "not_found", "payment %d not found" % payment_id)
    return j(gen_payment(payment_id))


@app.post("/api/v1/uploads")
@meta(auth="bearer")
def uploads_create():
    f = request.files.get("file")
    if f is None or not f.filename:
        return err(400, "bad_request", "multipart field 'file' is required")
    data = f.read()
    if len(data) > 64 * 1024:
        return err(413, "payload_too_large", "files are limited to 64 KiB")
    digest = hashlib.sha256(data).hexdigest()
    n = State.tick()
    out = {"id": str(uuid.UUID(bytes=derive("upload", n)[:16], version=4)), "filename": f.filename,
           "content_type": f.mimetype or "application/octet-stream", "size": len(data), "sha256": digest,
           "uploaded_at": iso(now())}
    if request.form.get("description"):
        out["description"] = request.form["description"]
    meta_doc = {"sha256": digest, "filename": f.filename, "content_type": out["content_type"], "size": len(data),
                "uploaded_at": out["uploaded_at"], "storage": {"bucket": "shop-files-eu", "class": "standard"},
                "scan": {"status": "pending", "scanned_at": None}}
    with State.lock:
        UPLOADED[digest] = meta_doc
    return j(out, 201, {"Location": "/api/v1/files/%s" % digest})


# ---- admin, cart, partners, legacy -----------------------------------------------------------
@app.delete("/api/v1/admin/users/<int:user_id>")
@meta(auth="basic")
def admin_users_delete(user_id):
    if load_user(user_id) is None:
        return err(404, "not_found", "user %d not found" % user_id)
    with State.lock:
        State.users[user_id] = None
    return no_content()


@app.get("/api/v1/admin/stats")
@meta(auth="basic")
def admin_stats():
    period = request.args.get("period", "day")
    if period not in ("day", "week", "month"):
        return bad_query("period")
    with State.lock:
        created, deleted = State.next_user - USER_MAX - 1, sum(1 for v in State.users.values() if v is None)
        sessions = len(State.sessions)
    return j({"period": period, "generated_at": iso(now()), "requested_by": g.admin,
              "users": {"total": 4_600_000 + created - deleted, "active": 3_910_000, "suspended": 230_000,
                        "pending": 460_000 + created, "created": created, "deleted": deleted},
              "sessions": {"active": sessions}, "orders": {"pending": 1312, "shipped": 20871},
              "payments": {"authorized": 482, "failed": 37}})


def cart_doc(token):
    sess = State.sessions[token]
    items, subtotal = [], 0
    for pid, qty in sess["items"].items():
        p = gen_product(pid, full=False)
        cents = int(p["price"]["amount"].replace(".", ""))
        subtotal += cents * qty
        items.append({"product_id": pid, "sku": p["sku"], "name": p["name"], "quantity": qty,
                      "unit_price": p["price"]})
    return {"id": "cart_" + b64u(hashlib.sha256(token.encode()).digest()[:9]), "items": items,
            "item_count": sum(sess["items"].values()), "subtotal": money(subtotal, "EUR"),
            "updated_at": sess["updated_at"]}


@app.get("/api/v1/cart")
@meta(auth="cookie")
def cart_get():
    with State.lock:
        return j(cart_doc(g.session))


@app.post("/api/v1/cart")
@meta(auth="cookie")
def cart_add():
    body = json_body()
    if body is None or not isinstance(body.get("product_id"), int):
        return err(400, "bad_request", "expected JSON with product_id and quantity")
    qty = body.get("quantity", 1)
    if not isinstance(qty, int) or not 1 <= qty <= 99:
        return err(422, "validation_error", "invalid quantity", fields={"quantity": "integer 1..99"})
    if not product_exists(body["product_id"]):
        return err(404, "not_found", "product %d not found" % body["product_id"])
    with State.lock:
        sess = State.sessions[g.session]
        sess["items"][body["product_id"]] = sess["items"].get(body["product_id"], 0) + qty
        sess["updated_at"] = iso(now())
        return j(cart_doc(g.session), 201)


@app.get("/api/v1/partners/<int:partner_id>/invoices")
@meta(auth="api_key", pii="iban")
def partner_invoices(partner_id):
    if g.partner_id != partner_id:
        return err(403, "forbidden", "this API key does not belong to partner %d" % partner_id)
    status = request.args.get("status")
    if status is not None and status not in ("open", "paid", "overdue"):
        return bad_query("status")
    since = request.args.get("from")
    try:
        since_d = date.fromisoformat(since) if since else None
        page = arg_int("page", 1, 1, 50)
    except ValueError:
        return bad_query("from" if since and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", since) else "page")
    partner = gen_partner(partner_id)
    r = rnd("invoices", partner_id, page)
    invoices = []
    for i in range(r.randint(1, 5)):
        issued = date(2024, 1, 1) + timedelta(days=r.randrange(1000))
        st = r.choices(["paid", "open", "overdue"], [70, 20, 10])[0]
        if (status and st != status) or (since_d and issued < since_d):
            continue
        invoices.append({"id": "INV-%d-%06d" % (issued.year, r.randrange(10 ** 6)), "period": issued.strftime("%Y-%m"),
                         "issued_at": issued.isoformat(), "due_at": (issued + timedelta(days=30)).isoformat(),
                         "status": st, "amount": money(r.randint(10_000, 5_000_000), partner["currency"]),
                         "payout": {"iban": partner["iban"], "bic": partner["bic"], "account_holder": partner["name"]},
                         "paid_at": (issued + timedelta(days=r.randint(3, 29))).isoformat() if st == "paid" else None})
    return j({"partner": {"id": partner_id, "name": partner["name"]}, "data": invoices, "page": page,
              "has_more": page < 3})


@app.get("/api/v1/legacy/export")
@meta(auth="none")
def legacy_export():
    fmt = request.args.get("format", "json")
    since = request.args.get("since")
    if fmt not in ("json", "csv"):
        return bad_query("format")
    headers = {"Deprecation": "true", "Sunset": "Wed, 30 Jun 2027 23:59:59 GMT",
               "Link": '</api/v1/products>; rel="successor-version"'}
    r = rnd("export", since)
    rows = [gen_product(r.randint(1, PRODUCT_MAX), full=False) for _ in range(8)]
    if fmt == "csv":
        lines = ["id,sku,name,category,price,currency"]
        lines += ["%d,%s,%s,%s,%s,%s" % (p["id"], p["sku"], p["name"], p["category"], p["price"]["amount"],
                                         p["price"]["currency"]) for p in rows]
        resp = app.response_class("\n".join(lines) + "\n", mimetype="text/csv")
        resp.headers.update(headers)
        return resp
    return j({"deprecated": True, "successor": "/api/v1/products", "since": since, "rows": rows}, 200, headers)


# ---------------------------------------------------------------------------- route table
METHOD_ORDER = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def openapi_path(rule):
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule)


def route_table():
    rows = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        if not hasattr(view, "shop_auth"):
            raise SystemExit("route %s has no @meta" % rule.rule)
        for m in sorted(rule.methods - {"HEAD", "OPTIONS"}, key=METHOD_ORDER.index):
            rows.append((m, openapi_path(rule.rule), view.shop_auth, ",".join(view.shop_pii) or "-", rule.endpoint))
    rows.sort(key=lambda x: (x[1], METHOD_ORDER.index(x[0])))
    return rows


def print_routes(out=sys.stdout):
    out.write("method\tpath\tauth\tpii\n")
    for m, p, a, k, _ in route_table():
        out.write("%s\t%s\t%s\t%s\n" % (m, p, a, k))


# ---------------------------------------------------------------------------- keep-alive WSGI gateway
class KeepAliveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "shop-api/" + API_VERSION
    timeout = 120              # idle keep-alive connections are closed after this
    wsgi_app = None
    max_body = 1 << 20

    def version_string(self):
        return self.server_version

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self):
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (TimeoutError, ConnectionError):
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline, self.request_version, self.command = "", "", ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        self.run_wsgi()

    def run_wsgi(self):
        if self.headers.get("Transfer-Encoding"):
            self.send_error(501, "chunked request bodies are not supported")
            self.close_connection = True
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            self.close_connection = True
            return
        if length > self.max_body:
            self.send_error(413)
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection = True
            return
        path, _, query = self.path.partition("?")
        environ = {
            "REQUEST_METHOD": self.command, "SCRIPT_NAME": "", "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query, "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]), "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0], "REMOTE_PORT": str(self.client_address[1]),
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if self.headers.get("Content-Type"):
            environ["CONTENT_TYPE"] = self.headers["Content-Type"]
        if length:
            environ["CONTENT_LENGTH"] = str(length)
        for k, v in self.headers.items():
            key = "HTTP_" + k.upper().replace("-", "_")
            if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                continue
            environ[key] = environ[key] + "," + v if key in environ else v
        started = []

        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]
            return lambda data: chunks.append(data)
        chunks = []
        result = self.wsgi_app(environ, start_response)
        try:
            for data in result:
                chunks.append(data)
        finally:
            if hasattr(result, "close"):
                result.close()
        status, headers = started
        code = int(status.split()[0])
        out = b"".join(chunks)
        names = {k.lower() for k, _ in headers}
        lines = ["HTTP/1.1 " + status, "Server: " + self.server_version, "Date: " + self.date_time_string()]
        lines += ["%s: %s" % kv for kv in headers]
        no_body = 100 <= code < 200 or code in (204, 304)
        if "content-length" not in names and not no_body:
            lines.append("Content-Length: %d" % len(out))
        if self.close_connection:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if self.command != "HEAD" and not no_body:
            data += out
        self.wfile.write(data)
        self.log_request(code, len(out))


def make_server(port, wsgi_app):
    handler = type("Handler", (KeepAliveHandler,), {"wsgi_app": staticmethod(wsgi_app)})
    srv = ThreadingHTTPServer((ADDR, port), handler)
    srv.daemon_threads = True
    return srv


def serve(port):
    srv = make_server(port, app.wsgi_app)
    print("shop_api: listening on http://%s:%d" % (ADDR, srv.server_address[1]), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


# ---------------------------------------------------------------------------- traffic generator
WEIGHTS = {
    "health": 1.5, "auth_login": 3, "auth_token": 2,
    "users_list": 2.5, "users_create": 2, "users_get": 8, "users_replace": 2, "users_update": 2.5,
    "users_delete": 1.5, "users_me": 2, "users_search": 2.5, "user_orders_list": 3, "user_orders_get": 3.5,
    "v2_users_get": 4, "orders_get": 5, "order_items_get": 3.5,
    "products_list": 4, "products_get": 7, "reviews_list": 3, "reviews_create": 1.5, "articles_get": 8,
    "files_get": 5, "sessions_delete": 3.5, "objects_get": 5, "reports_get": 4,
    "payments_create": 2.5, "payments_get": 4, "uploads_create": 1.5,
    "admin_users_delete": 1, "admin_stats": 1, "cart_get": 2, "cart_add": 2.5, "partner_invoices": 3,
    "legacy_export": 1,
}
MIN_PER_ROUTE = 5
BOOTSTRAP = ["health", "auth_login", "auth_token"]
USER_AGENTS = ["ShopApp/5.2.1 (iPhone; iOS 17.4; Scale/3.00)", "ShopApp/5.1.0 (Android 14; Pixel 8)",
               "shop-web/2024.05.2 (+https://www.shop.test)", "shop-sdk-python/1.9.0 python-http.client"]
SESSION_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class ShopClient:
    def __init__(self, port, seed, n, nconn=4):
        self.port, self.n, self.nconn = port, n, nconn
        self.rng = random.Random(seed)
        self.conns = [None] * nconn
        self.uas = [None] * nconn
        self.opened = 0
        self.secrets = {}                 # ordered set
        self.user_tokens, self.client_tokens, self.cookies = [], [], []
        self.created_users, self.payments, self.uploaded = [], [], []
        self.partners = self.rng.sample(range(1, PARTNER_MAX + 1), 40)
        self.status = Counter()
        self.per_route = Counter()
        self.status_per_route = defaultdict(Counter)
        self.values = defaultdict(set)    # route -> distinct path values
        self.adapter = app.url_map.bind(HOST)

    # -- plumbing
    def secret(self, s):
        if s:
            self.secrets[s] = True

    def connection(self):
        i = self.rng.randrange(self.nconn)
        if self.conns[i] is None:
            self.conns[i] = http.client.HTTPConnection(ADDR, self.port, timeout=20)
            self.uas[i] = self.rng.choice(USER_AGENTS)
            self.opened += 1
        return i

    def req(self, method, path, query=None, headers=None, json_body=None, form=None, multipart=None, ua=None):
        if query:
            path += "?" + urlencode(query)
        h = {"Host": HOST, "Accept": "application/json",
             "X-Request-ID": str(uuid.UUID(int=self.rng.getrandbits(128), version=4))}
        body = None
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            h["Content-Type"] = "application/json"
        elif form is not None:
            body = urlencode(form).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        elif multipart is not None:
            boundary = "----shopform" + "%016x" % self.rng.getrandbits(64)
            parts = []
            for name, value in multipart:
                if isinstance(value, tuple):
                    fname, ctype, data = value
                    parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                                  'Content-Type: %s\r\n\r\n' % (boundary, name, fname, ctype)).encode() + data + b"\r\n")
                else:
                    parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                                  % (boundary, name, value)).encode())
            body = b"".join(parts) + ("--%s--\r\n" % boundary).encode()
            h["Content-Type"] = "multipart/form-data; boundary=" + boundary
        h.update(headers or {})
        i = self.connection()
        h["User-Agent"] = ua or self.uas[i]
        c = self.conns[i]
        c.request(method, path, body=body, headers=h)
        resp = c.getresponse()
        data = resp.read()
        if resp.will_close or self.rng.random() < 0.012:
            c.close()
            self.conns[i] = None
        # bookkeeping: which route of the app was this?
        try:
            endpoint, args = self.adapter.match(path.split("?")[0], method)
        except HTTPException:    # e.g. reports/2023-02-30: the date converter rejects it (404)
            endpoint, args = "(unmatched %s)" % self.op, {}
        self.per_route[endpoint] += 1
        self.status[resp.status] += 1
        self.status_per_route[endpoint][resp.status] += 1
        for v in args.values():
            self.values[endpoint].add(str(v))
        doc = None
        if (resp.getheader("Content-Type") or "").startswith("application/json") and data:
            doc = json.loads(data)
        return resp.status, resp, doc

    def bearer(self, service_ok=False, user_only=False):
        x = self.rng.random()
        if x < 0.05:
            return {}
        if x < 0.07:    # forged: right shape, wrong key
            t = int(time.time())
            tok = jwt_encode({"iss": JWT_ISS, "aud": JWT_AUD, "sub": str(self.rng.randint(1, USER_MAX)),
                              "iat": t, "exp": t + 3600, "scope": "admin"},
                             key=b"not-the-key-%d" % self.rng.randrange(1000))
        elif service_ok and not user_only and self.client_tokens and self.rng.random() < 0.3:
            tok = self.rng.choice(self.client_tokens[-4:])
        else:
            tok = self.rng.choice(self.user_tokens[-8:])[1]
        self.secret(tok)
        return {"Authorization": "Bearer " + tok}

    def user_id(self):
        x = self.rng.random()
        if x < 0.06 and self.created_users:
            return self.rng.choice(self.created_users)
        if x < 0.13:
            return self.rng.randint(USER_MAX + 1, 99_999_999)
        return self.rng.randint(1, USER_MAX)

    def user_with_orders(self):
        for _ in range(50):
            uid = self.rng.randint(1, USER_MAX)
            nums = user_order_numbers(uid)
            if nums:
                return uid, nums
        return 1, []

    def some_order(self):
        uid, nums = self.user_with_orders()
        return uid, (self.rng.choice(nums) if nums else 100_000)

    def product_id(self):
        return self.rng.randint(1, PRODUCT_MAX) if self.rng.random() < 0.93 else self.rng.randint(PRODUCT_MAX + 1, 9_999_999)

    def person(self):
        r = self.rng
        first, last = r.choice(FIRST), r.choice(LAST).replace("ü", "ue")
        return {"name": "%s %s" % (first.capitalize(), last.capitalize()),
                "email": "%s.%s%d@%s" % (first, last, r.randint(1, 999), r.choice(EMAIL_DOMAINS)),
                "phone": gen_phone(r),
                "date_of_birth": (date(1950, 1, 1) + timedelta(days=r.randrange(20000))).isoformat()}

    # -- one method per route
    def op_health(self):
        self.req("GET", "/api/v1/health", ua="kube-probe/1.29")

    def op_auth_login(self):
        name, uid = self.rng.choice(ACCOUNTS)
        pw = account_password(name)
        x = self.rng.random() if self.user_tokens else 1.0   # the first login must succeed
        body = {"username": name, "password": pw}
        if x < 0.08:
            body["password"] = pw[:-1] + self.rng.choice("0123456789")
            if body["password"] == pw:
                body["password"] += "x"
        elif x < 0.11:
            del body["password"]
        self.secret(body.get("password"))
        st, resp, doc = self.req("POST", "/api/v1/auth/login", json_body=body)
        if st == 200:
            self.secret(doc["access_token"])
            self.user_tokens.append((uid, doc["access_token"]))
            cookie = resp.getheader("Set-Cookie", "")
            m = re.match(r"session=([^;]+)", cookie)
            if m:
                self.secret(m.group(1))
                self.cookies.append(m.group(1))

    def op_auth_token(self):
        cid = self.rng.choice(OAUTH_CLIENTS)
        secret = client_secret(cid)
        x = self.rng.random()
        if x < 0.08:
            secret = secret[:-3] + "".join(self.rng.choice(SESSION_ALPHABET) for _ in range(3))
        form = {"grant_type": "password" if 0.08 <= x < 0.12 else "client_credentials",
                "client_id": cid, "client_secret": secret}
        if self.rng.random() < 0.5:
            form["scope"] = self.rng.choice(["orders:read", "orders:read payments:write", "reports:read"])
        self.secret(secret)
        st, _, doc = self.req("POST", "/api/v1/auth/token", form=form, ua="oauth-client/3.2")
        if st == 200:
            self.secret(doc["access_token"])
            self.client_tokens.append(doc["access_token"])

    def op_users_list(self):
        q = {}
        if self.rng.random() < 0.5:
            q["page"] = self.rng.randint(1, 400)
        if self.rng.random() < 0.4:
            q["per_page"] = self.rng.choice([5, 10, 20])
        if self.rng.random() < 0.25:
            q["status"] = self.rng.choice(USER_STATUS + (["deleted"] if self.rng.random() < 0.2 else []))
        self.req("GET", "/api/v1/users", query=q, headers=self.bearer())

    def op_users_create(self):
        body = self.person()
        if self.rng.random() < 0.4:
            body["preferences"] = {"language": self.rng.choice(LANGS), "newsletter": self.rng.random() < 0.5}
        x = self.rng.random()
        if x < 0.05:
            body["email"] = body["email"].replace("@", " at ")
        elif x < 0.09:
            del body["date_of_birth"]
        st, _, doc = self.req("POST", "/api/v1/users", json_body=body, headers=self.bearer())
        if st == 201:
            self.created_users.append(doc["id"])

    def op_users_get(self):
        self.req("GET", "/api/v1/users/%d" % self.user_id(), headers=self.bearer())

    def op_users_replace(self):
        body = self.person()
        body["status"] = self.rng.choice(USER_STATUS)
        if self.rng.random() < 0.05:
            body["phone"] = body["phone"][1:]
        self.req("PUT", "/api/v1/users/%d" % self.user_id(), json_body=body, headers=self.bearer())

    def op_users_update(self):
        r = self.rng
        body = r.choice([lambda: {"status": r.choice(USER_STATUS)}, lambda: {"phone": gen_phone(r)},
                         lambda: {"preferences": {"newsletter": r.random() < 0.5}},
                         lambda: {"nickname": r.choice(ADJ) + r.choice(NOUN).capitalize()},
                         lambda: {"email": self.person()["email"]}])()
        if r.random() < 0.05:
            body = {"status": "deleted"}
        self.req("PATCH", "/api/v1/users/%d" % self.user_id(), json_body=body, headers=self.bearer())

    def op_users_delete(self):
        uid = self.user_id()
        st, _, _ = self.req("DELETE", "/api/v1/users/%d" % uid, headers=self.bearer())
        if st == 204 and uid in self.created_users:
            self.created_users.remove(uid)

    def op_users_me(self):
        self.req("GET", "/api/v1/users/me", headers=self.bearer(user_only=True))

    def op_users_search(self):
        r = self.rng
        x = r.random()
        q = {}
        if x < 0.5:
            q["q"] = r.choice(FIRST)
        elif x < 0.7:
            q["q"] = r.choice(LAST).replace("ü", "ue")
        elif x < 0.85:
            q["q"] = gen_user(r.randint(1, USER_MAX))["email"]
        elif x < 0.95:
            q["q"] = r.choice(FIRST)[:3]
        if r.random() < 0.5:
            q["limit"] = r.choice([5, 10, 20])
        self.req("GET", "/api/v1/users/search", query=q, headers=self.bearer())

    def op_user_orders_list(self):
        uid = self.user_with_orders()[0] if self.rng.random() < 0.8 else self.user_id()
        q = {}
        if self.rng.random() < 0.3:
            q["status"] = self.rng.choice(ORDER_STATUS)
        if self.rng.random() < 0.15:
            q["page"] = self.rng.randint(1, 3)
        self.req("GET", "/api/v1/users/%d/orders" % uid, query=q, headers=self.bearer())

    def op_user_orders_get(self):
        uid, num = self.some_order()
        if self.rng.random() < 0.12:
            num = self.rng.randint(100_000, 9_999_999)
        self.req("GET", "/api/v1/users/%d/orders/%d" % (uid, num), headers=self.bearer())

    def op_v2_users_get(self):
        self.req("GET", "/api/v2/users/%d" % self.user_id(), headers=self.bearer(),
                 ua="ShopApp/6.0.0-beta (iPhone; iOS 18.0)")

    def order_uuid(self):
        if self.rng.random() < 0.15:
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        return order_uuid(*self.some_order())

    def op_orders_get(self):
        q = {"expand": "items"} if self.rng.random() < 0.3 else None
        self.req("GET", "/api/v1/orders/%s" % self.order_uuid(), query=q, headers=self.bearer(service_ok=True))

    def op_order_items_get(self):
        uid, num = self.some_order()
        _, items = order_items(uid, num)
        item = self.rng.choice(items)["item_id"] if self.rng.random() < 0.85 else self.rng.randint(1_000_000, 99_999_999)
        oid = order_uuid(uid, num) if self.rng.random() < 0.93 else str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.req("GET", "/api/v1/orders/%s/items/%d" % (oid, item), headers=self.bearer(service_ok=True))

    def op_products_list(self):
        r = self.rng
        q = {}
        if r.random() < 0.6:
            q["category"] = r.choice(CATEGORIES) if r.random() < 0.97 else "weapons"
        if r.random() < 0.5:
            q["page"] = r.randint(1, 40)
        if r.random() < 0.4:
            q["sort"] = r.choice(["price", "-price", "rating", "newest"])
        if r.random() < 0.3:
            q["per_page"] = r.choice([6, 12, 24])
        self.req("GET", "/api/v1/products", query=q)

    def op_products_get(self):
        q = {"currency": self.rng.choice(CURRENCIES)} if self.rng.random() < 0.2 else None
        self.req("GET", "/api/v1/products/%d" % self.product_id(), query=q)

    def op_reviews_list(self):
        r = self.rng
        q = {}
        if r.random() < 0.3:
            q["page"] = r.randint(1, 4)
        if r.random() < 0.3:
            q["sort"] = r.choice(["newest", "helpful", "rating"])
        if r.random() < 0.2:
            q["min_rating"] = r.randint(1, 5)
        self.req("GET", "/api/v1/products/%d/reviews" % self.product_id(), query=q)

    def op_reviews_create(self):
        r = self.rng
        body = {"rating": r.randint(1, 5) if r.random() > 0.06 else 7,
                "title": "%s %s" % (r.choice(ADJ).capitalize(), r.choice(NOUN)),
                "body": "I use it every day in the %s." % r.choice(NOUN)}
        if r.random() < 0.6:
            body["display_name"] = "%s %s." % (r.choice(FIRST).capitalize(), r.choice(LAST)[0].upper())
        self.req("POST", "/api/v1/products/%d/reviews" % self.product_id(), json_body=body)

    def op_articles_get(self):
        q = {"lang": self.rng.choice(["en", "de", "fr"])} if self.rng.random() < 0.15 else None
        self.req("GET", "/api/v1/articles/%s" % gen_slug(self.rng), query=q, ua="shop-web/2024.05.2 (+https://www.shop.test)")

    def op_files_get(self):
        r = self.rng
        if self.uploaded and r.random() < 0.15:
            h = r.choice(self.uploaded)
        else:
            h = hashlib.sha256(r.randbytes(32)).hexdigest()
            x = r.random()
            if x < 0.03:
                h = h.upper()
            elif x < 0.05:
                h = h[:40]
        self.req("GET", "/api/v1/files/%s" % h)

    def op_sessions_delete(self):
        tok = "".join(self.rng.choice(SESSION_ALPHABET) for _ in range(24))
        self.req("DELETE", "/api/v1/sessions/%s" % tok, headers=self.bearer())

    def op_objects_get(self):
        r = self.rng
        ts = r.randint(int(datetime(2022, 1, 1, tzinfo=timezone.utc).timestamp()), int(datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp()))
        oid = "%08x%010x%06x" % (ts, r.getrandbits(40), r.getrandbits(24))
        q = {"fields": r.choice(["kind", "kind,attributes", "created_at,version"])} if r.random() < 0.2 else None
        self.req("GET", "/api/v1/objects/%s" % oid, query=q)

    def op_reports_get(self):
        r = self.rng
        x = r.random()
        if x < 0.85:
            d = (TODAY_FLOOR + timedelta(days=r.randrange((date(2026, 11, 20) - TODAY_FLOOR).days))).isoformat()
        elif x < 0.9:
            d = (date(2027, 1, 1) + timedelta(days=r.randrange(365))).isoformat()
        elif x < 0.95:
            d = (date(2012, 1, 1) + timedelta(days=r.randrange(1400))).isoformat()
        else:
            d = "%d-02-%d" % (r.randint(2017, 2025), r.choice([30, 31]))
        q = {}
        if r.random() < 0.2:
            q["granularity"] = "hour"
        if r.random() < 0.2:
            q["currency"] = r.choice(CURRENCIES)
        self.req("GET", "/api/v1/reports/%s" % d, query=q, ua="reporting-dashboard/4.1")

    def op_payments_create(self):
        r = self.rng
        brand, number = gen_card(r)
        if r.random() < 0.08:
            number = number[:-1] + str((int(number[-1]) + 1) % 10)
        body = {"order_id": self.order_uuid(), "amount": money(r.randint(500, 90000), r.choice(CURRENCIES)),
                "card": {"number": number, "exp_month": r.randint(1, 12), "exp_year": r.randint(2026, 2031),
                         "cvc": "%0*d" % (4 if brand == "amex" else 3, r.randrange(10 ** (4 if brand == "amex" else 3)))}}
        if r.random() < 0.3:
            body["save_card"] = r.random() < 0.5
        if r.random() < 0.04:
            del body["card"]
        else:
            self.secret(number)
        st, _, doc = self.req("POST", "/api/v1/payments", json_body=body, headers=self.bearer(service_ok=True))
        if st == 201:
            self.payments.append(doc["id"])

    def op_payments_get(self):
        x = self.rng.random()
        if x < 0.1 and self.payments:
            pid = self.rng.choice(self.payments)
        elif x < 0.15:
            pid = self.rng.randint(PAYMENT_MAX + 1, 99_999_999)
        else:
            pid = self.rng.randint(1, PAYMENT_MAX)
        st, _, doc = self.req("GET", "/api/v1/payments/%d" % pid, headers=self.bearer(service_ok=True))
        if st == 200:
            self.secret(doc["card"]["number"])

    def op_uploads_create(self):
        r = self.rng
        kind = r.choice(["csv", "png", "pdf"])
        if kind == "csv":
            rows = ["sku,quantity"] + ["%s-%06d,%d" % (r.choice(CATEGORIES)[:3].upper(), r.randint(1, PRODUCT_MAX), r.randint(1, 20))
                                       for _ in range(r.randint(3, 30))]
            part = ("import-%d.csv" % r.randint(1, 999), "text/csv", ("\n".join(rows) + "\n").encode())
        elif kind == "png":
            part = ("avatar.png", "image/png", b"\x89PNG\r\n\x1a\n" + r.randbytes(r.randint(200, 1500)))
        else:
            part = ("receipt-%d.pdf" % r.randint(1000, 9999), "application/pdf",
                    b"%PDF-1.4\n% fixture\n" + r.randbytes(r.randint(300, 1200)) + b"\n%%EOF\n")
        fields = []
        if r.random() < 0.5:
            fields.append(("description", "%s %s" % (r.choice(ADJ), r.choice(NOUN))))
        if r.random() > 0.05:
            fields.append(("file", part))
        else:
            fields.append(("comment", "file missing"))
        st, _, doc = self.req("POST", "/api/v1/uploads", multipart=fields, headers=self.bearer(service_ok=True))
        if st == 201:
            self.uploaded.append(doc["sha256"])

    def basic(self):
        x = self.rng.random()
        if x < 0.05:
            return {}
        user = self.rng.choice(sorted(ADMINS))
        pw = ADMINS[user] if x >= 0.11 else ADMINS[user][::-1]
        cred = "%s:%s" % (user, pw)
        b64 = base64.b64encode(cred.encode()).decode()
        self.secret(cred)
        self.secret(b64)
        return {"Authorization": "Basic " + b64}

    def op_admin_users_delete(self):
        self.req("DELETE", "/api/v1/admin/users/%d" % self.user_id(), headers=self.basic(), ua="shop-admin-cli/0.9.4")

    def op_admin_stats(self):
        q = {"period": self.rng.choice(["day", "week", "month"])} if self.rng.random() < 0.5 else None
        self.req("GET", "/api/v1/admin/stats", query=q, headers=self.basic(), ua="shop-admin-cli/0.9.4")

    def cookie(self):
        x = self.rng.random()
        if x < 0.05:
            return {}
        tok = self.rng.choice(self.cookies[-6:]) if x >= 0.07 else b64u(self.rng.randbytes(32))
        self.secret(tok)
        return {"Cookie": "session=" + tok}

    def op_cart_get(self):
        self.req("GET", "/api/v1/cart", headers=self.cookie(), ua="shop-web/2024.05.2 (+https://www.shop.test)")

    def op_cart_add(self):
        r = self.rng
        body = {"product_id": self.product_id(), "quantity": r.randint(1, 3) if r.random() > 0.05 else 0}
        self.req("POST", "/api/v1/cart", json_body=body, headers=self.cookie(), ua="shop-web/2024.05.2 (+https://www.shop.test)")

    def op_partner_invoices(self):
        r = self.rng
        pid = r.choice(self.partners)
        x = r.random()
        if x < 0.05:
            h = {}
        else:
            if x < 0.08:
                key = partner_api_key(r.choice(self.partners))
            elif x < 0.1:
                key = "pk_live_" + base62(r.randbytes(24), 32)
            else:
                key = partner_api_key(pid)
            self.secret(key)
            h = {"X-API-Key": key}
        q = {}
        if r.random() < 0.3:
            q["status"] = r.choice(["open", "paid", "overdue"])
        if r.random() < 0.3:
            q["from"] = (date(2024, 1, 1) + timedelta(days=r.randrange(900))).isoformat()
        if r.random() < 0.2:
            q["page"] = r.randint(1, 3)
        st, _, doc = self.req("GET", "/api/v1/partners/%d/invoices" % pid, query=q, headers=h, ua="partner-sync/1.8.2")
        if st == 200:
            for inv in doc["data"]:
                self.secret(inv["payout"]["iban"])

    def op_legacy_export(self):
        q = {}
        if self.rng.random() < 0.5:
            q["format"] = self.rng.choice(["json", "csv"])
        if self.rng.random() < 0.4:
            q["since"] = (date(2023, 1, 1) + timedelta(days=self.rng.randrange(900))).isoformat()
        self.req("GET", "/api/v1/legacy/export", query=q, ua="legacy-erp-connector/2.0")

    # -- driver
    def plan(self):
        names = list(WEIGHTS)
        rest = self.n - len(BOOTSTRAP) - MIN_PER_ROUTE * len(names)
        if rest < 0:
            raise SystemExit("N must be at least %d" % (len(BOOTSTRAP) + MIN_PER_ROUTE * len(names)))
        body = names * MIN_PER_ROUTE + self.rng.choices(names, [WEIGHTS[x] for x in names], k=rest)
        self.rng.shuffle(body)
        return BOOTSTRAP + body

    def run(self):
        for name in self.plan():
            self.op = name
            getattr(self, "op_" + name)()
        for c in self.conns:
            if c is not None:
                c.close()


def write_secrets(path, secrets):
    try:
        with open(path) as f:
            have = set(f.read().splitlines())
    except FileNotFoundError:
        have = set()
    with open(path, "a") as f:
        for s in secrets:
            if s not in have:
                have.add(s)
                f.write(s + "\n")


def client_main(port, seed, n, secrets_path):
    cl = ShopClient(port, seed, n)
    cl.run()
    write_secrets(secrets_path, cl.secrets)
    total = sum(cl.per_route.values())
    ids = sum(len(v) for v in cl.values.values())
    print("shop_api client: seed %d: %d requests on %d connections, %d distinct path values, %d secrets"
          % (seed, total, cl.opened, ids, len(cl.secrets)), file=sys.stderr)
    print("  status: " + " ".join("%d=%d" % kv for kv in sorted(cl.status.items())), file=sys.stderr)
    problems = []
    for m, p, a, k, endpoint in route_table():
        c = cl.per_route[endpoint]
        sts = " ".join("%d=%d" % kv for kv in sorted(cl.status_per_route[endpoint].items()))
        print("  %-6s %-50s %4d  distinct=%-4d %s" % (m, p, c, len(cl.values[endpoint]), sts), file=sys.stderr)
        if c < MIN_PER_ROUTE:
            problems.append("%s %s called %d times" % (m, p, c))
        if not any(200 <= s < 300 for s in cl.status_per_route[endpoint]):
            problems.append("%s %s never succeeded" % (m, p))
    for endpoint, c in sorted(cl.per_route.items()):
        if endpoint.startswith("(unmatched"):
            sts = " ".join("%d=%d" % kv for kv in sorted(cl.status_per_route[endpoint].items()))
            print("  %-57s %4d  %s" % (endpoint, c, sts), file=sys.stderr)
            if endpoint != "(unmatched reports_get)":
                problems.append("%d requests of %s matched no route" % (c, endpoint))
    if total != n:
        problems.append("%d requests made, %d planned" % (total, n))
    for pr in problems:
        print("shop_api client: problem: " + pr, file=sys.stderr)
    return 1 if problems else 0


# ---------------------------------------------------------------------------- audit
PII_PATTERNS = {
    "email": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z0-9.-]+"),
    "phone": re.compile(r"(?<![\w+])\+[1-9]\d{7,14}(?!\d)"),
    "jwt": re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+"),
    "password": re.compile(r'"(?:password|client_secret)"\s*:|(?:^|&)(?:password|client_secret)='),
    "date_of_birth": re.compile(r'"date_of_birth"\s*:\s*"\d{4}-\d{2}-\d{2}"'),
}
# not after "+": "+4915112345678" is a phone, even when its digits pass Luhn with a Visa prefix
CARD_RE = re.compile(r"(?<![0-9A-Za-z+])\d{13,19}(?![0-9A-Za-z])")
IBAN_RE = re.compile(r"(?<![A-Z0-9])[A-Z]{2}\d{2}[A-Z0-9]{11,30}(?![A-Z0-9])")


def scan_pii(text):
    found = {k for k, rx in PII_PATTERNS.items() if rx.search(text)}
    if any(luhn_ok(m) and m[0] in "2345" for m in CARD_RE.findall(text)):
        found.add("card_number")
    if any(iban_ok(m) for m in IBAN_RE.findall(text)):
        found.add("iban")
    return found


class AuditMiddleware:
    """WSGI wrapper: records, per route, the PII kinds seen in URL, query and both bodies."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.seen = defaultdict(set)
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read()
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            endpoint, _ = app.url_map.bind_to_environ(environ).match()
        except HTTPException:
            endpoint = None
        out = b"".join(self.wsgi_app(environ, start_response))
        if endpoint:
            text = "\n".join([unquote_plus(environ["PATH_INFO"] + "?" + environ["QUERY_STRING"]),
                              body.decode("latin-1"), out.decode("latin-1")])
            kinds = scan_pii(text)
            with self.lock:
                self.seen[(environ["REQUEST_METHOD"], endpoint)] |= kinds
        return [out]


def audit_main(seed, n):
    mw = AuditMiddleware(app.wsgi_app)
    srv = make_server(0, mw)
    KeepAliveHandler.log_request = lambda *a, **k: None
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".secrets") as tf:
        rc = client_main(srv.server_address[1], seed, n, tf.name)
    srv.shutdown()
    bad = 0
    print("method\tpath\tdeclared\tobserved")
    for m, p, a, k, endpoint in route_table():
        declared = set() if k == "-" else set(k.split(","))
        observed = mw.seen.get((m, endpoint), set())
        flag = "" if declared == observed else "\tMISMATCH"
        bad += bool(flag)
        print("%s\t%s\t%s\t%s%s" % (m, p, k, ",".join(x for x in KINDS if x in observed) or "-", flag))
    print("audit: %d route(s) where the declared pii differs from the traffic" % bad, file=sys.stderr)
    return 1 if bad or rc else 0


def main(argv):
    usage = ("usage: shop_api.py serve PORT | routes | client PORT SEED N SECRETS_FILE | audit [SEED N]")
    if len(argv) >= 2 and argv[1] == "serve" and len(argv) == 3:
        serve(int(argv[2]))
    elif len(argv) == 2 and argv[1] == "routes":
        print_routes()
    elif len(argv) == 6 and argv[1] == "client":
        return client_main(int(argv[2]), int(argv[3]), int(argv[4]), argv[5])
    elif len(argv) in (2, 4) and argv[1] == "audit":
        return audit_main(int(argv[2]) if len(argv) == 4 else 1, int(argv[3]) if len(argv) == 4 else 2500)
    else:
        print(usage, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
