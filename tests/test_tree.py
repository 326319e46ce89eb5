"""Checks of the source tree itself: every C source is formatted with the
repository's .clang-format; the front ends include only the public API;
the library exports only prefixed symbols."""
import re
import subprocess

from conftest import BUILD, ROOT


def c_sources():
    out = subprocess.run(["git", "ls-files", "*.c", "*.h"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def test_sources_are_formatted():
    files = c_sources()
    assert files, "git ls-files found no C sources"
    r = subprocess.run(["clang-format", "--dry-run", "--Werror", *files],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, \
        "run 'clang-format -i' on these:\n" + r.stderr[-3000:]


def test_front_ends_include_only_the_public_api():
    """fs/ and httpd/ include the system's headers, their own, and
    include/speechfs/ — never a header of core/."""
    bad = []
    for d in ("fs", "httpd"):
        allowed = {h.name for h in (ROOT / d).glob("*.h")}
        for f in sorted((ROOT / d).glob("*.[ch]")):
            for n, line in enumerate(f.read_text().splitlines(), 1):
                m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                if m and m.group(1) not in allowed and \
                        not m.group(1).startswith("speechfs/"):
                    bad.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not bad, "front ends may include only speechfs/*.h:\n" + \
        "\n".join(bad)


def test_only_the_database_layer_includes_sqlite():
    """SQLite is the database layer's (core/db.c: connections and
    statements, core/db_txn.c: transactions, core/db_batch.c: batched
    commits, core/db_vfs.c: its files) and core/schema.c's (the schema and its migrations): every
    other module goes through core/db_i.h."""
    allowed = {"core/db.c", "core/db_txn.c", "core/db_batch.c",
               "core/db_vfs.c", "core/schema.c"}
    found = set()
    for d in ("core", "fs", "httpd", "include"):
        for f in sorted((ROOT / d).rglob("*.[ch]")):
            if re.search(r'^\s*#\s*include\s*<sqlite3\.h>',
                         f.read_text(), re.M):
                found.add(str(f.relative_to(ROOT)))
    assert found == allowed, "sqlite3.h included by: " + \
        " ".join(sorted(found))


def test_library_exports_only_prefixed_symbols():
    """Every global symbol libspeechfs.a defines is public (sfs_, declared
    in include/speechfs/) or internal (sfsi_): nothing pollutes the
    namespace of a program that links the library."""
    lib = BUILD / "libspeechfs.a"
    assert lib.is_file(), f"{lib} is not built"
    out = subprocess.run(["nm", "-g", "--defined-only", str(lib)],
                         capture_output=True, text=True, check=True).stdout
    # a sanitizer build adds symbols of its own (__odr_asan.NAME)
    syms = {f[2] for f in (l.split() for l in out.splitlines())
            if len(f) == 3 and not f[2].startswith("__odr_asan")}
    assert syms, "nm listed no symbols"
    headers = "\n".join(p.read_text()
                        for p in (ROOT / "include" / "speechfs").glob("*.h"))
    declared = set(re.findall(r"\b(sfs_\w+)\b", headers))
    bad = sorted(s for s in syms if not s.startswith("sfsi_") and
                 not (s.startswith("sfs_") and s in declared))
    assert not bad, "exported but neither public nor sfsi_: " + \
        " ".join(bad)


def test_no_build_outputs_are_tracked():
    """Binaries, objects and run-time data never enter the repository."""
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    bad = [f for f in out
           if re.match(r"(build[^/]*|var|mnt)/", f)
           or re.search(r"\.(o|a|so|d)$", f)]
    assert not bad, "tracked build outputs: " + " ".join(bad[:20])
