#!/bin/sh
# `make run`: a demo store under ./var (a tenant, a user and an API key,
# made once), speechfsd on 127.0.0.1:8080 and the mount at ./mnt, in the
# foreground; Ctrl-C unmounts and stops both and exits 0. var/demo.env is
# written at every start (the URL of this start, the key of the store);
# a second `make run` on the same var/ says what is running instead.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-build}
PORT=${SPEECHFS_PORT:-8080}
# SPEECHFS_VAR and SPEECHFS_MNT put the store and the mount elsewhere.
VAR=${SPEECHFS_VAR:-$top/var}
MNT=${SPEECHFS_MNT:-$top/mnt}
STORE="$VAR/store"
SPEECHFSD="$top/$B/speechfsd"
SPEECHFS="$top/$B/speechfs"
PY=/usr/bin/python3

die() {
	echo "make run: $*" >&2
	exit 1
}

# Ctrl-C on a terminal signals the whole foreground process group, make
# included, and make then fails with "Interrupt" however cleanly the demo
# stops. So on a terminal the demo runs in a process group of its own that
# gets the terminal: Ctrl-C reaches the demo alone, it stops everything
# and exits 0, and so does make.
if [ -z "${SFS_DEMO_OWN_GROUP:-}" ] && [ -t 0 ] && [ -t 2 ]; then
	SFS_DEMO_OWN_GROUP=1 exec $PY -c '
import os, signal, sys
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
tty = os.open("/dev/tty", os.O_RDWR)
before = os.tcgetpgrp(tty)
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    os.tcsetpgrp(tty, os.getpgrp())
    signal.signal(signal.SIGTTOU, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execv(sys.argv[1], sys.argv[1:])
try:
    os.setpgid(pid, pid)  # or the child did, and may have run exec
except OSError:
    pass
_, status = os.waitpid(pid, 0)
os.tcsetpgrp(tty, before)
sys.exit(os.waitstatus_to_exitcode(status) % 256)
' "$0"
fi

[ -x "$SPEECHFSD" ] || die "$SPEECHFSD is missing (run make)"
[ -x "$SPEECHFS" ] || die "$SPEECHFS is missing (run make)"
mkdir -p "$VAR" "$MNT"

# One demo per var/: var/demo.run names the one that runs.
if [ -f "$VAR/demo.run" ]; then
	# shellcheck disable=SC1091
	. "$VAR/demo.run"
	if kill -0 "${DEMO_PID:-0}" 2>/dev/null &&
		grep -q run-demo "/proc/$DEMO_PID/cmdline" 2>/dev/null; then
		die "a demo is already running on this store (pid $DEMO_PID):" \
			"API on 127.0.0.1:$DEMO_PORT, mount at $DEMO_MNT;" \
			"stop it with Ctrl-C in its terminal (or kill $DEMO_PID)"
	fi
fi
if $PY - "$PORT" <<'PYEOF'; then
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
PYEOF
	die "port $PORT on 127.0.0.1 is taken by another program;" \
		"stop it or set SPEECHFS_PORT"
fi
if mountpoint -q "$MNT" 2>/dev/null; then
	die "$MNT is still mounted, but no demo runs: unmount it with" \
		"fusermount3 -u $MNT"
fi

if [ ! -f "$STORE/speechfs.db" ]; then
	"$SPEECHFSD" init --store "$STORE"
	tenant=$("$SPEECHFSD" tenant create --store "$STORE" --name demo)
	user=$("$SPEECHFSD" user create --store "$STORE" --tenant "$tenant" \
		--name demo)
	key=$("$SPEECHFSD" key create --store "$STORE" --user "$user" \
		--scopes read,write,delete,share --label demo --json |
		$PY -c 'import json, sys; print(json.load(sys.stdin)["key"])')
	(
		umask 077
		printf 'SPEECHFS_KEY=%s\nSPEECHFS_USER=%s\nSPEECHFS_TENANT=%s\n' \
			"$key" "$user" "$tenant" >"$VAR/demo.credentials"
	)
	echo "A demo store was made in $STORE."
	echo "Its API key (shown once, also saved in $VAR/demo.env): $key"
fi
[ -f "$VAR/demo.credentials" ] ||
	die "$VAR/demo.credentials is missing: remove $VAR to start afresh"
# this start's URL with the store's credentials, every time
(
	umask 077
	printf 'SPEECHFS_URL=http://127.0.0.1:%s/api/v1/speech-services/files\n' \
		"$PORT" >"$VAR/demo.env.new"
	cat "$VAR/demo.credentials" >>"$VAR/demo.env.new"
	mv "$VAR/demo.env.new" "$VAR/demo.env"
)
# shellcheck disable=SC1091
. "$VAR/demo.env"
printf 'DEMO_PID=%s\nDEMO_PORT=%s\nDEMO_MNT=%s\n' "$$" "$PORT" "$MNT" \
	>"$VAR/demo.run"

daemon=""
mount_pid=""
stop() {
	trap - INT TERM
	echo
	echo "stopping ..."
	# SIGTERM: the mount unmounts itself and exits (an unmount from
	# outside would leave it running while any other mount namespace
	# still holds a copy of the mount)
	if [ -n "$mount_pid" ]; then
		kill -TERM "$mount_pid" 2>/dev/null || true
		wait "$mount_pid" 2>/dev/null || true
	fi
	if mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -uz "$MNT" || true
	fi
	if [ -n "$daemon" ]; then
		kill -TERM "$daemon" 2>/dev/null || true
		wait "$daemon" 2>/dev/null || true
	fi
	rm -f "$VAR/demo.run"
	echo "stopped."
	exit "${1:-0}"
}
trap stop INT TERM

"$SPEECHFSD" --store "$STORE" --listen "127.0.0.1:$PORT" &
daemon=$!
i=0
until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -ge 100 ] || ! kill -0 "$daemon" 2>/dev/null; then
		echo "make run: speechfsd did not start" >&2
		stop 1
	fi
	sleep 0.1
done

"$SPEECHFS" --store "$STORE" --user "$SPEECHFS_USER" "$MNT" -f -o no_workers &
mount_pid=$!
i=0
until mountpoint -q "$MNT" 2>/dev/null; do
	i=$((i + 1))
	if [ $i -ge 100 ] || ! kill -0 "$mount_pid" 2>/dev/null; then
		echo "make run: the mount did not come up" >&2
		stop 1
	fi
	sleep 0.1
done

cat <<MSG

speechfs is running:
  API    http://127.0.0.1:$PORT/api/v1/speech-services/files
  mount  $MNT

Try, in another shell:
  . $VAR/demo.env
  curl -H "X-API-Key: \$SPEECHFS_KEY" "\$SPEECHFS_URL"
  curl -H "X-API-Key: \$SPEECHFS_KEY" -F file=@some.wav -F name=hello "\$SPEECHFS_URL"
  ls -l $MNT/ $MNT/.listening/

Ctrl-C stops both.
MSG
# A signal to this shell runs stop. Ctrl-C reaches speechfsd too, which
# may exit (status 0) before this shell sees the signal: speechfsd exits 0
# only when stopped by a signal, so that is a stop, not a failure.
rc=0
wait "$daemon" || rc=$?
if [ "$rc" -eq 0 ]; then
	echo "make run: speechfsd stopped" >&2
	stop 0
fi
echo "make run: speechfsd exited (status $rc)" >&2
stop 1
