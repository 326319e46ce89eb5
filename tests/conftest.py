"""Shared pytest configuration: the build directory, one closing line
"N passed, M failed" so every run ends the same way, no skipped test
under CI, and the fixtures of the throwaway Ceph RADOS Gateway
(tests/rgw.py) and PostgreSQL server (tests/pg.py) that the object-store
and metadata-backend tests use."""
import os
import pathlib
import shutil
import signal
import sys
import tempfile
import time

import pytest

import pg
import rgw

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("SFS_BUILD", ROOT / "build"))


def pytest_configure(config):
    """Signals as a terminal's Ctrl-C and Ctrl-\\ send them. A run started
    in the background of a non-interactive shell (`make test &`, a script
    under nohup) inherits SIGINT and SIGQUIT ignored, and so would every
    program a test starts: the mount would not stop on the SIGINT a test
    sends it, nor `make run` (a shell cannot trap a signal ignored on
    entry). The programs the tests start get the defaults."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN:
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def under_ci():
    """Whether this run is CI's (CI=true, as .ci/run sets it)."""
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI a skip is a failure: a missing component (no /dev/fuse,
    a binary not built, not root for the package tests) must never pass
    for green. Elsewhere a skip says what is missing and why."""
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and under_ci() and not hasattr(rep, "wasxfail"):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) \
            else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"skipped under CI=true, which fails: {reason}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    stats = terminalreporter.stats
    passed = len(stats.get("passed", []))
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    skipped = len(stats.get("skipped", []))
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def rgw_gateway(tmp_path_factory):
    """One throwaway Ceph RADOS Gateway for the whole run (tests/rgw.py).
    It not starting fails the tests that use it, with its logs; a daemon
    that crashed meanwhile fails the teardown."""
    g = rgw.Gateway(tmp_path_factory.mktemp("rgw"))
    try:
        g.start()
    except rgw.GatewayError as exc:
        pytest.fail(str(exc), pytrace=False)
    sys.stderr.write("\nrgw: %s answered signed S3 %.2f s after start\n"
                     % (g.endpoint, g.start_seconds))
    yield g
    g.stop()


@pytest.fixture
def s3_bucket(rgw_gateway):
    """A fresh bucket of the session's gateway, emptied and deleted
    after the test; yields (gateway, bucket name)."""
    name = rgw_gateway.make_bucket()
    yield rgw_gateway, name
    s3 = rgw_gateway.client()
    try:
        s3.drop_bucket(name)
    finally:
        s3.close()


@pytest.fixture(scope="session")
def pg_server():
    """One throwaway PostgreSQL server for the whole run (tests/pg.py), in
    a directory of its own under /tmp (its user must reach it). It not
    starting fails the tests that use it, with its log; it must stop
    cleanly at the end."""
    base = tempfile.mkdtemp(prefix="sfs-pg-")
    s = pg.Server(base)
    t0 = time.monotonic()
    try:
        s.start()
    except pg.ServerError as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(str(exc), pytrace=False)
    sys.stderr.write("\npg: answered %.2f s after initdb began\n"
                     % (time.monotonic() - t0))
    yield s
    rc = s.stop()
    log = s.tail()
    shutil.rmtree(base, ignore_errors=True)
    assert rc == 0, "postgres exited %d:\n%s" % (rc, log)


@pytest.fixture
def pg_database(pg_server):
    """A fresh empty database of the session's server, dropped after the
    test; yields its libpq URL."""
    name = pg_server.new_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)
