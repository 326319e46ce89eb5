"""Slow clients (issue 13, defect 2): a request head has a deadline, a body
a minimum rate, and the connection limits evict clients that only wait
instead of refusing everyone else; under 1,000 slow connections from 16
loopback addresses every legitimate request is served, long before the
attack's connections reach their deadlines.

Bounds on time here tell one behaviour from another (cut or not, served
before the attack's deadlines or after), with room for a loaded machine:
the speed itself (a second, issue 13) is a benchmark's to measure. Under
nice 12 on a machine at load 15, one request of the slowloris test took
2.7 s of the old bound's 1 s."""
import signal
import socket
import time

import edgeutil as eu
from fsutil import sigstop

API = "/api/v1/speech-services/files"


def closed_within(s, limit):
    """Seconds until the server closes s (reading and dropping), or None
    if it stays open `limit` seconds."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        s.settimeout(max(0.01, limit - (time.monotonic() - t0)))
        try:
            if not s.recv(65536):
                return time.monotonic() - t0
        except socket.timeout:
            return None
        except ConnectionResetError:
            return time.monotonic() - t0
    return None


def trickle(s, piece, every, t0, limit=30):
    """Send piece on s, then read (and drop) for every seconds, again
    and again until the server closes s: the seconds from t0 until a
    send failed or a read found the end; None if s stays open limit
    seconds from t0."""
    while time.monotonic() - t0 < limit:
        try:
            s.sendall(piece)
        except OSError:
            return time.monotonic() - t0
        if closed_within(s, every) is not None:
            return time.monotonic() - t0
    return None


def test_slow_head_is_closed_at_its_deadline(sfsd_factory):
    c = sfsd_factory({"http.request_head_timeout": "2"})
    with eu.connect(c.base) as s:
        t0 = time.monotonic()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        gone = trickle(s, b"X-Slow: 1\r\n", 0.4, t0)
        assert gone is not None, "a head trickling in was never cut"
        assert 1.9 <= gone <= 20, gone
    # a connection that sends nothing at all is cut too
    with eu.connect(c.base) as s:
        gone = closed_within(s, 30)
        assert gone is not None and 1.9 <= gone <= 20, gone


def test_idle_keep_alive_is_not_a_slow_head(sfsd_factory):
    c = sfsd_factory({"http.request_head_timeout": "1"})
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with eu.connect(c.base) as s:
        s.sendall(req)
        r, rest = eu.read_response(s)
        assert r.status == 200
        time.sleep(2.5)             # idle longer than a head may take
        s.sendall(req)
        r, rest = eu.read_response(s, rest)
        assert r.status == 200


def test_slow_body_is_closed(sfsd_factory):
    c = sfsd_factory({"http.request_head_timeout": "1",
                      "http.min_body_rate": "2000"})
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            "Content-Length: 1000000\r\n\r\n" % (API, c.keys["alice"]))
    with eu.connect(c.base) as s:
        s.sendall(head.encode() + b"--b\r\n")
        gone = trickle(s, b"x" * 200, 0.3, time.monotonic())
        assert gone is not None, "a body at 700 B/s was never cut"
        assert gone < 20, gone
    # the same upload at full speed is fine
    r = c.upload(data=b"y" * 500000)
    assert r.status_code == 201, r.text


def test_address_at_its_limit_evicts_its_oldest_waiting(sfsd_factory):
    """A NAT: one address holds its limit of idle connections; a request
    from behind it still gets in, and the oldest waiting one goes."""
    c = sfsd_factory({"http.per_ip_connection_limit": "8"})
    idle = [eu.connect(c.base, source="127.0.0.2") for _ in range(8)]
    try:
        time.sleep(0.2)
        t0 = time.monotonic()
        r = eu.get(c.base, API, [("X-API-Key", c.keys["alice"])],
                   source="127.0.0.2")
        # served at once, not after an idle one's head deadline (10 s)
        assert r.status == 200 and time.monotonic() - t0 < 5
        assert closed_within(idle[0], 30) is not None
        # another address is not affected at all
        assert eu.get(c.base, "/healthz", source="127.0.0.3").status == 200
    finally:
        for s in idle:
            s.close()


def test_slowloris_from_16_addresses(sfsd_factory):
    """1,000 slow connections from 127.0.0.2-17 under the default limits
    (512 in all, 64 per address, 10 s per head): 28 legitimate requests,
    from an address of their own and from behind each attacking one, are
    all served, each well before the 10 s of an attacker's head (a
    request that had to wait for one to be cut would take that long)."""
    c = sfsd_factory({"http.rate_per_second": "1000",
                      "http.rate_burst": "1000"})
    sources = ["127.0.0.%d" % i for i in range(2, 18)]
    attack = eu.Slowloris(c.base, 1000, sources)
    attack.thread.start()
    try:
        deadline = time.monotonic() + 30
        while attack.live < 900 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert attack.live >= 900, attack.live
        key = [("X-API-Key", c.keys["alice"])]
        who = ["127.0.0.1"] * 12 + sources
        slow = []
        for i, src in enumerate(who):
            t0 = time.monotonic()
            r = eu.get(c.base, API, key, source=src)
            took = time.monotonic() - t0
            assert r.status == 200, (src, r.status)
            if took >= 5:
                slow.append((src, took))
            time.sleep(0.35)
        assert not slow, slow
        # the attack was real: connections were being held and cut
        assert attack.live > 400, attack.live
        assert attack.closed > 0
    finally:
        attack.stop.set()
        attack.thread.join(10)


def unread(server_port, client_port):
    """Bytes the daemon has not read yet on its end of a connection from
    client_port (/proc/net/tcp's rx_queue), None if not there."""
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        local, remote = f[1].split(":"), f[2].split(":")
        if int(local[1], 16) == server_port and \
                int(remote[1], 16) == client_port:
            return int(f[4].split(":")[1], 16)
    return None


def test_a_pause_of_the_daemon_is_not_the_clients_time(sfsd_factory):
    """The daemon stopped (SIGSTOP: job control, a cgroup freezer, a
    debugger) for longer than request_head_timeout while a request head
    is half in, then continued: the head is not cut as slow, as the
    client was not (the reaper closed every head and body under way the
    moment the daemon ran again)."""
    c = sfsd_factory({"http.request_head_timeout": "2"})
    proc = c.daemon.proc
    port = int(c.base.rsplit(":", 1)[1])
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    with eu.connect(c.base) as s:
        s.sendall(req + b"\r\n")
        r, rest = eu.read_response(s)
        assert r.status == 200
        me = s.getsockname()[1]
        s.sendall(req)      # half of the next head: read, then a pause
        deadline = time.monotonic() + 30
        while unread(port, me) != 0:
            assert time.monotonic() < deadline, unread(port, me)
            time.sleep(0.01)
        try:
            sigstop(proc)
            paused = time.monotonic()
            # the pause itself: twice the head's deadline
            while time.monotonic() < paused + 4:
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGCONT)
        # the reaper's first look after the pause: it says so (or, as it
        # was, it closes the connection)
        log = c.daemon.log
        closed = None
        while "did not run for" not in log.read_text():
            s.settimeout(0.05)
            try:
                if not s.recv(4096):
                    closed = "closed"
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = "reset"
                break
            assert time.monotonic() < deadline + 30, "no word of the pause"
        assert closed is None, "the head was cut after the pause: " + closed
        s.settimeout(10)
        s.sendall(b"\r\n")
        r, rest = eu.read_response(s)
        assert r.status == 200
