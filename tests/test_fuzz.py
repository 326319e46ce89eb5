"""The libFuzzer targets of tests/fuzz/ (built by `make fuzz-build`, which
`make test` runs) under ASan and UBSan, two at a time: each replays its
seed corpus, then fuzzes a fixed number of inputs from a fixed seed, so a
run is the same for one build: about 20-25 s a target on an idle machine
(RUNS below, measured as CPU time), about 90 s for all eight. On a busy
machine a target stops at BOUND seconds instead, having run fewer of the
same inputs. No crash, no sanitizer report, no leak, and each executed
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
    "fuzz_headers": 1600000,
    "fuzz_json": 150000,
    "fuzz_jwt": 550000,
    "fuzz_multipart": 600000,
    "fuzz_query": 170000,
    "fuzz_uri": 44000,
    "fuzz_vpath": 1600000,
    "fuzz_xattr": 150000,
}
# seconds, a bound on a loaded machine (then fewer inputs run): a target
# took 17-26 s of CPU for its RUNS (measured at load 25-38, 2026-12-03)
BOUND = 60
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
