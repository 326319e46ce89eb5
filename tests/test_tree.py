"""Checks of the source tree itself: every C source is formatted with the
repository's .clang-format (the generated OpenAPI document aside)."""
import subprocess

from conftest import ROOT

GENERATED = {"httpd/openapi_doc.c"}


def c_sources():
    out = subprocess.run(["git", "ls-files", "*.c", "*.h"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [f for f in out.split() if f not in GENERATED]


def test_sources_are_formatted():
    files = c_sources()
    assert files, "git ls-files found no C sources"
    r = subprocess.run(["clang-format", "--dry-run", "--Werror", *files],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, \
        "run 'clang-format -i' on these:\n" + r.stderr[-3000:]
