"""The benchmark scripts run in the suite on tiny inputs so they cannot rot."""
import sys

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import defaults  # noqa: E402


def test_defaults_bench_runs_and_reports(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(defaults, "run", lambda task, seed, data_dir, out: {
        "task": task, "seed": seed, "wall_s": 1.0 + seed, "accuracy": 0.8 + seed / 100})
    defaults.main(["--tasks", "titanic", "--seeds", "0", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "| titanic | 1 | accuracy 0.8100 | 2.0 s |" in out
    assert "titanic over 2 seed(s): wall_s 1.5000 ± 0.7071, accuracy 0.8050 ± 0.0071" in out


def test_defaults_bench_real_subprocess_on_bundled_data(tmp_path, monkeypatch):
    """One real CLI run through the bench's own code path (tiny: 2 folds, 1 epoch via env-free args)."""
    calls = []
    real_run = defaults.subprocess.run

    def fast(cmd, **kw):
        calls.append(cmd)
        return real_run(cmd + ["--folds", "2", "--epochs", "1", "--set", "bags=1"], **kw)
    monkeypatch.setattr(defaults.subprocess, "run", fast)
    row = defaults.run("titanic", 0, None, tmp_path)
    assert calls and 0 <= row["accuracy"] <= 1 and row["wall_s"] > 0


def test_tune_bench_reports_default_vs_best(tmp_path, capsys):
    import tune as tune_bench
    tune_bench.main(["titanic", "--trials", "1", "--folds", "2", "--set", "bags=1", "--set", "epochs=2",
                     "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "task titanic: default CV" in out and "trials 1: complete 1" in out
