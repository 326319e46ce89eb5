# speechfs — one non-recursive Makefile for the core library, the daemon,
# the mount, the tests and the benchmarks.

VERSION   := $(shell cat VERSION)
PREFIX    ?= /usr/local
DESTDIR   ?=
PYTHON    ?= /usr/bin/python3
CC        ?= cc

ifeq ($(SAN),1)
B         ?= build-asan
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer \
	     -fno-sanitize-recover=undefined
OPT       := -O1
else ifeq ($(SAN),thread)
B         ?= build-tsan
SANFLAGS  := -fsanitize=thread -fno-omit-frame-pointer
OPT       := -O1
else
B         ?= build
SANFLAGS  :=
OPT       := -O2
endif

PKGS      := sqlite3 libpq jansson openssl libcurl sndfile libmicrohttpd fuse3 \
	     libsystemd libisal
HAVE_PKGS := $(shell pkg-config --exists $(PKGS) && test -f /usr/include/lame/lame.h && echo yes)
# Targets that install what is missing first (packaging/install-deps.sh) and
# then build in a second make, which reads the libraries' flags afresh.
# Parsing this file never installs anything.
DEPS_GOALS := deps test unit valgrind bench run asan tsan deb clean \
	      check-format fuzz
ifneq ($(HAVE_PKGS),yes)
ifneq ($(filter-out $(DEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
$(error build dependencies are missing: run 'make deps' (packaging/install-deps.sh) first)
endif
endif

WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	     -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral -Wvla \
	     -Wno-format-truncation
# Front ends see only include/ (the public API); core/ and the tests of its
# internals see core/ too (tests/test_tree.py checks the includes).
CPPFLAGS  := -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Iinclude \
	     -DSFS_VERSION='"$(VERSION)"' \
	     -DSFS_WWW_DIR='"$(PREFIX)/share/speechfs/www"'
CORE_CPPFLAGS := -Icore
# libpq's header (only core/db_pg*.c include it, through db_pg_conn_i.h)
PQ_CFLAGS := $(shell pkg-config --cflags libpq)
CFLAGS    := -std=gnu11 $(OPT) -g -pthread $(WARN) $(SANFLAGS) -MMD -MP
LDFLAGS   := -pthread $(SANFLAGS)

CORE_PC   := sqlite3 libpq jansson openssl libcurl sndfile libisal
CORE_LIBS := $(shell pkg-config --libs $(CORE_PC)) -lmp3lame -lm
HTTPD_LIBS:= $(shell pkg-config --libs libmicrohttpd libsystemd)
FS_CFLAGS := $(shell pkg-config --cflags fuse3)
FS_LIBS   := $(shell pkg-config --libs fuse3 libsystemd)

CORE_SRC  := $(wildcard core/*.c)
HTTPD_SRC := $(wildcard httpd/*.c)
FS_SRC    := $(wildcard fs/*.c)
UNIT_SRC  := $(wildcard tests/unit/t_*.c)
BENCH_SRC := $(wildcard tests/bench/*.c)

CORE_OBJ  := $(CORE_SRC:%.c=$(B)/%.o)
HTTPD_OBJ := $(HTTPD_SRC:%.c=$(B)/%.o)
FS_OBJ    := $(FS_SRC:%.c=$(B)/%.o)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
UNIT_FIX  := $(B)/tests/unit/fixture.o
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(B)/bench/%)
# programs the Python benchmarks run (not benchmarks themselves: run.py
# runs only the files directly in $(B)/bench/)
BENCH_BIN += $(patsubst tests/bench/%.c,$(B)/bench/%,$(wildcard tests/bench/helpers/*.c))

LIB       := $(B)/libspeechfs.a
BINS      := $(if $(HTTPD_SRC),$(B)/speechfsd) $(if $(FS_SRC),$(B)/speechfs)

ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: FORCE all test unit asan tsan bench install clean run deps check-format \
	valgrind deb fuzz fuzz-build
.SECONDARY:
all: $(LIB) $(BINS) $(UNIT_BIN) $(BENCH_BIN)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/core/%.o $(B)/tests/unit/%.o $(B)/tests/bench/%.o: CPPFLAGS += $(CORE_CPPFLAGS)
$(B)/core/db_pg.o $(B)/core/db_pg_%.o: CPPFLAGS += $(PQ_CFLAGS)

$(B)/fs/%.o: fs/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(FS_CFLAGS) $(CFLAGS) -c -o $@ $<

# httpd/openapi.c embeds the document with the assembler's .incbin, which
# the compiler's dependency files do not see.
$(B)/httpd/openapi.o: httpd/openapi.json

# The archive is remade when its list of members changes, not only when a
# member is newer: a core/*.c removed or renamed must leave it too. The
# list is of the sources, which do not change with how B is spelt: with
# the objects' paths, `make B=$PWD/build` after `make` (the tests' make
# install and make deb) remade the archive and relinked every program.
$(B)/core-objs: FORCE
	@mkdir -p $(dir $@)
	@echo '$(CORE_SRC)' | cmp -s - $@ || echo '$(CORE_SRC)' > $@

$(LIB): $(CORE_OBJ) $(B)/core-objs
	@rm -f $@
	@echo "  AR      $@"
	$(Q)ar rcs $@ $(CORE_OBJ)

FORCE:

$(B)/speechfsd: $(HTTPD_OBJ) $(LIB)
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(HTTPD_OBJ) $(LIB) $(HTTPD_LIBS) $(CORE_LIBS)

$(B)/speechfs: $(FS_OBJ) $(LIB)
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(FS_OBJ) $(LIB) $(FS_LIBS) $(CORE_LIBS)

# a unit test of the daemon's parsers or its OpenAPI document links them
# (no libmicrohttpd in them)
$(B)/tests/t_http_date: UNIT_HTTPD := $(B)/httpd/parse.o
$(B)/tests/t_http_date: $(B)/httpd/parse.o
$(B)/tests/t_openapi: UNIT_HTTPD := $(B)/httpd/openapi.o
$(B)/tests/t_openapi: $(B)/httpd/openapi.o

$(B)/tests/%: $(B)/tests/unit/%.o $(UNIT_FIX) $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(UNIT_HTTPD) $(UNIT_FIX) $(LIB) $(CORE_LIBS)

$(B)/bench/%: $(B)/tests/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(CORE_LIBS)

# libFuzzer targets (clang, ASan + UBSan) in $(FB): the core and the
# daemon's parsers that need no connection, instrumented for coverage.
# `make fuzz` runs each target FUZZ_SECS seconds from its seed corpus in
# tests/fuzz/corpus/; `make test` runs each on a fixed number of inputs
# from a fixed seed, about 22 s a target when idle (tests/test_fuzz.py).
FUZZ_CC   ?= clang
FB        ?= build-fuzz
FUZZ_SECS ?= 60
FUZZ_SAN  := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	     -fno-omit-frame-pointer
FUZZ_WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	     -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral -Wvla
FUZZ_CFLAGS := -std=gnu11 -O1 -g -pthread $(FUZZ_WARN) $(FUZZ_SAN) \
	     -fsanitize=fuzzer-no-link -MMD -MP
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=$(FB)/%)
FUZZ_DAEMON := $(addprefix $(FB)/httpd/,multipart.o parse.o body.o)

$(FB)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CLANG   $<"
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(CORE_CPPFLAGS) $(FUZZ_CFLAGS) -c -o $@ $<

$(FB)/core/db_pg.o $(FB)/core/db_pg_%.o: CPPFLAGS += $(PQ_CFLAGS)

$(FB)/core-objs: FORCE
	@mkdir -p $(dir $@)
	@echo '$(CORE_SRC)' | cmp -s - $@ || echo '$(CORE_SRC)' > $@

$(FB)/libspeechfs.a: $(CORE_SRC:%.c=$(FB)/%.o) $(FB)/core-objs
	@rm -f $@
	@echo "  AR      $@"
	$(Q)ar rcs $@ $(CORE_SRC:%.c=$(FB)/%.o)

$(FB)/fuzz_%: $(FB)/tests/fuzz/fuzz_%.o $(FUZZ_DAEMON) \
		$(FB)/tests/fuzz/common.o $(FB)/tests/unit/fixture.o \
		$(FB)/libspeechfs.a
	@echo "  LINK    $@"
	$(Q)$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -pthread -o $@ $^ \
		$(CORE_LIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: deps
	$(MAKE) fuzz-build
	$(PYTHON) tests/fuzz/run.py --build $(abspath $(FB)) \
		--seconds $(FUZZ_SECS)

deps:
	@./packaging/install-deps.sh

# The one test command: C unit binaries and end-to-end tests, all through
# pytest, ending with one "N passed, M failed" line.
test: deps
	$(MAKE) all fuzz-build
	SFS_FUZZ_BUILD=$(abspath $(FB)) SFS_BUILD=$(abspath $(B)) $(PYTHON) -m pytest -q -p no:cacheprovider tests

unit: deps
	$(MAKE) all
	SFS_BUILD=$(abspath $(B)) $(PYTHON) -m pytest -q -p no:cacheprovider tests/test_unit.py

asan:
	$(MAKE) SAN=1 test

# The unit tests (and the daemons they start) under ThreadSanitizer: a
# data race fails the binary that met it. Then the mount's threads (the
# request loop's reading thread and workers, the poller, a remote store's
# fetchers and feed) and the daemon's, in a few end-to-end tests (with
# the integrity tests' readers of one descriptor and writers): each
# report goes to a file of build-tsan/tsan-logs, and the e2e conftest
# fails the test that made it (no_tsan_report). tests/tsan.supp would
# name a library's benign report (none today).
TSAN_E2E  := tests/e2e/test_fs_remote_stall.py tests/e2e/test_fs_stall_more.py \
	     tests/e2e/test_fs_basic.py tests/e2e/test_fs_remote.py \
	     tests/e2e/test_fs_remote_integrity.py
TSAN_RUN  := suppressions=$(abspath tests/tsan.supp) halt_on_error=0 exitcode=66
tsan: deps
	$(MAKE) SAN=thread all
	TSAN_OPTIONS="$(TSAN_RUN) $(TSAN_OPTIONS)" \
	SFS_BUILD=$(abspath build-tsan) $(PYTHON) -m pytest -q -p no:cacheprovider tests/test_unit.py
	rm -rf build-tsan/tsan-logs && mkdir -p build-tsan/tsan-logs
	TSAN_OPTIONS="$(TSAN_RUN) log_path=$(abspath build-tsan/tsan-logs)/report $(TSAN_OPTIONS)" \
	SFS_TSAN_LOGS=$(abspath build-tsan/tsan-logs) SFS_BUILD=$(abspath build-tsan) \
	$(PYTHON) -m pytest -q -p no:cacheprovider $(TSAN_E2E)

# The core's unit tests under valgrind: no errors, no definite leaks.
valgrind: deps
	$(MAKE) all
	SFS_VALGRIND=1 SFS_BUILD=$(abspath $(B)) $(PYTHON) -m pytest -q -p no:cacheprovider tests/test_unit.py

bench: deps
	$(MAKE) all
	SFS_BUILD=$(abspath $(B)) $(PYTHON) tests/bench/run.py

install: $(LIB) $(BINS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin
	$(if $(filter $(B)/speechfs,$(BINS)),install -m 755 $(B)/speechfs $(DESTDIR)$(PREFIX)/bin/speechfs)
	$(if $(filter $(B)/speechfsd,$(BINS)),install -m 755 $(B)/speechfsd $(DESTDIR)$(PREFIX)/sbin/speechfsd)
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 644 packaging/man/speechfs.1 $(DESTDIR)$(PREFIX)/share/man/man1/speechfs.1
	install -m 644 packaging/man/speechfsd.8 $(DESTDIR)$(PREFIX)/share/man/man8/speechfsd.8
	install -d $(DESTDIR)$(PREFIX)/share/speechfs/www/js
	install -m 644 www/index.html www/style.css www/favicon.svg $(DESTDIR)$(PREFIX)/share/speechfs/www/
	install -m 644 www/js/*.js $(DESTDIR)$(PREFIX)/share/speechfs/www/js/

# The Debian package, built from a copy of the tree (packaging/debian as
# ./debian) by dpkg-buildpackage; the .deb lands in $(B)/.
deb: deps
	B=$(B) ./packaging/debian/build-deb.sh

# A demo store under ./var, the daemon on 127.0.0.1:8080, the mount at ./mnt.
run: deps
	$(MAKE) all
	B=$(B) ./packaging/run-demo.sh

# Every C source; tests/test_tree.py runs the same check in `make test`.
FORMAT_SRC = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
check-format:
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf build build-asan build-tsan build-fuzz

-include $(shell find $(B) $(FB) -name '*.d' 2>/dev/null)
