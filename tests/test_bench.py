"""The benchmark scripts run in the suite on tiny inputs so they cannot rot."""
import json
import re
import sys

import numpy as np
import pytest
import torch

from core.errors import UsageError
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import defaults  # noqa: E402


def test_defaults_bench_runs_and_reports(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(defaults, "run", lambda task, seed, data_dir, out, overrides: {
        "task": task, "seed": seed, "wall_s": 1.0 + seed, "accuracy": 0.8 + seed / 100})
    defaults.main(["--tasks", "titanic", "--seeds", "0", "1", "--out", str(tmp_path), "--results", str(tmp_path)])
    out = capsys.readouterr().out
    assert "| titanic | 1 | accuracy 0.8100 | 2.0 s |" in out
    assert "titanic over 2 seed(s): wall_s 1.5000 ± 0.7071, accuracy 0.8050 ± 0.0071" in out
    saved = json.loads((tmp_path / "defaults.json").read_text())
    assert [(r["seed"], r["accuracy"]) for r in saved] == [(0, 0.8), (1, 0.81)]
    assert {r["command"] for r in saved} == {"python bench/defaults.py --tasks titanic --seeds 0 1 --out "
                                            f"{tmp_path} --results {tmp_path}"}
    assert all(r["machine"] and r["date"] and "set" not in r for r in saved)


def test_defaults_bench_keeps_every_set_when_the_flag_repeats(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(defaults, "run", lambda task, seed, data_dir, out, overrides: seen.append(overrides) or {
        "task": task, "seed": seed, "wall_s": 1.0})
    defaults.main(["--tasks", "titanic", "--out", str(tmp_path), "--set", "epochs=16", "--set", "width=40", "bags=1",
                   "--results", str(tmp_path)])
    assert seen == [["epochs=16", "width=40", "bags=1"]]      # argparse's default "store" kept only the last
    [row] = json.loads((tmp_path / "defaults.json").read_text())
    assert row["set"] == "bags=1 epochs=16 width=40"           # sorted, as compare.py labels its rows


@pytest.mark.slow
def test_defaults_bench_real_subprocess_on_bundled_data(tmp_path, monkeypatch):
    """One real CLI run through the bench's own code path (tiny: 2 folds, 1 epoch via env-free args)."""
    from bench import common
    calls = []
    real_run = common.subprocess.run

    def fast(cmd, **kw):
        calls.append(cmd)
        return real_run(cmd + ["--folds", "2", "--epochs", "1"], **kw)
    monkeypatch.setattr(common.subprocess, "run", fast)
    row = defaults.run("titanic", 0, None, tmp_path, ["bags=1", "width=8"])
    assert calls and calls[0].count("--set") == 2
    assert 0 <= row["accuracy"] <= 1 and row["wall_s"] > 0
    [run_dir] = (tmp_path / "runs" / "titanic").iterdir()
    cfg = json.loads((run_dir / "config.json").read_text())["config"]
    assert (cfg["bags"], cfg["width"], cfg["folds"]) == (1, 8, 2)


@pytest.mark.slow
def test_tune_bench_reports_default_vs_best(tmp_path, capsys):
    import tune as tune_bench
    tune_bench.main(["titanic", "--trials", "1", "--folds", "2", "--set", "bags=1", "--set", "epochs=2",
                     "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "task titanic: default CV" in out and "trials 1: complete 1" in out


# ---- bench/compare.py: every contender on a tiny slice ---------------------------------------

import compare  # noqa: E402
from tests.test_images import digits, write_idx  # noqa: E402
from pipelines import TASKS  # noqa: E402


@pytest.mark.slow
def test_compare_tabular_every_contender_and_report(tmp_path, capsys):
    results, md = tmp_path / "results", tmp_path / "BENCH.md"
    md.write_text("# Benchmarks\n\n<!-- compare:start -->\nold\n<!-- compare:end -->\n\ntail\n")
    compare.main(["tabular", "--tasks", "titanic", "--rows", "120", "--course-epochs", "2", "--results", str(results)])
    rows = json.loads((results / "tabular.json").read_text())
    assert [r["contender"] for r in rows] == ["ours", "course", "sklearn", "lightgbm"]
    for r in rows:
        assert r["rows"] == 120 and 0 <= r["score"] <= 1 and r["seconds"] > 0 and r["epochs_run"] >= 1
    # a rerun replaces its own rows instead of appending duplicates
    compare.main(["tabular", "--tasks", "titanic", "--rows", "120", "--course-epochs", "2", "--contenders", "course",
                  "--results", str(results)])
    assert len(json.loads((results / "tabular.json").read_text())) == 4
    compare.main(["report", "--results", str(results), "--benchmarks-md", str(md)])
    text = md.read_text()
    assert text.count("<!-- compare:start -->") == 1 and "old" not in text and text.endswith("tail\n")
    assert "| titanic | lightgbm | 1 | 120 | accuracy" in text
    assert (results / "tabular_score_vs_time.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_course_raw_feeds_the_files_numbers_and_ours_course_net_trains_the_course_net(tmp_path, capsys):
    results = tmp_path / "results"
    compare.main(["tabular", "--tasks", "diabetes", "titanic", "--rows", "120", "--course-epochs", "2",
                  "--contenders", "course_raw", "--results", str(results)])
    assert "skip course_raw on titanic: text columns (Name, Sex" in capsys.readouterr().out
    compare.main(["tabular", "--tasks", "titanic", "--rows", "120", "--contenders", "ours_course_net",
                  "--set", "epochs=3", "bags=1", "stopping=inner", "--results", str(results)])     # one fit a fold
    rows = {r["contender"]: r for r in json.loads((results / "tabular.json").read_text())}
    assert set(rows) == {"course_raw", "ours_course_net"}
    assert rows["course_raw"]["task"] == "diabetes" and rows["ours_course_net"]["task"] == "titanic"
    assert rows["course_raw"]["epochs_run"] == 5 * 2                  # 5 folds x the course's 2 epochs
    assert rows["ours_course_net"]["epochs_run"] == 5 * 3                # --set reached our config
    assert 0 <= rows["ours_course_net"]["score"] <= 1
    # the raw form is the file's own numbers, untouched by our encoder
    task = compare.TASKS.create("diabetes")
    inp = compare.prepare(task.config(device="cpu"), None)
    raw = compare.raw_features(inp)
    assert raw.shape == (len(inp.y), 8)
    np.testing.assert_array_equal(raw, inp.train[list(task.numeric)].to_numpy(np.float32))
    with pytest.raises(ValueError, match="titanic has text or missing values"):
        compare.raw_features(compare.prepare(compare.TASKS.create("titanic").config(device="cpu"), None))


@pytest.mark.slow
def test_compare_images_and_throughput(tmp_path, capsys):
    data = tmp_path / "mnist"
    (data / "MNIST" / "raw").mkdir(parents=True)
    for split, n in (("train", 96), ("t10k", 48)):
        x, y = digits(n, seed=n)
        write_idx(data / "MNIST" / "raw" / f"{split}-images-idx3-ubyte", x, gz=False)
        write_idx(data / "MNIST" / "raw" / f"{split}-labels-idx1-ubyte", y, gz=False)
    results = tmp_path / "results"
    compare.main(["images", "--tasks", "mnist", "--data", f"mnist={data}", "--epochs", "ours=2", "course=1",
                  "ours_trainer_course_cnn=1", "--results", str(results)])
    rows = {r["contender"]: r for r in json.loads((results / "images.json").read_text())}
    assert set(rows) == {"ours", "course", "ours_trainer_course_cnn"}
    # ours: 2 epochs, then the TTA prediction train makes; the others: one point per epoch
    assert len(rows["ours"]["curve"]) == 3 and len(rows["course"]["curve"]) == 1
    assert len(rows["ours_trainer_course_cnn"]["curve"]) == 1
    assert rows["ours"]["curve"][2][0] > rows["ours"]["curve"][1][0]
    for r in rows.values():
        assert all(s > 0 and 0 <= a <= 1 for s, a in r["curve"])
    # a variant with config overrides is kept beside the default row, not in its place
    compare.main(["images", "--tasks", "mnist", "--data", f"mnist={data}", "--contenders", "ours_trainer_course_cnn",
                  "--epochs", "ours_trainer_course_cnn=1", "--set", "lr=0.001", "--results", str(results)])
    saved = json.loads((results / "images.json").read_text())
    assert sorted((r["contender"], r.get("set") or "") for r in saved) == [
        ("course", ""), ("ours", ""), ("ours_trainer_course_cnn", ""), ("ours_trainer_course_cnn", "lr=0.001")]
    compare.main(["throughput", "--tasks", "otto", "--n", "512", "--repeats", "2", "--results", str(results)])
    thr = json.loads((results / "throughput.json").read_text())
    assert {r["model"] for r in thr} == {"mlp", "otto_course"} and all(r["ours"] > 0 and r["plain"] > 0 for r in thr)
    assert all(r["repeats"] == 2 and 0 < r["ratio_min"] <= r["ratio"] <= r["ratio_max"] for r in thr)
    compare.main(["report", "--results", str(results), "--benchmarks-md", str(tmp_path / "B.md")])
    assert (results / "mnist_time_to_accuracy.png").is_file()
    assert "| ours_trainer_course_cnn lr=0.001 | 1 |" in (tmp_path / "B.md").read_text()
    # every table names the machine its rows ran on: wall times compare only within one
    assert all(r["machine"] == compare.machine_label() and r["date"] for r in saved + thr)
    assert (tmp_path / "B.md").read_text().count(f"Ran on: {compare.machine_label()}, ") == 2    # mnist, throughput
    assert "| otto | mlp | 256 |" in (tmp_path / "B.md").read_text() and "2 rounds)" in (tmp_path / "B.md").read_text()


def test_compare_images_runs_ours_for_the_default_runs_epochs():
    """`ours` trains as long as `train TASK` does, recipe included; the course contenders keep theirs."""
    for name in ("mnist", "cifar10"):
        task = TASKS.create(name)
        assert compare.image_epochs(task, "ours") == task.config().epochs
        assert compare.image_epochs(task, "course") == compare.image_epochs(task, "ours_trainer_course_cnn") == 10
    assert compare.image_epochs(TASKS.create("cifar10"), "ours") == TASKS.create("cifar10").recipe["epochs"]


def test_machine_report_names_the_cpu_and_measures_matmul():
    import machine
    info = machine.cpu_info()
    assert info["cores"] >= 1 and info["torch_threads"] >= 1 and info["cpu"]
    assert machine.sgemm_gflops(64, 64, 64, seconds=0.05) > 0
    assert machine.sgemm_gflops(64, 64, 64, seconds=0.05, dtype=torch.bfloat16) > 0


def test_diabetes_ceiling_bench_runs(capsys):
    import diabetes_ceiling
    raw, marked, y = diabetes_ceiling.load()
    assert marked.isna().sum().sum() > 0 and raw.isna().sum().sum() == 0 and set(y) == {0, 1}
    diabetes_ceiling.main(["--seeds", "0", "--models", "logistic C=1"])
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| logistic")]
    assert len(rows) == 2 and all(0.6 < float(r.split("|")[3].split()[0]) < 0.9 for r in rows)


@pytest.mark.slow     # seconds: the quick suite stays under 90 s on 2 cores
def test_fold_bench_trains_one_fold_as_train_does(capsys):
    import fold
    # epochs: the MLP's; stopping=inner: one fit (the default refit fits twice)
    r = fold.run_fold("titanic", 1, {"model": "mlp", "epochs": 2, "bags": 1, "stopping": "inner"}, None)
    assert r["fold"] == 1 and r["epochs_run"] == 2 and r["set"] == "model=mlp epochs=2 bags=1 stopping=inner"
    assert 0.5 < r["score"] <= 1 and r["best_epochs"][0] in (1, 2)
    # the same fold and seeds as train's k-fold run: fold 1 of a full cross-validation scores the same
    from pipelines import TASKS
    from pipelines.cv import cross_validate
    from pipelines.inputs import prepare
    cfg = TASKS.create("titanic").config(model="mlp", epochs=2, bags=1, stopping="inner", seed=0, device="cpu")
    full = cross_validate(prepare(cfg, None), cfg, predict_test=False)
    assert full["folds"][1]["accuracy"] == r["score"]
    fold.main(["titanic", "--fold", "0", "--data-dir", str(ROOT / "data" / "titanic"), "--set", "epochs=1", "bags=1"])
    assert "| titanic | fold 0 | epochs=1 bags=1 | accuracy " in capsys.readouterr().out
    assert [c["epoch"] for c in r["curve"]] == [1, 2] and r["curve"][r["best_epochs"][0] - 1]["val_score"] > 0
    fold.main(["titanic", "--curve", "--set", "model=mlp", "epochs=3", "bags=1", "stopping=fixed"])
    out = capsys.readouterr().out
    assert "best epoch(s) 3 |" in out and re.search(r"^bag 0 val_score by epoch: 1:[\d.]+ 2:[\d.]+ 3:[\d.]+$", out, re.M)
    with pytest.raises(UsageError, match="--fold must be in 0..4"):
        fold.run_fold("titanic", 5, {"epochs": 1}, None)


def test_a_rerun_replaces_its_rows_in_place_and_appends_new_ones(tmp_path):
    first = [{"task": "otto", "contender": c, "seed": 0, "score": 1.0} for c in ("ours", "course", "lightgbm")]
    compare.save("tabular", first, ("task", "contender", "seed"), tmp_path)
    rerun = [{"task": "otto", "contender": c, "seed": 0, "score": 2.0} for c in ("course", "ours")]
    rerun.append({"task": "otto", "contender": "ours", "seed": 1, "score": 3.0})
    compare.save("tabular", rerun, ("task", "contender", "seed"), tmp_path)
    rows = json.loads((tmp_path / "tabular.json").read_text())
    assert [(r["contender"], r["seed"], r["score"]) for r in rows] == [
        ("ours", 0, 2.0), ("course", 0, 2.0), ("lightgbm", 0, 1.0), ("ours", 1, 3.0)]


# ---- bench/report.py: BENCHMARKS.md's current-state tables from result files ------------------

def _fake_results(folder):
    from bench.common import save
    save("defaults", [{"task": "titanic", "seed": s, "wall_s": 10.0 + s, "accuracy": 0.8 + s / 100} for s in (0, 1)],
         ("task", "seed", "set"), folder, "python bench/defaults.py --tasks titanic --seeds 0 1")
    save("tabular", [{"task": "otto", "contender": c, "seed": 0, "metric": "logloss", "score": v, "seconds": 5.0,
                      "scores": {"logloss": v}} for c, v in (("ours", 0.46), ("course", 0.53))],
         ("task", "contender", "seed"), folder, "python bench/compare.py tabular --tasks otto")
    save("contention", [{"load": "none", "plan": "tail1", "wall_s": 31.1, "logloss": 0.5352, "rows": 20000,
                         "epochs": 10, "fold_s": [8.1, 8.0, 6.9, 7.2, 6.8], "source": "backfilled"}],
         ("load", "plan"), folder, "python bench/contention.py")


def test_report_writes_one_row_per_figure_with_command_machine_and_date(tmp_path):
    import report
    from bench.common import machine_label
    _fake_results(tmp_path)
    md = tmp_path / "B.md"
    md.write_text("# Benchmarks\n\nintro\n\n<!-- current:start -->\nold\n<!-- current:end -->\n\ntail\n")
    report.main(["--results", str(tmp_path), "--benchmarks-md", str(md), "--current-only"])
    text = md.read_text()
    assert "\nold\n" not in text and text.startswith("# Benchmarks\n\nintro\n") and text.endswith("tail\n")
    machine = machine_label()
    assert ("| `train titanic` (seeds 0, 1) | `python bench/defaults.py --tasks titanic --seeds 0 1` "
            f"| accuracy 0.8050 ± 0.0071 (0.8000 / 0.8100) | 10.5 ± 0.7 (10.0 / 11.0) s | {machine} |") in text
    assert "otto, in-process k-fold CV (`compare.py`'s `ours`) (seed 0)" in text and "0.5300" not in text
    assert (f"| none | tail1 | `python bench/contention.py` | 0.5352 | 31.1 s | 8.1 / 8.0 / 6.9 / 7.2 / 6.8 "
            f"| {machine} |") in text and "| backfilled |" in text
    # run again: the block is replaced, not repeated
    report.main(["--results", str(tmp_path), "--benchmarks-md", str(md), "--current-only"])
    assert md.read_text().count("<!-- current:start -->") == 1 and md.read_text().count("| none | tail1 |") == 1


def test_report_puts_the_block_under_the_title_when_the_file_has_none(tmp_path):
    import report
    _fake_results(tmp_path)
    md = tmp_path / "B.md"
    md.write_text("# Benchmarks\nolder text\n")
    report.write_current(tmp_path, md)
    text = md.read_text()
    assert text.index("<!-- current:start -->") < text.index("older text") and text.startswith("# Benchmarks\n")


def test_benchmarks_md_has_no_line_over_600_characters():
    lines = (ROOT / "BENCHMARKS.md").read_text().splitlines()
    assert max(map(len, lines)) <= 600 and "<!-- current:start -->" in lines


# ---- bench/jpeg_cost.py: a trained run on JPEG copies and their originals -----------------------

from tests.test_images import FAST, cifar_kaggle, rgb_images  # noqa: E402,F401  (cifar_kaggle: a fixture)


def _shared_pair(d, lossless, y):
    """The two .npz files of ../shared/datasets/cifar10, tiny: `lossless` (N, 32, 32, 3) and its JPEG-q75 copies."""
    import io
    from PIL import Image
    blobs = []
    for img in lossless:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=75)
        blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
    d.mkdir(exist_ok=True)
    np.savez(d / "cifar10_jpeg_q75.npz", test_jpeg=np.concatenate(blobs),
             test_offsets=np.cumsum([0] + [len(b) for b in blobs]), y_test=y.astype(np.uint8))
    np.savez(d / "cifar10_lossless_subset.npz", x_test_first1000=lossless, y_test_first1000=y.astype(np.uint8))


@pytest.mark.slow
def test_jpeg_cost_scores_one_run_on_both_copies(cifar_kaggle, tmp_path, capsys):
    from typer.testing import CliRunner
    import jpeg_cost
    from cli import app
    res = CliRunner().invoke(app, ["train", "cifar10", *FAST, "--data-dir", str(cifar_kaggle[0]),
                                   "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "sub.csv")])
    assert res.exit_code == 0, res.output
    x, y = rgb_images(12, seed=2)
    _shared_pair(tmp_path / "shared", x, y)
    r = jpeg_cost.main(["--run", "latest", "--runs-dir", str(tmp_path / "runs"), "--shared", str(tmp_path / "shared")])
    assert r["images"] == 12 and 0 < r["mean_abs_pixel_diff"] < 40
    assert all(abs(v * 12 - round(v * 12)) < 1e-9 for v in (r["jpeg"], r["lossless"]))   # counts of the 12 images
    out = capsys.readouterr().out
    assert f"| JPEG-q75 copies | {r['jpeg']:.4f} |" in out and f"| lossless originals | {r['lossless']:.4f} |" in out
    # originals that are the decoded JPEGs themselves: the same pixels, so the same score
    jpeg, _, _ = jpeg_cost.load_pairs(tmp_path / "shared")
    _shared_pair(tmp_path / "same", jpeg.transpose(0, 2, 3, 1), y)
    np.savez(tmp_path / "same" / "cifar10_jpeg_q75.npz", **dict(np.load(tmp_path / "shared" / "cifar10_jpeg_q75.npz")))
    same = jpeg_cost.jpeg_cost("latest", tmp_path / "runs", tmp_path / "same")
    assert same["mean_abs_pixel_diff"] == 0 and same["jpeg"] == same["lossless"] == r["jpeg"]
    _shared_pair(tmp_path / "shuffled", x, y[::-1].copy())
    np.savez(tmp_path / "shuffled" / "cifar10_lossless_subset.npz", x_test_first1000=x, y_test_first1000=y.astype(np.uint8))
    if not np.array_equal(y, y[::-1]):
        with pytest.raises(UsageError, match="not in the same order"):
            jpeg_cost.jpeg_cost("latest", tmp_path / "runs", tmp_path / "shuffled")
    with pytest.raises(UsageError, match="nosuch"):
        jpeg_cost.main(["--run", "nosuch", "--runs-dir", str(tmp_path / "runs"), "--shared", str(tmp_path / "shared")])
    with pytest.raises(UsageError, match="no cifar10_lossless_subset.npz"):
        jpeg_cost.main(["--run", "latest", "--runs-dir", str(tmp_path / "runs"), "--shared", str(tmp_path)])


# ---- bad input: one line, exit code 2, before any run starts -------------------------------------

BAD_BENCH_INPUT = [
    (["compare.py", "tabular", "--tasks", "nosuch"], "unknown task 'nosuch'"),
    (["compare.py", "tabular", "--tasks", "titanic", "--set", "nokey=1"], "unknown config key(s) nokey"),
    (["compare.py", "tabular", "--tasks", "titanic", "--contenders", "nope"], "unknown contender(s) nope"),
    (["compare.py", "tabular", "--tasks", "titanic", "--contenders", "course_raw"], "titanic has text columns"),
    (["compare.py", "images", "--tasks", "mnist", "--data", "mnist=/no/such/dir"], "mnist=/no/such/dir: not a folder"),
    (["compare.py", "images", "--tasks", "mnist", "--epochs", "ours=0"], "positive whole number"),
    (["compare.py", "images", "--tasks", "mnist", "--epochs", "lightgbm=3"], "'lightgbm' is not a contender"),
    (["defaults.py", "--tasks", "titanic", "--set", "folds=1"], "--folds must be at least 2 for titanic"),
    (["defaults.py", "--tasks", "nosuch"], "unknown task 'nosuch'"),
    (["fold.py", "titanic", "--fold", "7"], "--fold must be in 0..4, got 7"),
    (["tune.py", "titanic", "--set", "lr=fast"], "config key 'lr' wants float"),
    (["tune.py", "titanic", "--report", "nostudy"], "no study 'nostudy' for titanic"),
    (["jpeg_cost.py", "--shared", "/no/such/dir"], "no cifar10_lossless_subset.npz"),
    (["contention.py", "--loads", "busy"], "unknown load 'busy'"),
    (["contention.py", "--data", "/no/such/dir"], "no train.csv.gz"),
    (["preset.py", "--competitions", "otto=/no/such/dir"], "no folder /no/such/dir"),
]


# each case starts a Python that imports the pipeline (~3 s): all run with the slow tests
@pytest.mark.parametrize("argv, message", [pytest.param(*case, marks=pytest.mark.slow) for case in BAD_BENCH_INPUT])
def test_bench_scripts_refuse_bad_input_in_one_line_with_exit_code_2(argv, message, tmp_path):
    import subprocess
    script, *args = argv
    out = ["--out", str(tmp_path / "out")] if script in ("defaults.py", "tune.py") else []
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args, *out], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and message in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_run_cli_turns_the_commands_exit_code_2_into_its_one_line(tmp_path):
    from bench.common import run_cli
    with pytest.raises(UsageError, match=r"^--folds must be at least 2 for titanic, got 1$"):
        run_cli([sys.executable, "cli.py", "train", "titanic", "--folds", "1", "--runs-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="exit code 3"):
        run_cli([sys.executable, "-c", "import sys; sys.exit(3)"])
