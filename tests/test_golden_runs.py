"""The fixed short runs of ``benchmarks/golden_runs.py`` still give their recorded metrics.csv (pytest -m slow: about
six minutes of compiling on two cores)."""
import pytest

from benchmarks import golden_runs


@pytest.mark.slow
@pytest.mark.parametrize("name", list(golden_runs.RUNS))
def test_golden_run_unchanged(name):
    assert golden_runs.main(["--check", "--only", name]) == 0
