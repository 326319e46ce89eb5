"""SSRF battery: URI imports aimed at a forbidden listener on loopback in
every spelling we know, directly and through redirects from an allowed
host, and through a name that /etc/hosts (in a private mount namespace
of the daemon) points at loopback. The listener must see 0 connections;
each import is refused at request time (400 on uri) or fails with the
blocked address as its reason. The allowed origin must have served each
redirect, so every vector was really tried."""
import shutil
import socket
import subprocess
import threading
import time
import http.server

import pytest

from conftest import start


class Listener:
    """The forbidden target: 127.0.0.1 and ::1 on one port, counting
    every connection accepted."""

    def __init__(self):
        self.v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.v4.bind(("127.0.0.1", 0))
        self.port = self.v4.getsockname()[1]
        self.v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.v6.bind(("::1", self.port))
        self.hits = []
        self.stopping = False
        self.threads = []
        for s in (self.v4, self.v6):
            s.listen(64)
            s.settimeout(0.1)
            t = threading.Thread(target=self.serve, args=(s,), daemon=True)
            t.start()
            self.threads.append(t)

    def serve(self, s):
        while not self.stopping:
            try:
                c, addr = s.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.hits.append(addr)
            c.close()

    def close(self):
        self.stopping = True
        for t in self.threads:
            t.join()
        self.v4.close()
        self.v6.close()


class Redirector(http.server.ThreadingHTTPServer):
    """The allowed origin, on 127.0.0.2: /CODE?URL redirects to URL."""

    def __init__(self):
        self.served = []
        super().__init__(("127.0.0.2", 0), RedirectHandler)


class RedirectHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code, _, to = self.path[1:].partition("?")
        self.server.served.append(self.path)
        self.send_response(int(code))
        self.send_header("Location", to)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture
def listener():
    li = Listener()
    yield li
    li.close()


@pytest.fixture
def redirector():
    srv = Redirector()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def direct_vectors(p):
    """27 ways to write the listener's address (127.0.0.1 or ::1)."""
    return [
        f"http://127.0.0.1:{p}/a.wav",
        f"http://localhost:{p}/a.wav",
        f"http://LOCALHOST:{p}/a.wav",
        f"http://localhost.:{p}/a.wav",
        f"http://127.0.0.1.:{p}/a.wav",
        f"http://2130706433:{p}/a.wav",
        f"http://0x7f000001:{p}/a.wav",
        f"http://0x7f.0.0.1:{p}/a.wav",
        f"http://0177.0.0.1:{p}/a.wav",
        f"http://0177.0000.0000.0001:{p}/a.wav",
        f"http://127.1:{p}/a.wav",
        f"http://127.0.1:{p}/a.wav",
        f"http://0:{p}/a.wav",
        f"http://0.0.0.0:{p}/a.wav",
        f"http://[::1]:{p}/a.wav",
        f"http://[0:0:0:0:0:0:0:1]:{p}/a.wav",
        f"http://[::ffff:127.0.0.1]:{p}/a.wav",
        f"http://[::ffff:7f00:1]:{p}/a.wav",
        f"http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/a.wav",
        f"http://[::127.0.0.1]:{p}/a.wav",
        f"http://[64:ff9b::127.0.0.1]:{p}/a.wav",
        f"http://user:pw@127.0.0.1:{p}/a.wav",
        f"http://127.0.0.2@127.0.0.1:{p}/a.wav",
        f"http://127.0.0.1:{p}#@127.0.0.2/a.wav",
        f"https://127.0.0.1:{p}/a.wav",
        f"https://[::1]:{p}/a.wav",
        f"http://%31%32%37.0.0.1:{p}/a.wav",
    ]


def redirect_vectors(base, p):
    """Redirects from the allowed origin to the listener, 10 of them."""
    tos = [f"http://127.0.0.1:{p}/a.wav", f"http://localhost:{p}/a.wav",
           f"http://[::1]:{p}/a.wav", f"http://[::ffff:127.0.0.1]:{p}/a",
           f"http://2130706433:{p}/a.wav"]
    out = [f"{base}/{code}?{tos[0]}" for code in (301, 302, 303, 307, 308)]
    out += [f"{base}/302?{to}" for to in tos[1:]]
    # a chain: the origin redirects to itself, then to the listener
    out.append(f"{base}/302?{base}/307?{tos[0]}")
    return out


def run_imports(c, uris, deadline_s=120):
    """Post each import; {uri: "400" or the failed import's error}."""
    out, pending = {}, {}
    for u in uris:
        r = c.post("", json={"uri": u, "name": "ssrf"})
        if r.status_code == 400:
            body = c.assert_error(r, 400)
            assert [v["location"] for v in body["validation_errors"]] == \
                ["uri"], (u, body)
            out[u] = "400"
            continue
        assert r.status_code == 201, (u, r.status_code, r.text)
        pending[u] = r.json()["id"]
    deadline = time.monotonic() + deadline_s
    while pending:
        for u, fid in list(pending.items()):
            f = c.get(f"/{fid}").json()
            if f["ingestionStatus"] in ("FAILED", "READY"):
                out[u] = f["ingestionStatus"] + ": " + \
                    str(f.get("ingestionError"))
                del pending[u]
        assert time.monotonic() < deadline, ("imports still running",
                                             pending)
        time.sleep(0.1)
    return out


def assert_refused(results):
    for u, res in results.items():
        assert res == "400" or (res.startswith("FAILED") and (
            "blocked address" in res or "resolve" in res)), (u, res)


def test_ssrf_vectors_never_connect(sfsd_factory, listener, redirector):
    base = f"http://127.0.0.2:{redirector.server_address[1]}"
    c = sfsd_factory({"import.allow": "127.0.0.2"})
    direct = direct_vectors(listener.port)
    redirs = redirect_vectors(base, listener.port)
    assert len(direct) + len(redirs) >= 37
    results = run_imports(c, direct + redirs)
    assert listener.hits == [], listener.hits
    assert_refused(results)
    # every redirect vector was served by the allowed origin (the chain
    # twice), so the refusal was the redirect's target, not the origin
    assert len(redirector.served) == len(redirs) + 1, redirector.served
    for u in redirs:
        assert "blocked address" in results[u], (u, results[u])
    # most spellings must be resolved and refused at connect time: a
    # parser that refused everything odd would prove nothing about it
    blocked = [u for u in direct if "blocked address" in results[u]]
    assert len(blocked) >= 20, results


def test_hosts_file_name_for_loopback_never_connects(tmp_path_factory,
                                                      listener):
    """A name that /etc/hosts points at loopback (the daemon runs in a
    private mount namespace with its own /etc/hosts bound over it)."""
    for tool in ("unshare", "mount"):
        assert shutil.which(tool), tool + " is needed (util-linux)"
    hosts = tmp_path_factory.mktemp("hosts") / "hosts"
    hosts.write_text("127.0.0.1 localhost\n::1 localhost\n"
                     "127.0.0.1 intranet.test\n::1 intranet6.test\n"
                     "127.0.0.5 allowed-but-loopback.test\n")
    prefix = ["unshare", "--mount", "--propagation", "private", "--",
              "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"',
              str(hosts)]
    d, c = start(tmp_path_factory, {"import.allow": "127.0.0.2"},
                 prefix=prefix)
    try:
        p = listener.port
        uris = [f"http://intranet.test:{p}/a.wav",
                f"http://intranet6.test:{p}/a.wav",
                f"http://Intranet.TEST:{p}/a.wav"]
        results = run_imports(c, uris)
        assert listener.hits == [], listener.hits
        for u in uris:
            assert "blocked address" in results[u], (u, results[u])
        # the name did resolve through the namespace's hosts file: the
        # reason names the loopback address it resolved to
        assert "127.0.0.1" in results[uris[0]], results
        assert "::1" in results[uris[1]], results
    finally:
        c.http.close()
        d.stop()
    # the namespace was the daemon's alone
    assert "intranet.test" not in open("/etc/hosts").read()
    r = subprocess.run(["getent", "hosts", "intranet.test"],
                       capture_output=True)
    assert r.returncode != 0
