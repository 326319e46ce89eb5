"""The README's code blocks, read and run.

Every fenced block of README.md is preceded by a marker
`<!-- test: KIND -->` that says how a test runs it (KINDS below). A
command block is split into its commands (a newline outside quotes ends
one; a trailing backslash continues it) and each command is sent to one
bash session that lives as long as the block sequence, so variables set
by one command are there for the next. Each must exit 0; a command that
fails is tried again for a while, because some wait for work the store
does in the background (listening audio appears when its job is done).
"""
import os
import pathlib
import re
import select
import signal
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
README = ROOT / "README.md"

KINDS = {
    "picture": "a picture, not commands",
    "two-commands": "make run and make test: test_pkg runs make run, "
                    ".ci/run runs make test",
    "admin": "a fresh store: admin CLI, serve, mount",
    "demo": "against a make run instance, in its directory",
    "error-body": "an example error body: its keys are checked",
    "config": "a configuration example: its keys are checked",
    "pkg": "against the installed Debian package",
    "systemd": "systemctl: its units are checked (no systemd here)",
    "fstab": "an /etc/fstab line: test_pkg mounts it",
    "fstab-remote": "a remote mount's /etc/fstab line: "
                    "test_fs_remote_mount mounts it through the helper",
    "bucket-config": "a configuration for a store in a bucket: used, with "
                     "the test gateway's endpoint and bucket, by the "
                     "bucket blocks",
    "bucket": "a store in a bucket: run against the test run's Ceph "
              "RADOS Gateway",
    "nginx": "an nginx http-level fragment: `nginx -t` checks it",
}

MARK = re.compile(r"<!--\s*test:\s*([a-z-]+)\s*-->")


class Block:
    def __init__(self, kind, lang, text, line):
        self.kind = kind
        self.lang = lang
        self.text = text
        self.line = line

    def __repr__(self):
        return f"README.md:{self.line} ({self.kind})"


def blocks(path=README):
    """Every fenced block with the marker before it (None if none)."""
    out = []
    lines = path.read_text().split("\n")
    i = 0
    kind = None
    while i < len(lines):
        m = MARK.search(lines[i])
        if m:
            kind = m.group(1)
        elif lines[i].startswith("```"):
            lang = lines[i][3:].strip()
            start = i + 1
            i += 1
            while not lines[i].startswith("```"):
                i += 1
            out.append(Block(kind, lang, "\n".join(lines[start:i]) + "\n",
                             start))
            kind = None
        elif lines[i].strip():
            kind = None if not lines[i].startswith("<!--") else kind
        i += 1
    return out


def commands(text):
    """Split shell text into commands: a newline ends a command unless it
    is quoted, escaped, or follows a pipe or `&&`; comments go."""
    cmds = []
    cur = []
    quote = None
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            cur.append(c)
            if c == "\\" and quote == '"' and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
            cur.append(c)
        elif c == "\\" and text[i + 1:i + 2] == "\n":
            cur.append(" ")
            i += 1
        elif c == "#" and (not cur or cur[-1] in " \t"):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif c == "\n":
            s = "".join(cur).strip()
            if s.endswith(("|", "&&", "||")):
                cur.append(" ")
            else:
                if s:
                    cmds.append(s)
                cur = []
        else:
            cur.append(c)
        i += 1
    assert quote is None, f"unbalanced {quote} in {text!r}"
    s = "".join(cur).strip()
    if s:
        cmds.append(s)
    return cmds


# What the session defines before the README's commands run: curl fails on
# an HTTP error (the README's commands are meant to succeed) and is quiet;
# sudo stands in where this machine has none (root), and mpg123 decodes
# without playing (-t: this machine has no sound card).
PRELUDE = r"""
exec 2>&1
set -o pipefail
curl() { command curl -sS --fail-with-body "$@"; }
if ! command -v sudo >/dev/null; then
	sudo() {
		if [ "$1" = -u ]; then
			u=$2; shift 2; runuser -u "$u" -- "$@"
		else
			"$@"
		fi
	}
fi
mpg123() { command mpg123 -q -t "$@"; }
"""


class Session:
    """One bash process fed one command at a time."""

    def __init__(self, cwd, env, subst=()):
        self.subst = list(subst)
        self.log = []
        self.bg = []
        self.pidfds = {}
        self.proc = subprocess.Popen(["bash", "--norc", "--noprofile"],
                                     cwd=cwd, env=env,
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.raw(PRELUDE, 30)

    def raw(self, cmd, timeout):
        """Send cmd, read its output up to the exit-status marker. The pipe
        is read unbuffered: select() only knows of bytes not yet read."""
        mark = f"__readme_rc_{time.monotonic_ns()}="
        self.proc.stdin.write(f"{cmd}\necho \"{mark}$?\"\n".encode())
        self.proc.stdin.flush()
        fd = self.proc.stdout.fileno()
        got = b""
        deadline = time.time() + timeout
        while True:
            text = got.decode(errors="replace")
            m = re.search(re.escape(mark) + r"(\d+)\n", text)
            if m:
                return int(m.group(1)), text[:m.start()]
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"{cmd!r} did not finish in {timeout} s;"
                                     f" output:\n{text[-3000:]}")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError(f"the shell ended during {cmd!r}:"
                                         f"\n{text[-3000:]}")
                got += chunk

    def local(self, cmd):
        for a, b in self.subst:
            cmd = cmd.replace(a, b)
        return cmd

    def run(self, cmd, retry_for=30, timeout=120):
        """Run one README command; it must exit 0 (tried again for up to
        retry_for seconds). Returns its output."""
        cmd = self.local(cmd)
        deadline = time.time() + retry_for
        while True:
            rc, out = self.raw(cmd, timeout)
            self.log.append((cmd, rc, out))
            if rc == 0:
                return out
            if time.time() > deadline:
                raise AssertionError(f"README command {cmd!r} exited {rc}:\n"
                                     f"{out[-3000:]}")
            time.sleep(1)

    def start(self, cmd, ready, seconds=30):
        """A command that stays in the foreground: run it in the
        background of the session until ready() is true."""
        cmd = self.local(cmd)
        rc, out = self.raw(f"{cmd} &\necho \"__readme_pid=$!\"", 30)
        pid = int(re.search(r"__readme_pid=(\d+)", out).group(1))
        # the shell reaps it when it ends: close() signals it through a
        # pidfd, not by a pid another process may have by then
        self.pidfds[pid] = os.pidfd_open(pid)
        self.bg.append(pid)
        deadline = time.time() + seconds
        while not ready():
            if time.time() > deadline:
                raise AssertionError(f"{cmd!r} was not ready in {seconds} s")
            time.sleep(0.2)
        return pid

    def close(self):
        for pid in self.bg:
            try:
                signal.pidfd_send_signal(self.pidfds[pid], signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.bg = []
        for fd in self.pidfds.values():
            os.close(fd)
        self.pidfds = {}
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (subprocess.TimeoutExpired, BrokenPipeError):
            self.proc.kill()
            self.proc.wait()
