#!/bin/sh
# Installs every Debian package that building, testing and benchmarking
# speechfs need. Packages already present are skipped, so it is cheap to run
# again; `make` runs it when a dependency is missing.
set -eu

BUILD="build-essential pkg-config libsqlite3-dev libcurl4-openssl-dev
libjansson-dev libssl-dev libmp3lame-dev libsndfile1-dev libmicrohttpd-dev
libfuse3-dev fuse3 libsystemd-dev"
TEST="python3 python3-pytest python3-requests curl ca-certificates git procps attr rsync tar valgrind
clang-format espeak-ng sox libsox-fmt-all ffmpeg mpg123 lame sqlite3 openssl jq strace
ceph-mon ceph-osd radosgw ceph-common"
BENCH="wrk nginx-light bindfs"
PACKAGE="debhelper dpkg-dev lintian fakeroot groff-base man-db"

# Installed, or installed with its triggers still to run (another dpkg
# on the machine may be in the middle of them: that is no reason to
# install again).
missing=""
for p in $BUILD $TEST $BENCH $PACKAGE; do
	if ! dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null |
		grep -q "^i[itW]"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi
echo "install-deps: installing$missing"
# another dpkg (a test installing the package) may hold the lock: wait
LOCK="-o DPkg::Lock::Timeout=600"
$SUDO apt-get $LOCK update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get $LOCK install -y -qq \
	--no-install-recommends $missing
