#!/bin/sh
# `make deb`: copies the tree (without builds, var/, mnt/ and .git) to
# $B/deb/speechfs-VERSION, puts packaging/debian there as ./debian, runs
# `dpkg-buildpackage -us -uc -b` in it and moves the .deb to $B/.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
B=${B:-build}
version=$(cat VERSION)
changelog=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
if [ "$changelog" != "$version" ]; then
	echo "make deb: packaging/debian/changelog is at $changelog but" \
		"VERSION says $version; add a changelog entry (dch -v $version)" >&2
	exit 1
fi

work="$B/deb"
src="$work/speechfs-$version"
rm -rf "$work"
mkdir -p "$src"
tar -C "$top" -cf - --exclude=./build --exclude='./build-*' \
	--exclude=./var --exclude=./mnt --exclude=./.git --exclude="./$B" \
	--exclude=./debian . | tar -C "$src" -xf -
rm -rf "$src/packaging/debian"
mkdir -p "$src/debian"
(cd packaging/debian && tar -cf - --exclude=./build-deb.sh .) |
	tar -C "$src/debian" -xf -

# the package builds with its own defaults, not the calling make's B= or -j
(cd "$src" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u B -u SAN \
	dpkg-buildpackage -us -uc -b)

deb="speechfs_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).deb"
mv "$work/$deb" "$B/$deb"
echo "make deb: $B/$deb"
