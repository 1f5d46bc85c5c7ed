"""python -m sparsekernels.bench.across: targets of several harness runs side by side, with the median and
how many runs met each, from rows marked by marks.evaluate as the harness marks them."""

from __future__ import annotations

import json

import pytest

from sparsekernels.bench import across, marks
from sparsekernels.bench.suites import Target

CEIL = {"copy_GBps": 10.0, "matmul_TFLOPs": 0.1, "matmul_dtype": "float32"}
DENSE2 = Target("torch_dense", 2.0)
BW = Target("copy_bw", 0.7)


def _row(case: str, speedup: float | None, bw: float | None, check: str = "ok", threads: int = 2) -> dict:
    # report.check: an fp32 row with an error inside the bound is ok; one without "err" did not run
    row = {"suite": "targets", "case": case, "threads": threads, "dtype": "float32",
           "baselines": {} if speedup is None else {"torch_dense": {"speedup": speedup}},
           "bw_frac": bw, "intensity": 0.5}
    if check == "failed":
        row["error"] = "RuntimeError: boom"
    else:
        row["err"] = 0.0
    row["targets"] = marks.evaluate(row, [DENSE2, BW], CEIL)
    return row


def _write_run(path, rows, commit):
    path.mkdir()
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "meta.json").write_text(json.dumps({"suite": "targets", "commit": commit, "date": "d",
                                                "ceilings": CEIL}))
    return path


@pytest.fixture
def three_runs(tmp_path):
    a = _write_run(tmp_path / "a", [_row("x", 2.5, 0.65), _row("y", 1.5, None), _row("z", None, 0.9, "failed")],
                   "aaa")
    b = _write_run(tmp_path / "b", [_row("x", 1.9, 0.75), _row("y", 2.1, None), _row("z", None, 0.9, "failed")],
                   "bbb")
    c = _write_run(tmp_path / "c", [_row("x", 2.2, 0.72), _row("z", None, 0.9, "failed")], "ccc")  # no row y
    return [a, b, c]


def _entry(entries, case, target):
    (e,) = [e for e in entries if e["case"] == case and e["target"] == target]
    return e


def test_medians_marks_and_counts(three_runs):
    from sparsekernels.bench import compare

    entries = [across.summarize(e) for e in across.collect([compare.load(r) for r in three_runs])]
    x = _entry(entries, "x", DENSE2.text)
    assert x["got"] == [2.5, 1.9, 2.2] and x["median"] == pytest.approx(2.2)
    assert x["mark"] == marks.MET and x["met_in"] == (2, 3)
    xb = _entry(entries, "x", BW.text)
    assert xb["median"] == pytest.approx(0.72) and xb["mark"] == marks.MET and xb["met_in"] == (2, 3)
    # y: missing from run c, its bandwidth never measured
    y = _entry(entries, "y", DENSE2.text)
    assert y["got"] == [1.5, 2.1, None] and y["median"] == pytest.approx(1.8)
    assert y["mark"] == marks.NOT_MET and y["met_in"] == (1, 2)
    assert _entry(entries, "y", BW.text)["mark"] == marks.NA
    # z: ours failed in every run: not met, never n/a, though no value was measured
    for t in (DENSE2.text, BW.text):
        z = _entry(entries, "z", t)
        assert z["median"] is None and z["mark"] == marks.NOT_MET and z["met_in"] == (0, 3)


def test_median_below_the_need_is_not_met_even_if_one_run_met(tmp_path):
    from sparsekernels.bench import compare

    runs = [_write_run(tmp_path / f"r{i}", [_row("x", s, None)], str(i)) for i, s in enumerate([2.4, 1.6, 1.7])]
    (e,) = [across.summarize(e) for e in across.collect([compare.load(r) for r in runs])
            if e["target"] == DENSE2.text]
    assert e["median"] == pytest.approx(1.7) and e["mark"] == marks.NOT_MET and e["met_in"] == (1, 3)


def test_rows_match_by_thread_count_too(tmp_path):
    from sparsekernels.bench import compare

    r1 = _write_run(tmp_path / "r1", [_row("x", 2.5, None, threads=1), _row("x", 1.0, None, threads=2)], "1")
    r2 = _write_run(tmp_path / "r2", [_row("x", 2.7, None, threads=1), _row("x", 1.2, None, threads=2)], "2")
    entries = [across.summarize(e) for e in across.collect([compare.load(r) for r in (r1, r2)])
               if e["target"] == DENSE2.text]
    assert sorted((e["threads"], e["median"]) for e in entries) == [(1, pytest.approx(2.6)), (2, pytest.approx(1.1))]


def test_cli_writes_the_table(three_runs, tmp_path, capsys):
    out = tmp_path / "across.md"
    assert across.main([str(r) for r in three_runs] + ["--out", str(out)]) == 0
    text = out.read_text()
    assert "# Targets across 3 runs" in text and "commit aaa" in text and "commit ccc" in text
    assert "| x | 2 | >= 2x torch_dense | 2.50x | 1.90x | 2.20x | 2.20x | met | 2 of 3 |" in text
    assert "| x | 2 | >= 70% copy bw | 65% | 75% | 72% | 72% | met | 2 of 3 |" in text
    assert "| y | 2 | >= 2x torch_dense | 1.50x | 2.10x | - | 1.80x | **not met** | 1 of 2 |" in text
    assert "By the median: **2 met / 3 not met / 1 n/a**" in text
    assert across.main([str(three_runs[0])]) == 0  # to stdout
    assert "# Targets across 1 runs" in capsys.readouterr().out


def test_cli_rejects_missing_runs_and_runs_without_targets(tmp_path, capsys):
    with pytest.raises(SystemExit):
        across.main([str(tmp_path / "nowhere")])
    assert "no results.jsonl" in capsys.readouterr().err
    plain = _write_run(tmp_path / "plain", [{"suite": "quick", "case": "x", "threads": 2}], "p")
    with pytest.raises(SystemExit):
        across.main([str(plain)])
    assert "no row of these runs has targets" in capsys.readouterr().err
