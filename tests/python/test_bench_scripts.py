"""The benchmark scripts on a tiny sweep: they still run, every baseline recipe still matches the
op (bench_step checks loss, feature gradient and moved centers before it times anything and exits
non-zero on a mismatch), and they write the JSON, table and figure that docs/benchmarks.md uses.
No timing is asserted: speed lives in the benchmark figures, not in tests."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_script(name, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "bench", name), *args],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, f"{name} {args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_bench_step_checks_every_recipe_and_writes_its_reports(tmp_path):
    out = run_script("bench_step.py", "--device", "cpu", "--threads", "1", "--n", "64", "--d",
                     "2", "16", "--k", "10", "3000", "--dtypes", "float32", "bfloat16",
                     "--target-s", "0.002", "--min-iters", "3", "--rounds", "2",
                     "--out-dir", str(tmp_path))
    report = json.loads((tmp_path / "bench_step_cpu.json").read_text())
    results = report["results"]
    assert len(results) == 2 * 2 * 2
    for r in results:
        # every recipe was checked against the op and timed (the distmat is small enough here)
        assert set(r["seconds"]) == {"op", "op_raw", "gather", "distmat", "copy"}, r
        assert all(s > 0 for s in r["seconds"].values())
        assert r["moved_bytes"] == r["N"] * r["D"] * (2 * (2 if r["dtype"] == "bfloat16" else 4)
                                                      + 2 * 4)
    table = (tmp_path / "bench_step_cpu.md").read_text()
    assert table.count("\n| 64 |") == len(results) and "gather / op" in table
    assert (tmp_path / "bench_step_cpu.png").stat().st_size > 10_000
    assert "N=64 D=16 K=3000 bfloat16" in out


def test_bench_kernels_writes_every_row(tmp_path):
    path = tmp_path / "kernels.json"
    run_script("bench_kernels.py", "--n", "64", "--d", "2", "16", "--k", "10", "--threads", "1",
               "--isa", "both", "--one-pass", "both", "--iters", "5", "--repeat", "2",
               "--json", str(path))
    report = json.loads(path.read_text())
    rows = report["rows"]
    assert {(r["isa"], r["D"], r["one_pass"]) for r in rows} == {
        (isa, d, one_pass) for isa in ("avx2", "baseline") for d in (2, 16)
        for one_pass in ("never", "always")} or \
        {r["isa"] for r in rows} == {"baseline"}  # a CPU without AVX2 runs baseline twice
    for r in rows:
        assert r["repeats"] == 2
        assert all(r[key] > 0 for key in ("forward", "backward", "update", "two_ops",
                                          "forward_step", "grad_unit", "grad_lambda",
                                          "grad_lambda_retained"))
    assert report["commit"] is None or len(report["commit"]) == 40


def test_bench_keras_step_times_both_versions(tmp_path):
    """bench_keras_step.py on a tiny sweep (jax only): this tree's layer and HEAD's (git archive)
    in separate processes, the JSON and the table."""
    run_script("bench_keras_step.py", "--backends", "jax", "--d", "8", "--k", "10", "100", "--n",
               "32", "--steps", "3", "--warmup", "2", "--threads", "1", "--before", "HEAD",
               "--out-dir", str(tmp_path))
    report = json.loads((tmp_path / "bench_keras_step.json").read_text())
    rows = report["results"]
    assert {(r["version"], r["K"], r["round"]) for r in rows} == {
        (v, k, 0) for v in ("before", "after") for k in (10, 100)}
    assert all(r["backend"] == "jax" and r["D"] == 8 and r["step_ms"] > 0 for r in rows)
    table = (tmp_path / "bench_keras_step.md").read_text()
    assert table.count("\n| jax | 8 |") == 2 and "after K_max/K_min" in table


def test_bench_keras_step_keeps_the_fastest_round():
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        from bench_keras_step import fastest_rounds, markdown
    finally:
        sys.path.pop(0)
    rows = [dict(backend="jax", version="after", D=8, K=k, step_ms=ms, p10_ms=ms, round=r)
            for k, r, ms in ((10, 0, 2.0), (10, 1, 1.0), (100, 0, 1.5), (100, 1, 3.0))]
    best = {(r["K"], r["round"]) for r in fastest_rounds(rows)}
    assert best == {(10, 1), (100, 0)}
    assert "| jax | 8 | 1.00 | 1.50 | 1.50 |" in markdown(fastest_rounds(rows), ["after"])
