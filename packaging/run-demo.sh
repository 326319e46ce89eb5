#!/bin/sh
# `make run`: a demo store under ./var (a tenant, a user and an API key,
# made once and kept in ./var/demo.env), speechfsd on 127.0.0.1:8080 and
# the mount at ./mnt, in the foreground; Ctrl-C unmounts and stops both.
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

json_field() {
	$PY -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

[ -x "$SPEECHFSD" ] || die "$SPEECHFSD is missing (run make)"
[ -x "$SPEECHFS" ] || die "$SPEECHFS is missing (run make)"

if $PY - "$PORT" <<'PYEOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
PYEOF
then
	die "port $PORT on 127.0.0.1 is taken; stop what uses it or set SPEECHFS_PORT"
fi
if mountpoint -q "$MNT" 2>/dev/null; then
	die "$MNT is already a mount point; unmount it with: fusermount3 -u $MNT"
fi
mkdir -p "$VAR" "$MNT"

if [ ! -f "$STORE/speechfs.db" ]; then
	"$SPEECHFSD" init --store "$STORE" >/dev/null
	tenant=$("$SPEECHFSD" tenant create --store "$STORE" --name demo --json |
		json_field id)
	user=$("$SPEECHFSD" user create --store "$STORE" --tenant "$tenant" \
		--name demo --json | json_field id)
	key=$("$SPEECHFSD" key create --store "$STORE" --user "$user" \
		--scopes read,write,delete,share --label demo --json |
		json_field key)
	umask 077
	cat >"$VAR/demo.env" <<ENV
SPEECHFS_URL=http://127.0.0.1:$PORT/api/v1/speech-services/files
SPEECHFS_KEY=$key
SPEECHFS_USER=$user
SPEECHFS_TENANT=$tenant
ENV
	echo "A demo store was made in $STORE."
	echo "Its API key (shown once, also saved in var/demo.env): $key"
fi
. "$VAR/demo.env"

daemon=""
mount_pid=""
stop() {
	trap - INT TERM
	echo
	echo "stopping ..."
	if mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" || true
	fi
	[ -n "$mount_pid" ] && wait "$mount_pid" 2>/dev/null || true
	[ -n "$daemon" ] && kill -TERM "$daemon" 2>/dev/null || true
	[ -n "$daemon" ] && wait "$daemon" 2>/dev/null || true
	echo "stopped."
	exit "${1:-0}"
}
trap stop INT TERM

"$SPEECHFSD" --store "$STORE" --listen "127.0.0.1:$PORT" &
daemon=$!
i=0
until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 100 ] || { kill "$daemon" 2>/dev/null; die "speechfsd did not start"; }
	kill -0 "$daemon" 2>/dev/null || die "speechfsd exited"
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
  ls -l mnt/ mnt/.listening/

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
