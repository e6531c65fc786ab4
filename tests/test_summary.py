"""The README's first command: ``dispatch summary`` on the bundled dataset."""

from __future__ import annotations

import io
import re
import subprocess
import sys

from dispatch.__main__ import DEFAULT_DATASET
from dispatch.summary import print_summary


def test_summary_prints_dataset_and_a_coverage_table_that_grows_with_the_ring() -> None:
    out = io.StringIO()
    print_summary(DEFAULT_DATASET, out=out)
    text = out.getvalue()
    assert "population 513,400" in text
    assert "13,556 volunteers" in text
    assert "208 minimum emergency units" in text
    county = re.findall(r"^  county\s+([\d.]+)%\s+([\d.]+)%\s+([\d.]+)%$", text, re.M)
    assert len(county) == 2, text  # k = 1 and k = 3
    for row in county:
        shares = [float(x) for x in row]
        assert shares == sorted(shares), "a wider ring cannot cover less"
        assert 0 < shares[0] <= 100
    k1, k3 = ([float(x) for x in row] for row in county)
    assert all(a >= b for a, b in zip(k1, k3, strict=True)), "k = 3 cannot cover more than k = 1"


def test_console_entry_point_runs_the_summary() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dispatch", "summary"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Coverage, Monday 20:00" in done.stdout
