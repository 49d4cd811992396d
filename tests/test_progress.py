"""Progress lines: counts, percentages and ETAs."""

from __future__ import annotations

import io

from segnas.progress import Progress


def test_line_counts_and_estimates_the_rest_from_the_rate():
    stream = io.StringIO()
    progress = Progress("job", total=4, interval=0.0, stream=stream)
    progress.update(extra="loss 1.0")
    line = stream.getvalue().strip()
    assert line.startswith("[job] 1/4 (25%) elapsed ") and line.endswith("loss 1.0")
    assert "ETA -" not in line


def test_given_eta_replaces_the_count_estimate():
    stream = io.StringIO()
    progress = Progress("train", total=1000, interval=0.0, stream=stream)
    progress.update(eta_s=125.4)
    assert "1/1000 (0%)" in stream.getvalue() and "ETA 2m05s" in stream.getvalue()
    progress.update(eta_s=-3.0, force=True)
    assert stream.getvalue().strip().splitlines()[-1].endswith("ETA 0m00s")


def test_finished_work_has_no_eta():
    stream = io.StringIO()
    progress = Progress("done", total=1, interval=60.0, stream=stream)
    progress.update()
    assert "1/1 (100%)" in stream.getvalue() and "ETA -" in stream.getvalue()
