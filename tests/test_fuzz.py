"""The libFuzzer targets of tests/fuzz/ (built by `make fuzz-build`, which
`make test` runs) under ASan and UBSan, two at a time: each replays its
seed corpus, then fuzzes a fixed number of inputs from a fixed seed, so a
run is the same for one build (about 8 s a target on an idle machine;
RUNS below). No crash, no sanitizer report, no leak, and each executed
inputs and reached code. `make fuzz` fuzzes for a time instead
(FUZZ_SECS), for finding new faults rather than guarding old ones."""
import concurrent.futures
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fuzz"))
import run as fuzz  # noqa: E402

BUILD = pathlib.Path(os.environ.get("SFS_FUZZ_BUILD", ROOT / "build-fuzz"))
# inputs per target: its rate under the sanitizers differs a hundredfold
# (the header parsers alone vs a store's create and delete per input)
RUNS = {
    "fuzz_headers": 300000,
    "fuzz_json": 12000,
    "fuzz_jwt": 80000,
    "fuzz_multipart": 80000,
    "fuzz_query": 30000,
    "fuzz_uri": 4000,
    "fuzz_vpath": 120000,
    "fuzz_xattr": 16000,
}
BOUND = 180  # seconds, a bound on a slow machine: never reached idle
NAMES = sorted(p.stem for p in (ROOT / "tests" / "fuzz").glob("fuzz_*.c"))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Every target run once, two at a time; {name: result}."""
    missing = [n for n in NAMES if not (BUILD / n).is_file()]
    assert not missing, "not built (make fuzz-build): %s" % missing
    keep = tmp_path_factory.mktemp("fuzz-crashes")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futs = {n: pool.submit(fuzz.run_one, str(BUILD), n, BOUND,
                               str(keep), RUNS[n]) for n in NAMES}
        return {n: f.result() for n, f in futs.items()}


def test_every_target_has_a_run_count():
    assert sorted(RUNS) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_fuzz_target(results, name):
    rc, execs, cov, crashes, tail = results[name]
    assert rc == 0 and not crashes, "%s exit %d, inputs %s:\n%s" % (
        name, rc, crashes, tail)
    assert execs > 1000, (name, execs)
    assert cov > 50, (name, cov)


def test_every_target_has_a_seed_corpus():
    for n in NAMES:
        seeds = list((ROOT / "tests/fuzz/corpus" / n[len("fuzz_"):])
                     .iterdir())
        assert len(seeds) >= 3, n
