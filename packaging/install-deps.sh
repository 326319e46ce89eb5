#!/bin/sh
# Installs every Debian package that building, testing and benchmarking
# speechfs need, and the one npm package the tests use (Redocly's OpenAPI
# linter, a pinned version: tests run it, never download it). What is
# present is skipped, so it is cheap to run again; `make` runs it when a
# dependency is missing.
set -eu

BUILD="build-essential pkg-config libsqlite3-dev libpq-dev libcurl4-openssl-dev
libjansson-dev libssl-dev libmp3lame-dev libsndfile1-dev libmicrohttpd-dev
libfuse3-dev fuse3 libsystemd-dev libisal-dev"
TEST="python3 python3-pytest python3-requests curl ca-certificates git procps attr rsync tar valgrind
clang clang-format libclang-rt-14-dev espeak-ng sox libsox-fmt-all ffmpeg mpg123 lame sqlite3 openssl jq strace
ceph-mon ceph-osd radosgw ceph-common prometheus postgresql postgresql-contrib
chromium chromium-driver python3-selenium fonts-dejavu-core"
BENCH="wrk nginx-light bindfs rclone"
PACKAGE="debhelper dpkg-dev lintian fakeroot groff-base man-db"

REDOCLY=1.34.20

# Node.js and npm for the linter, unless the machine has them already
# (from Debian or elsewhere: Debian's npm would not mix with another node).
NODE=""
command -v npm >/dev/null 2>&1 || NODE="nodejs npm"

# Installed, or installed with its triggers still to run (another dpkg
# on the machine may be in the middle of them: that is no reason to
# install again).
missing=""
for p in $BUILD $TEST $BENCH $PACKAGE $NODE; do
	if ! dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null |
		grep -q "^i[itW]"; then
		missing="$missing $p"
	fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

if [ -n "$missing" ]; then
	echo "install-deps: installing$missing"
	# Some test tools are daemons too (prometheus, for its promtool;
	# postgresql, whose server the tests start themselves):
	# installing them starts nothing. A policy-rc.d the machine has
	# stays as it is; one made here goes afterwards.
	policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\n# speechfs install-deps: start no daemon\nexit 101\n' |
			$SUDO tee $policy >/dev/null
		$SUDO chmod 755 $policy
		trap '$SUDO rm -f $policy' EXIT
	fi
	# another dpkg (a test installing the package) may hold the lock: wait
	LOCK="-o DPkg::Lock::Timeout=600"
	$SUDO apt-get $LOCK update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get $LOCK install -y -qq \
		--no-install-recommends $missing
fi

if ! redocly --version 2>/dev/null | grep -qx "$REDOCLY"; then
	echo "install-deps: installing @redocly/cli@$REDOCLY (npm)"
	$SUDO npm install --global --no-audit --no-fund --loglevel=error \
		"@redocly/cli@$REDOCLY"
fi
[ -n "$missing" ] || echo "install-deps: all packages present"
