"""The benchmark harness end to end on tiny inputs: outputs, --compare, WRONG marking, failing baselines,
the spgemm and dlmc suites and their generators."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from sparsekernels.bench import __main__ as bench_main
from sparsekernels.bench import compare, dlmc, graphs, report, runner, suites
from sparsekernels.bench.suites import Case, SpGEMMCase

FAST = ["--device", "cpu", "--min-time", "0.005", "--max-time", "0.02"]
PNG = b"\x89PNG\r\n\x1a\n"


def _tiny_spmm(device):  # noqa: ARG001
    return [Case(64, 96, 8, "csr", 0.7), Case(64, 96, 8, "bitmap", 0.5), Case(64, 96, 8, "sparse24", 0.5),
            Case(64, 96, 8, "bsr", 0.5, blocksize=(16, 16)), Case(64, 96, 8, "bitmap", 0.7, torch.bfloat16)]


def _tiny_spgemm(device):  # noqa: ARG001
    return [SpGEMMCase("rmat", 7, "AA", threads=1), SpGEMMCase("powerlaw", 7, "AAT", threads=0),
            SpGEMMCase("pruned", 6, "AB", sparsity=0.9)]


FAKE_CEILINGS = {"copy_GBps": 10.0, "matmul_TFLOPs": 0.1, "matmul_dtype": "float32"}


@pytest.fixture(scope="module")
def registered():
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(suites.SUITES, "tiny", _tiny_spmm)
        mp.setitem(suites.SUITES, "tinygemm", _tiny_spgemm)
        yield


@pytest.fixture
def tiny(registered, monkeypatch):
    """The tiny suites, with the ceilings measurement (tested once, in tiny_run) replaced by constants."""
    monkeypatch.setattr(bench_main.timing, "measure_ceilings", lambda device: dict(FAKE_CEILINGS))


def _rows(out):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def tiny_run(registered, tmp_path_factory):
    """One real end-to-end run (ceilings measured) of the tiny SpMM suite, shared by the tests that read it."""
    out = tmp_path_factory.mktemp("bench") / "run"
    assert bench_main.main(["--suite", "tiny", "--out", str(out), *FAST]) == 0
    return out


def test_end_to_end_writes_everything(tiny_run):
    rows = _rows(tiny_run)
    assert [r["case"] for r in rows] == [c.label for c in _tiny_spmm("cpu")]
    for r in rows:
        assert r["check"] == "ok" and r["t_us"] > 0 and r["err"] <= 1e-2
        assert r["wall_s"] > 0 and "load1" in r
        assert {"GBps", "TFLOPs", "bw_frac", "flop_frac", "intensity", "threads"} <= set(r)
        assert {"torch_dense", "torch_csr", "scipy"} <= set(r["baselines"])
        for b in r["baselines"].values():
            assert ("speedup" in b and b["t_us"] > 0) or "error" in b
    bsr = rows[3]
    assert "torch_bsr" in bsr["baselines"]
    bf16 = rows[4]  # scipy has no bfloat16: reported as failed in the row, not dropped
    assert "error" in bf16["baselines"]["scipy"] and "bfloat16" in bf16["baselines"]["scipy"]["error"]
    md = (tiny_run / "report.md").read_text()
    assert "| case |" in md and "Failed measurements" in md and "![speedup](speedup.png)" in md
    for png in ("speedup.png", "roofline.png"):
        assert (tiny_run / png).read_bytes()[:8] == PNG
    meta = json.loads((tiny_run / "meta.json").read_text())
    assert meta["ceilings"]["copy_GBps"] > 0 and meta["threads"] >= 1
    assert meta["wall_s"] > 0 and "load1_start" in meta and "load1_end" in meta and "load average" in md
    assert not (tiny_run / "results.partial.jsonl").exists()  # removed once the outputs are written


def test_a_run_stopped_early_leaves_its_finished_rows(tiny, tmp_path, monkeypatch):
    """A run killed partway (a time limit) leaves the rows it finished in results.partial.jsonl."""
    real, calls = runner.run_case, []

    def stop_at_third(case, device, ceilings):
        calls.append(case)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(case, device, ceilings)

    monkeypatch.setattr(runner, "run_case", stop_at_third)
    with pytest.raises(KeyboardInterrupt):
        bench_main.main(["--suite", "tiny", "--out", str(tmp_path), "--no-plots", *FAST])
    done = [json.loads(line) for line in (tmp_path / "results.partial.jsonl").read_text().splitlines()]
    assert [r["case"] for r in done] == [c.label for c in _tiny_spmm("cpu")[:2]]
    assert all(r["t_us"] > 0 for r in done)


def test_compare_flags_regression(tiny, tiny_run, tmp_path):
    old = _rows(tiny_run)
    old[0]["t_us"] /= 1000  # the old run was far faster on row 0: a regression now
    old[1]["t_us"] *= 1000  # row 1 got faster (factors far beyond timing noise)
    old_file = tmp_path / "old.jsonl"
    old_file.write_text("".join(json.dumps(r) + "\n" for r in old))
    out = tmp_path / "new"
    assert bench_main.main(["--suite", "tiny", "--out", str(out), "--compare", str(old_file), "--no-plots",
                            *FAST]) == 0
    rows = _rows(out)
    assert rows[0]["compare"]["regression"] and rows[0]["compare"]["status"] == "slower"
    assert not rows[1]["compare"]["regression"] and rows[1]["compare"]["status"] == "faster"
    md = (out / "report.md").read_text()
    assert "REGRESSION" in md and "## Regressions" in md and rows[0]["case"] in md.split("## Regressions")[1]
    # the exit status changes only with --fail-on-regression
    assert bench_main.main(["--suite", "tiny", "--limit", "1", "--out", str(tmp_path / "n2"), "--compare",
                            str(old_file), "--fail-on-regression", "--no-plots", *FAST]) == 2


def test_compare_ok_to_wrong_is_a_regression():
    old = [{"suite": "s", "case": "a", "t_us": 10.0, "check": "ok"},
           {"suite": "s", "case": "b", "t_us": 10.0, "check": "ok"}]
    new = [{"suite": "s", "case": "a", "t_us": 10.5, "err": 1.0, "dtype": "float32", "baselines": {}},
           {"suite": "s", "case": "b", "t_us": 10.5, "err": 0.0, "dtype": "float32", "baselines": {}},
           {"suite": "s", "case": "c", "t_us": 1.0, "err": 0.0, "dtype": "float32", "baselines": {}}]
    summary = compare.annotate(new, old, {})
    assert summary == {"matched": 2, "new": 1, "regressions": 1}
    assert new[0]["compare"]["regression"] and "WRONG" in new[0]["compare"]["reason"]
    assert not new[1]["compare"]["regression"]  # 5 % slower: within the threshold
    assert new[2]["compare"]["status"] == "new"
    assert report.compare_cell(new[0]).startswith("REGRESSION")


def test_compare_reads_a_directory_and_rejects_missing(tiny_run, tmp_path):
    rows, meta = compare.load(tiny_run)
    assert len(rows) == 5 and meta["suite"] == "tiny"
    with pytest.raises(SystemExit):
        bench_main.main(["--suite", "tiny", "--out", str(tmp_path / "x"), "--compare", str(tmp_path / "nope")])


def test_wrong_kernel_result_is_marked(tiny, tmp_path, monkeypatch, capsys):
    real = runner.ours_spmm
    monkeypatch.setattr(runner, "ours_spmm", lambda a, b: real(a, b) * 1.001)
    out = tmp_path / "wrong"
    assert bench_main.main(["--suite", "tiny", "--limit", "2", "--out", str(out), "--no-plots", *FAST]) == 1
    rows = _rows(out)
    assert [r["check"] for r in rows] == ["WRONG", "WRONG"]
    assert "WRONG" in (out / "report.md").read_text()
    assert "exceed the error bound" in capsys.readouterr().err


def test_failing_baseline_is_reported(tiny, tmp_path, monkeypatch):
    real = runner._spmm_baselines

    def with_broken(case, device):
        out = real(case, device)

        def broken(w, b):
            def fn():
                raise RuntimeError("baseline exploded")

            return fn, 0

        out["broken"] = broken
        return out

    monkeypatch.setattr(runner, "_spmm_baselines", with_broken)
    out = tmp_path / "broken"
    assert bench_main.main(["--suite", "tiny", "--limit", "1", "--out", str(out), "--no-plots", *FAST]) == 0
    row = _rows(out)[0]
    assert row["baselines"]["broken"] == {"error": "RuntimeError: baseline exploded"}
    assert row["check"] == "ok"
    md = (out / "report.md").read_text()
    assert "vs broken" in md and "broken: RuntimeError: baseline exploded" in md


def test_spgemm_suite_tiny(tiny, tmp_path):
    out = tmp_path / "gemm"
    assert bench_main.main(["--suite", "tinygemm", "--out", str(out), *FAST]) == 0
    rows = _rows(out)
    assert len(rows) == 3
    for r in rows:
        assert r["op"] == "spgemm" and r["check"] == "ok" and r["pattern_ok"]
        assert r["nnz_out"] == r["nnz_c"] and r["partial_products"] > 0 and r["TFLOPs"] > 0
        assert set(r["baselines"]) == {"torch_csr", "scipy"}
        for b in r["baselines"].values():
            assert "error" in b or (b.get("pattern_ok") and b["err"] <= 1e-5)
    assert rows[0]["threads"] == 1 and rows[1]["threads"] == runner.ALL_THREADS
    assert (out / "spgemm_speedup.png").read_bytes()[:8] == PNG


def test_spgemm_wrong_pattern_is_marked(tiny, tmp_path, monkeypatch):
    import sparsekernels as sk

    def drop_last(a, b):
        c = sk.spgemm(a, b)
        rp = c.row_ptr.clamp(max=int(c.row_ptr[-1]) - 1)  # the last stored entry disappears (still valid CSR)
        return sk.CSRTensor(tuple(c.shape), (rp, c.col_idx[:-1].clone(), c.values[:-1].clone()))

    monkeypatch.setattr(runner, "ours_spgemm", drop_last)
    out = tmp_path / "gw"
    assert bench_main.main(["--suite", "tinygemm", "--limit", "1", "--out", str(out), "--no-plots", *FAST]) == 1
    row = _rows(out)[0]
    assert row["pattern_ok"] is False and row["check"] == "WRONG" and "invalid" not in row


def test_spgemm_malformed_output_is_wrong_not_a_crash():
    import scipy.sparse

    ref = scipy.sparse.csr_array(np.eye(3))
    bad = scipy.sparse.csr_array((np.ones(2), np.array([0, 1]), np.array([0, 2, 1, 2])), shape=(3, 3))
    res = runner._spgemm_check(bad, ref, False)
    assert res["pattern_ok"] is False and res["err"] == float("inf") and "invalid" in res


def test_attention_suite_has_no_rows_and_does_not_fail(tiny, tmp_path, capsys):
    out = tmp_path / "att"
    assert bench_main.main(["--suite", "attention", "--out", str(out), *FAST]) == 0
    assert "no attention kernel yet" in capsys.readouterr().err
    assert (out / "results.jsonl").read_text() == ""
    assert "no attention kernel yet" in (out / "report.md").read_text()


def test_suite_all_runs_every_suite(tiny, monkeypatch, tmp_path):
    monkeypatch.setattr(bench_main, "ALL", ("tiny", "tinygemm", "attention"))
    out = tmp_path / "all"
    assert bench_main.main(["--suite", "all", "--limit", "1", "--out", str(out), "--no-plots", *FAST]) == 0
    assert [r["suite"] for r in _rows(out)] == ["tiny", "tinygemm"]
    assert "## tinygemm" in (out / "report.md").read_text()
    # every real suite is part of `all` and builds its case list
    assert set(suites.ALL) == {"quick", "decode", "prefill", "dlmc", "spgemm", "sddmm", "minilm", "attention",
                               "targets"}
    for name in suites.ALL:
        labels = [c.label for c in suites.SUITES[name]("cpu")]
        assert len(labels) == len(set(labels)), f"duplicate labels in {name}"


def test_rmat_generator():
    a = graphs.rmat(10, 8, seed=3)
    b = graphs.rmat(10, 8, seed=3)
    assert a.shape == (1024, 1024) and 0 < a.nnz <= 8 * 1024
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data)  # seeded
    assert not np.array_equal(graphs.rmat(10, 8, seed=4).indices[:100], a.indices[:100])
    assert a.has_canonical_format and a.indices.dtype == np.int32
    lens = np.diff(a.indptr)
    assert lens.max() > 8 * lens.mean()  # skewed degrees
    # without the permutation, a = 0.57 puts most edges in the top-left quadrant
    u = graphs.rmat(10, 8, seed=0, permute=False).tocoo()
    top_left = np.mean((u.row < 512) & (u.col < 512))
    assert 0.45 < top_left < 0.7
    with pytest.raises(ValueError):
        graphs.rmat(4, 2, probs=(0.5, 0.5, 0.5, 0.5))


def test_powerlaw_and_partial_products():
    a = graphs.powerlaw(9, 4, seed=1)
    assert a.shape == (512, 512) and a.has_canonical_format
    lens = np.diff(a.indptr)
    assert lens.max() > 5 * lens.mean()
    dense = (a.toarray() != 0).astype(np.int64)
    assert graphs.partial_products(a, a) == int((dense.sum(0) * dense.sum(1)).sum())


def _write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def test_dlmc_reads_weights_and_matches_row_lengths(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    w_q = rng.standard_normal((384, 384)) * np.linspace(0.1, 2, 384)[:, None]  # uneven rows
    w_i = rng.standard_normal((1536, 384))
    _write_safetensors(tmp_path / "model.safetensors", {
        "encoder.layer.0.attention.self.query.weight": w_q, "encoder.layer.0.intermediate.dense.weight": w_i,
        "encoder.layer.0.intermediate.dense.bias": w_i[0]})
    monkeypatch.setenv(dlmc.ENV, str(tmp_path))
    for f in (dlmc.minilm_linear_weights, dlmc.row_density_pool, dlmc.synthetic_weight):
        f.cache_clear()
    try:
        ws = dlmc.minilm_linear_weights()
        assert set(ws) == {"encoder.layer.0.attention.self.query", "encoder.layer.0.intermediate.dense"}
        assert torch.equal(ws["encoder.layer.0.attention.self.query"], torch.from_numpy(w_q.astype(np.float32)))
        pool = dlmc.row_density_pool(0.9)
        assert pool.size == 384 + 1536 and abs(pool.mean() - 0.1) < 1e-3
        s = dlmc.synthetic_weight(200, 1000, 0.9, seed=1)
        row_nnz = (s != 0).sum(1).numpy()
        assert set(row_nnz.tolist()) <= set(np.rint(pool * 1000).astype(int).tolist())
        assert abs(row_nnz.mean() / 1000 - 0.1) < 0.03
        row = runner.run_case(Case(384, 384, 8, "csr", 0.9, source="minilm:encoder.layer.0.attention.self.query"),
                              "cpu", {"copy_GBps": 1.0, "matmul_TFLOPs": 1.0})
        assert report.check(row) == "ok" and row["nnz"] == round(0.1 * 384 * 384) and row["row_nnz_cv"] > 0.1
    finally:
        for f in (dlmc.minilm_linear_weights, dlmc.row_density_pool, dlmc.synthetic_weight):
            f.cache_clear()


def test_dlmc_without_weights_says_so_in_its_rows(tmp_path, monkeypatch):
    monkeypatch.setenv(dlmc.ENV, str(tmp_path / "missing"))
    dlmc.minilm_linear_weights.cache_clear()
    dlmc.row_density_pool.cache_clear()
    dlmc.synthetic_weight.cache_clear()
    try:
        cases = suites.dlmc("cpu")
        assert any(c.source == "minilm-rows" for c in cases) and any(c.source.startswith("minilm:") for c in cases)
        for case in (cases[0], next(c for c in cases if c.source == "minilm-rows")):
            row = runner.run_case(case, "cpu", {"copy_GBps": 1.0, "matmul_TFLOPs": 1.0})
            assert "MiniLM" in row["error"] and report.check(row) == "failed"
    finally:
        dlmc.minilm_linear_weights.cache_clear()


def test_cuda_rotation_count():
    from sparsekernels.bench import timing

    l2 = 50 * 2**20
    assert timing.copies_needed(10 * 2**20, l2) == 11  # 11 x 10 MiB > 2 x 50 MiB
    assert timing.copies_needed(300 * 2**20, l2) == 2
    assert timing.copies_needed(1, l2) == timing.MAX_COPIES


def test_model_suite_rows_and_missing_package(tiny, monkeypatch, tmp_path):
    """A whole-model suite contributes its finished rows; a missing weights package becomes a note, not a crash."""
    row = {"case": "model x", "format": "csr", "dtype": "float32", "err": 0.0, "t_us": 5.0,
           "baselines": {"torch_dense": {"t_us": 10.0, "speedup": 2.0, "err": 0.0}}}

    class Ok:
        label = "ok model"

        def rows(self, device):
            return [dict(row)]

    class Missing:
        label = "missing model"

        def rows(self, device):
            raise ImportError("no weights package")

    monkeypatch.setitem(suites.SUITES, "models", lambda device: [Ok(), Missing()])
    out = tmp_path / "models"
    assert bench_main.main(["--suite", "models", "--out", str(out), "--no-plots", *FAST]) == 0
    rows = _rows(out)
    assert [r["case"] for r in rows] == ["model x"] and rows[0]["suite"] == "models"
    meta = json.loads((out / "meta.json").read_text())
    assert any("no weights package" in n for n in meta["notes"])


# ------------------------------------------------------------------------------- SDDMM rows, targets, marks
from sparsekernels.bench import marks  # noqa: E402
from sparsekernels.bench.suites import SDDMMCase, Target, ThreadScalingCase  # noqa: E402


def _tiny_sddmm(device):  # noqa: ARG001
    return [SDDMMCase(64, 80, 16, "csr", 0.9), SDDMMCase(33, 47, 7, "csr", 0.7, torch.bfloat16),
            SDDMMCase(64, 96, 8, "bsr", 0.5, blocksize=(16, 16)), SDDMMCase(64, 96, 8, "bitmap", 0.8),
            SDDMMCase(64, 96, 8, "sparse24", 0.5, torch.float16)]


def test_sddmm_rows_are_checked_against_float64(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(suites.SUITES, "tinysddmm", _tiny_sddmm)
    out = tmp_path / "sddmm"
    assert bench_main.main(["--suite", "tinysddmm", "--out", str(out), *FAST]) == 0
    rows = _rows(out)
    assert [r["case"] for r in rows] == [c.label for c in _tiny_sddmm("cpu")]
    for r, c in zip(rows, _tiny_sddmm("cpu")):
        assert r["op"] == "sddmm" and r["check"] == "ok" and r["t_us"] > 0, r
        assert r["err"] <= (1e-5 if c.dtype == torch.float32 else 2e-2)
        assert r["flops"] == 2 * r["nnz"] * c.d and r["bytes_moved"] > r["format_bytes"]
        dm = r["baselines"]["dense_mask"]
        assert dm["t_us"] > 0 and dm["speedup"] > 0 and dm["err"] <= (1e-5 if c.dtype == torch.float32 else 2e-2)
        sa = r["baselines"]["torch_sampled_addmm"]  # torch's CPU SDDMM: measured, or its failure in the row
        assert "error" in sa or (sa["err"] <= 1e-2 and sa["t_us"] > 0)
        assert "scipy" not in r["baselines"]
    # the stored pattern: CSR entries only; a BSR block counts all its r x c slots; 2:4 two slots of four
    assert rows[0]["nnz"] == round(0.1 * 64 * 80)
    assert rows[2]["nnz"] % (16 * 16) == 0
    assert rows[4]["nnz"] == 64 * 96 // 2
    assert "sddmm" in (out / "report.md").read_text()


def test_sddmm_wrong_result_is_flagged(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(suites.SUITES, "tinysddmm", _tiny_sddmm)
    real = runner.ours_sddmm
    calls = []

    def off_by_one_entry(a, x, y):
        out = real(a, x, y).clone()
        out.view(-1)[len(calls) % out.numel()] += 1.0  # one wrong entry
        calls.append(1)
        return out

    monkeypatch.setattr(runner, "ours_sddmm", off_by_one_entry)
    out = tmp_path / "sw"
    assert bench_main.main(["--suite", "tinysddmm", "--limit", "3", "--out", str(out), "--no-plots", *FAST]) == 1
    assert [r["check"] for r in _rows(out)] == ["WRONG"] * 3


def _row(speedup=None, err=0.0, bw_frac=0.5, intensity=1.0, scaling=None, baseline_error=None):
    b = {"torch_dense": {"t_us": 10.0, "speedup": speedup, "err": 0.0}} if speedup is not None else {}
    if baseline_error:
        b["scipy"] = {"error": baseline_error}
    r = {"case": "x", "dtype": "float32", "t_us": 5.0, "err": err, "baselines": b, "bw_frac": bw_frac,
         "intensity": intensity, "threads": 2}
    if scaling is not None:
        r["scaling"] = scaling
    return r


CEIL = {"copy_GBps": 20.0, "matmul_TFLOPs": 0.2}  # ridge: 10 flop / byte


@pytest.mark.parametrize("got,mark", [(1.39, "not met"), (1.4, "met"), (1.41, "met"), (0.5, "not met")])
def test_mark_flips_at_the_threshold(got, mark):
    (m,) = marks.evaluate(_row(speedup=got), [Target("torch_dense", 1.4)], CEIL)
    assert m["mark"] == mark and m["got"] == got and m["need"] == 1.4


def test_marks_bandwidth_threads_and_unmeasurable():
    bw = Target("copy_bw", 0.7, memory_bound_only=True)
    assert marks.ridge(CEIL) == pytest.approx(10.0)
    assert marks.evaluate(_row(bw_frac=0.71, intensity=2.0), [bw], CEIL)[0]["mark"] == "met"
    assert marks.evaluate(_row(bw_frac=0.69, intensity=2.0), [bw], CEIL)[0]["mark"] == "not met"
    m = marks.evaluate(_row(bw_frac=0.2, intensity=12.0), [bw], CEIL)[0]  # compute-bound in this run
    assert m["mark"] == "n/a" and "compute-bound" in m["why"]
    assert marks.evaluate(_row(bw_frac=0.2, intensity=12.0), [Target("copy_bw", 0.1)], CEIL)[0]["mark"] == "met"
    sc = [Target("threads:2", 1.7), Target("threads:16", 10.0)]
    m2, m16 = marks.evaluate(_row(scaling={"2": 1.69}), sc, CEIL)
    assert m2["mark"] == "not met" and m16["mark"] == "n/a" and "16 threads" in m16["why"]
    assert marks.evaluate(_row(scaling={"2": 1.7}), sc, CEIL)[0]["mark"] == "met"
    m = marks.evaluate(_row(speedup=3.0, baseline_error="TypeError: no bf16"), [Target("scipy", 1.5)], CEIL)[0]
    assert m["mark"] == "n/a" and "no bf16" in m["why"]
    assert marks.evaluate(_row(speedup=3.0), [Target("torch_csr", 2.0)], CEIL)[0]["mark"] == "n/a"
    # a wrong or failed row meets nothing, however fast
    assert marks.evaluate(_row(speedup=9.0, err=1.0), [Target("torch_dense", 1.4)], CEIL)[0]["mark"] == "not met"
    failed = {"case": "x", "dtype": "float32", "error": "boom", "baselines": {}}
    m = marks.evaluate(failed, [Target("torch_dense", 1.4)], CEIL)[0]
    assert m["mark"] == "not met" and "boom" in m["why"]
    assert Target("copy_bw", 0.7, True).text == ">= 70% copy bw (if memory-bound)"
    assert Target("threads:2", 1.7).text == ">= 1.7x 1 -> 2 threads"


def test_marks_come_from_the_measured_times(tiny, tmp_path, monkeypatch):
    """The same case and target: met with the real kernel, not met once ours is made slow. One thread: on a
    loaded 2-core machine a 2-thread call can stall for milliseconds waiting for a core."""
    import time

    case = Case(64, 96, 8, "csr", 0.7, targets=(Target("torch_dense", 0.01), Target("torch_csr", 1e6)))
    monkeypatch.setitem(suites.SUITES, "tinytarget", lambda device: [case])
    monkeypatch.setattr(runner, "ALL_THREADS", runner.ALL_THREADS)  # main sets it; restored after the test
    threads_before = torch.get_num_threads()
    one = ["--threads", "1"]
    out = tmp_path / "t1"
    try:
        assert bench_main.main(["--suite", "tinytarget", "--out", str(out), "--no-plots", *one, *FAST]) == 0
    finally:
        torch.set_num_threads(threads_before)
    (row,) = _rows(out)
    (dense, csr) = row["targets"]
    assert dense["mark"] == "met" and dense["got"] == row["baselines"]["torch_dense"]["speedup"] >= 0.01
    assert csr["mark"] == "not met" and csr["got"] == row["baselines"]["torch_csr"]["speedup"]
    md = (out / "report.md").read_text()
    assert "## Targets" in md and "1 met, 1 not met, 0 n/a" in md and "targets (measured, mark)" in md
    real = runner.ours_spmm

    def slow(a, b):
        time.sleep(0.05)  # > 100x the tiny dense matmul (~0.02-0.1 ms)
        return real(a, b)

    monkeypatch.setattr(runner, "ours_spmm", slow)
    out2 = tmp_path / "t2"
    try:
        assert bench_main.main(["--suite", "tinytarget", "--out", str(out2), "--no-plots", *one, *FAST]) == 0
    finally:
        torch.set_num_threads(threads_before)
    (row2,) = _rows(out2)
    assert row2["targets"][0]["mark"] == "not met" and row2["targets"][0]["got"] < 0.01


def test_thread_scaling_row(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "ALL_THREADS", 2)
    assert runner.scaling_threads(1) == [1] and runner.scaling_threads(2) == [1, 2]
    assert runner.scaling_threads(8) == [1, 2, 8] and runner.scaling_threads(32) == [1, 2, 16, 32]
    case = ThreadScalingCase(Case(64, 96, 8, "bitmap", 0.5), targets=suites.SCALING)
    row = runner.run_case(case, "cpu", FAKE_CEILINGS)
    assert row["case"] == case.label and row["scaling_of"] == case.case.label
    assert set(row["t_us_by_threads"]) == {"1", "2"} and row["t_us"] == row["t_us_by_threads"]["2"]
    assert row["scaling"] == {"2": pytest.approx(row["t_us_by_threads"]["1"] / row["t_us_by_threads"]["2"])}
    assert report.check(row) == "ok" and row["threads"] == 2
    m2, m16 = row["targets"]
    assert m2["got"] == row["scaling"]["2"] and m2["mark"] == ("met" if m2["got"] >= 1.7 else "not met")
    assert m16["mark"] == "n/a"
    srow = runner.run_case(ThreadScalingCase(SDDMMCase(40, 50, 8)), "cpu", FAKE_CEILINGS)
    assert report.check(srow) == "ok" and "2" in srow["scaling"]
    assert torch.get_num_threads() == bench_main.torch.get_num_threads()  # restored
    header, body = report.table_rows([row])
    assert "t1 / t" in header and body[0][header.index("t1 / t")].endswith("x@2")


def test_targets_suite_lists_issue_6_cuda_rows():
    cases = suites.targets("cuda")
    labels = [c.label for c in cases]
    assert len(labels) == len(set(labels)) and all(c.fmt == "bitmap" and c.targets for c in cases)
    by_label = {c.label: {t.baseline: t.ratio for t in c.targets} for c in cases}
    for dtype in ("float16", "bfloat16"):
        for m, k in ((4096, 4096), (11008, 4096), (4096, 11008), (14336, 4096)):
            for n in (1, 8, 16):
                for s, r in ((50, 1.6), (70, 2.4), (90, 4.0)):
                    need = by_label[f"bitmap {s}% {m}x{k} @ N={n} {dtype}"]
                    assert need == {"torch_dense": r, "copy_bw": 0.8, "torch_csr": 5.0}
            for n in (32, 64):
                assert by_label[f"bitmap 50% {m}x{k} @ N={n} {dtype}"] == {"torch_dense": 1.4}
                assert by_label[f"bitmap 70% {m}x{k} @ N={n} {dtype}"] == {"torch_dense": 1.9}
            for n in (1024, 8192):
                assert by_label[f"bitmap 50% {m}x{k} @ N={n} {dtype}"] == {"torch_dense": 0.95}
                assert by_label[f"bitmap 90% {m}x{k} @ N={n} {dtype}"] == {"torch_dense": 1.3}
    assert len(cases) == 2 * 4 * (9 + 4 + 4)


def test_targets_suite_lists_the_issue_rows():
    cases = suites.targets("cpu")
    labels = [c.label for c in cases]
    assert len(labels) == len(set(labels))
    assert all(c.targets for c in cases)
    assert suites.targets("mps") == [] and "targets" in suites.EMPTY_REASON
    by_label = {c.label: c for c in cases}

    def need(label, baseline):
        return {t.baseline: t.ratio for t in by_label[label].targets}[baseline]

    for dtype in ("float32", "bfloat16"):
        for m, k in ((4096, 4096), (11008, 4096)):
            for n in (1, 4, 16):
                assert need(f"bitmap 70% {m}x{k} @ N={n} {dtype}", "torch_dense") == 2.0
                assert need(f"bitmap 50% {m}x{k} @ N={n} {dtype}", "torch_dense") == 1.3
                assert need(f"sparse24 2:4 {m}x{k} @ N={n} {dtype}", "torch_dense") == 1.3
                if dtype == "float32":
                    assert need(f"csr 70% {m}x{k} @ N={n} {dtype}", "torch_dense") == 1.4
                    assert need(f"csr 90% {m}x{k} @ N={n} {dtype}", "torch_dense") == 2.0
                for fmt in ("bitmap 70%", "sparse24 2:4"):
                    label = f"{fmt} {m}x{k} @ N={n} {dtype}"
                    assert need(label, "torch_csr") == 2.0 and need(label, "scipy") == 1.5
                    assert need(label, "copy_bw") == 0.7
    for n in (256, 2048):
        for bs in ("32x32", "1x4", "4x1"):
            assert need(f"bsr 90% {bs} 4096x4096 @ N={n} float32", "torch_dense") == 4.0
        assert need(f"csr 95% 4096x4096 @ N={n} float32", "torch_dense") == 2.0
    for dtype in ("float32", "bfloat16"):
        for d in (64, 128):
            assert need(f"sddmm csr 90% 4096x4096 d={d} {dtype}", "dense_mask") == 3.0
    gemm = [c for c in cases if c.op == "spgemm"]
    assert gemm and {c.threads for c in gemm} == {1, 0}
    assert all(need(c.label, "scipy") == 2.0 and need(c.label, "torch_csr") == 1.0 for c in gemm)
    assert {c.label.rsplit(" t=", 1)[0] for c in gemm} <= {c.label.rsplit(" t=", 1)[0] for c in suites.spgemm("cpu")}
    scaling = [c for c in cases if c.op == "scaling"]
    assert len(scaling) >= 3 and all(need(c.label, "threads:2") == 1.7 and need(c.label, "threads:16") == 10.0
                                     for c in scaling)


def test_cpu_rotation_count():
    from sparsekernels.bench import timing

    llc = 32 * 2**20
    assert timing.cpu_copies_needed(22 * 2**20, llc) == 3  # 3 x 22 MiB > 2 x 32 MiB
    assert timing.cpu_copies_needed(64 * 2**20, llc) == 2
    assert timing.cpu_copies_needed(65 * 2**20, llc) == 1  # one copy alone exceeds it
    assert timing.cpu_copies_needed(1, llc) == timing.CPU_MAX_COPIES
    assert timing.llc_bytes() > 0


def test_cpu_spmm_rows_rotate_operand_copies(tiny, monkeypatch):
    """On the CPU the SpMM rows time ours and every baseline over operand copies that together exceed the
    last-level cache: consecutive timed calls see different copies."""
    monkeypatch.setattr(runner.timing, "llc_bytes", lambda: 2**20)  # the tiny operands need several copies
    seen = []
    real = runner.ours_spmm

    def recording(a, b):
        seen.append(id(b))
        return real(a, b)

    monkeypatch.setattr(runner, "ours_spmm", recording)
    row = runner.run_case(Case(64, 96, 8, "bitmap", 0.5), "cpu", FAKE_CEILINGS)
    assert report.check(row) == "ok"
    want = runner.timing.cpu_copies_needed(row["format_bytes"] + 96 * 8 * 4, 2**20)
    assert row["copies"] == want > 1
    assert len(set(seen)) == want, "the timed calls did not cycle through the copies"
    for name, b in row["baselines"].items():
        assert b.get("copies", 1) > 1 or "error" in b, name
