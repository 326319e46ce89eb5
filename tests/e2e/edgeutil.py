"""Helpers of the HTTP edge tests: raw requests over a socket with a strict
reader that checks each response's framing, HS256 tokens signed with a
store's own secret (to reach the claim checks behind the signature), and
connections from other loopback addresses (127.0.0.x), and a slowloris
attack (test_api_slow.py, tests/bench/bench_httpd.py)."""
import base64
import errno
import hashlib
import hmac
import json
import pathlib
import selectors
import socket
import sqlite3
import subprocess
import threading
import time


class Framing(Exception):
    pass


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers      # lower-case name -> list of values
        self.body = body

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[0] if v else None

    def json(self):
        return json.loads(self.body)


def _read_until(sock, buf, marker, deadline):
    while marker not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Framing("timed out waiting for %r" % marker)
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise Framing("connection closed inside a response head: %r"
                          % buf[:200])
        buf += chunk
    return buf


def read_response(sock, buf=b"", timeout=10, head=False):
    """One response from sock; returns (Response, the bytes after it).
    A response must have a status line, headers and exactly the body its
    Content-Length (or chunked encoding) says."""
    deadline = time.monotonic() + timeout
    buf = _read_until(sock, buf, b"\r\n\r\n", deadline)
    raw, buf = buf.split(b"\r\n\r\n", 1)
    lines = raw.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") \
            or not parts[1].isdigit():
        raise Framing("bad status line %r" % lines[0])
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        if b":" not in line:
            raise Framing("bad header line %r" % line)
        k, v = line.split(b":", 1)
        headers.setdefault(k.decode().strip().lower(), []).append(
            v.decode("latin-1").strip())
    te = headers.get("transfer-encoding")
    cl = headers.get("content-length")
    if head or status in (204, 304) or 100 <= status < 200:
        return Response(status, headers, b""), buf
    if te:
        if te != ["chunked"] or cl:
            raise Framing("bad framing headers %r %r" % (te, cl))
        body = b""
        while True:
            buf = _read_until(sock, buf, b"\r\n", deadline)
            size_line, buf = buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(buf) < size + 2:
                buf = _recv_more(sock, buf, deadline)
            body += buf[:size]
            if buf[size:size + 2] != b"\r\n":
                raise Framing("bad chunk end")
            buf = buf[size + 2:]
            if size == 0:
                return Response(status, headers, body), buf
    if not cl or len(set(cl)) != 1:
        raise Framing("no single Content-Length: %r" % cl)
    n = int(cl[0])
    while len(buf) < n:
        buf = _recv_more(sock, buf, deadline)
    return Response(status, headers, buf[:n]), buf[n:]


def _recv_more(sock, buf, deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise Framing("timed out reading a body")
    sock.settimeout(left)
    chunk = sock.recv(65536)
    if not chunk:
        raise Framing("connection closed inside a body")
    return buf + chunk


def rest_until_close(sock, buf=b"", timeout=5):
    """Whatever the server sends after the last response, until it
    closes; used to prove nothing follows a response (no second copy)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Framing("the server kept the connection open")
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return buf
        if not chunk:
            return buf
        buf += chunk


def connect(base, source="127.0.0.1", timeout=10):
    host, port = base.split("//")[1].split(":")
    return socket.create_connection((host, int(port)), timeout=timeout,
                                    source_address=(source, 0))


def raw(base, data, source="127.0.0.1", timeout=10, head=False):
    """Send bytes, read one strictly framed response."""
    with connect(base, source, timeout) as s:
        s.sendall(data)
        r, _ = read_response(s, timeout=timeout, head=head)
        return r


def get(base, path, headers=(), source="127.0.0.1", method="GET",
        body=b"", timeout=10):
    """A request with headers as given (repeats allowed) over a fresh
    connection from `source`."""
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1",
             "Connection: close"]
    lines += ["%s: %s" % kv for kv in headers]
    if body:
        lines.append("Content-Length: %d" % len(body))
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    return raw(base, data, source, timeout, head=(method == "HEAD"))


def assert_error_body(r, status, error_type=None):
    """The documented error body and X-Request-Id on a raw response."""
    assert r.status == status, (r.status, r.body[:300])
    rid = r.header("X-Request-Id")
    assert rid and len(rid) == 36, r.headers
    assert r.header("Content-Type").startswith("application/json")
    body = r.json()
    assert set(body) == {"status_code", "error_type", "message",
                         "validation_errors", "request_id"}, body
    assert body["status_code"] == status and body["request_id"] == rid
    if error_type:
        assert body["error_type"] == error_type, body
    return body


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def store_pg(store):
    """(url, schema) of a store whose metadata live in PostgreSQL (its
    STORE/db.url record), None for SQLite."""
    rec = pathlib.Path(store) / "db.url"
    if not rec.exists():
        return None
    kv = dict(line.split(" = ", 1) for line in rec.read_text().splitlines()
              if " = " in line)
    return kv["db.url"], kv.get("db.schema") or "public"


def store_secret(store):
    pg = store_pg(store)
    if pg:
        out = subprocess.run(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-d", pg[0], "-c", "SET search_path = %s" % pg[1], "-c",
             "SELECT value FROM setting WHERE key = 'secret'"],
            capture_output=True, text=True, timeout=30, check=True).stdout
        return bytes.fromhex(out.strip())
    db = sqlite3.connect("file:%s/speechfs.db?mode=ro" % store, uri=True)
    try:
        row = db.execute("SELECT value FROM setting WHERE key = 'secret'"
                         ).fetchone()
    finally:
        db.close()
    return bytes.fromhex(row[0] if isinstance(row[0], str)
                         else row[0].decode())


def forge(store, claims, header=None, key=None, alg=hashlib.sha256):
    """A JWT signed with the store's secret (or `key`): valid signature,
    whatever claims the test wants to see refused."""
    header = header if header is not None else {"alg": "HS256",
                                                "typ": "JWT"}
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    p = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing = (b64(h) + "." + b64(p)).encode()
    mac = hmac.new(key if key is not None else store_secret(store),
                   signing, alg).digest()
    return signing.decode() + "." + b64(mac)


class Slowloris:
    """n connections from the given addresses, each sending a request
    head one line every `every` seconds and never finishing it; a closed
    one is opened again after `again` seconds."""

    PATH = b"/api/v1/speech-services/files"

    def __init__(self, base, n, sources, every=5.0, again=0.2):
        host, port = base.split("//")[1].split(":")
        self.addr = (host, int(port))
        self.n, self.sources, self.every, self.again = \
            n, sources, every, again
        self.sel = selectors.DefaultSelector()
        self.stop = threading.Event()
        self.opened = self.closed = 0
        self.live = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def open(self, i):
        s = socket.socket()
        s.setblocking(False)
        s.bind((self.sources[i % len(self.sources)], 0))
        rc = s.connect_ex(self.addr)
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            return None
        self.opened += 1
        st = {"i": i, "sent": 0, "next": time.monotonic()}
        self.sel.register(s, selectors.EVENT_READ, st)
        return s

    def run(self):
        socks = {}
        pending = []              # (time to reopen, index)
        for i in range(self.n):
            socks[i] = self.open(i)
        while not self.stop.is_set():
            now = time.monotonic()
            for key, _ in self.sel.select(timeout=0.05):
                try:
                    data = key.fileobj.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    self.drop(socks, pending, key, now)
            for i, s in list(socks.items()):
                if s is None:
                    continue
                st = self.sel.get_key(s).data
                if now < st["next"]:
                    continue
                line = (b"GET " + self.PATH + b" HTTP/1.1\r\nHost: x\r\n"
                        if st["sent"] == 0 else b"X-Slow: %d\r\n" % st["sent"])
                try:
                    s.send(line)
                    st["sent"] += 1
                    st["next"] = now + self.every
                except BlockingIOError:
                    st["next"] = now + 0.05    # not connected yet
                except OSError:
                    self.drop(socks, pending, self.sel.get_key(s), now)
            for when, i in list(pending):
                if when <= now and socks.get(i) is None:
                    pending.remove((when, i))
                    socks[i] = self.open(i)
            self.live = sum(1 for s in socks.values() if s is not None)
        for s in socks.values():
            if s is not None:
                self.sel.unregister(s)
                s.close()

    def drop(self, socks, pending, key, now):
        i = key.data["i"]
        self.sel.unregister(key.fileobj)
        key.fileobj.close()
        socks[i] = None
        self.closed += 1
        pending.append((now + self.again, i))
