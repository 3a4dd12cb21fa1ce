"""Interrupted runs: per-epoch checkpoints, `train --resume`, kill-and-resume, corrupted checkpoints."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cli import main
from core.config import TrainConfig
from core.errors import UsageError
from models import build_model
from models.trainer import fit
from pipelines import runs
from pipelines.train import RunInterrupted, train
from tests.conftest import ROOT, alive, proc_stat


def _toy(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(200, 6, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x[:150], y[:150], x[150:], y[150:]


def _fit(ckpt, on_epoch=None, ema=0.0, **recipe):
    torch.manual_seed(0)
    model = build_model("mlp", {"in_features": 6, "out_features": 2, "width": 16, "depth": 2, "dropout": 0.3})
    cfg = TrainConfig(task="toy", epochs=6, batch_size=32, patience=100, ema=ema, **recipe)
    return fit(model, *_toy(), cfg=cfg, loss_fn=F.cross_entropy, maximize=False,
               score_fn=lambda logits, y: F.cross_entropy(logits, y).item(),
               generator=torch.Generator().manual_seed(1), on_epoch=on_epoch, checkpoint=ckpt)


# airbench's recipe: stopped in epoch 5, when the Lookahead (from epoch 4) has a state to carry over
AIRBENCH = dict(optimizer="sgd", lr=0.1, momentum=0.85, norm_lr_scale=8.0, schedule="triangle", lookahead=True)


@pytest.mark.parametrize("recipe,stop", [({}, 3), ({"ema": 0.9}, 3), (AIRBENCH, 5)], ids=["raw", "ema", "airbench"])
def test_fit_resumed_from_checkpoint_matches_uninterrupted(tmp_path, recipe, stop):
    straight = _fit(tmp_path / "a.pt", **recipe)

    def stop_at(row):
        if row["epoch"] == stop:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "b.pt", on_epoch=stop_at, **recipe)
    assert torch.load(tmp_path / "b.pt", weights_only=True)["epoch"] == stop
    resumed = _fit(tmp_path / "b.pt", **recipe)   # a fresh model and generator: the checkpoint restores both
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert resumed.best_epoch == straight.best_epoch and resumed.best_score == straight.best_score
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(resumed.history) == strip(straight.history)


def _fit_images(ckpt, on_epoch=None):
    """fastnet on 16 px images with the image augmentations: random translate, alternating flip."""
    from features.images import BatchTransform, ChannelStats, preflip
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (96, 3, 16, 16), dtype=torch.uint8, generator=g)
    y = (x[:, 0, :, :8].float().mean((1, 2)) > x[:, 0, :, 8:].float().mean((1, 2))).long()
    torch.manual_seed(0)
    model = build_model("fastnet", {"in_channels": 3, "num_classes": 2, "image_size": 16, "width": 4})
    fn = BatchTransform(ChannelStats().fit(x[:64].numpy()), torch.device("cpu"), flip=True, translate=2)
    cfg = TrainConfig(task="toy", epochs=6, batch_size=16, patience=100, **AIRBENCH)
    return fit(model, preflip(x[:64], 0), y[:64], x[64:], y[64:], cfg=cfg, loss_fn=F.cross_entropy,
               score_fn=lambda logits, y: (logits.argmax(1) == y).float().mean().item(), maximize=True,
               generator=torch.Generator().manual_seed(1), batch_transform=fn, on_epoch=on_epoch, checkpoint=ckpt)


def test_image_fit_resumed_in_an_odd_epoch_keeps_the_flip_alternating(tmp_path):
    """Stopped after epoch 3, the resumed run's epoch 4 must see mirrored images as the straight
    run's did: the flip's side comes from the epoch number, not from a toggle the resume would lose."""
    straight = _fit_images(tmp_path / "a.pt")

    def stop_at(row):
        if row["epoch"] == 3:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        _fit_images(tmp_path / "b.pt", on_epoch=stop_at)
    resumed = _fit_images(tmp_path / "b.pt")
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(resumed.history) == strip(straight.history)


def test_ema_weights_are_what_fit_keeps(tmp_path):
    """With ema, the validated and returned weights are the average, not the last step's."""
    raw, avg = _fit(None), _fit(None, ema=0.9)
    assert raw.history[0]["train_loss"] == avg.history[0]["train_loss"]      # same optimisation path
    assert raw.history[-1]["val_score"] != avg.history[-1]["val_score"]      # scored on different weights
    assert not all(torch.equal(a, b) for a, b in zip(raw.model.state_dict().values(), avg.model.state_dict().values()))


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    _fit(tmp_path / "a.pt")
    data = (tmp_path / "a.pt").read_bytes()
    (tmp_path / "a.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UsageError, match=r"a\.pt: corrupted or truncated checkpoint"):
        _fit(tmp_path / "a.pt")


def _cfg(**kw):
    base = dict(task="titanic", folds=3, epochs=4, patience=100, width=32, seed=3)
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("jobs", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_interrupted_run_resumes_to_identical_files(jobs, titanic_dir, runs_dir, tmp_path, capsys):
    done = train(_cfg(jobs=jobs), data_dir=titanic_dir, out=tmp_path / "straight.csv", runs_root=runs_dir)

    def stop(fold, bag, row):
        if fold == 1 and row["epoch"] == 2:
            raise KeyboardInterrupt
    with pytest.raises(RunInterrupted, match="--resume"):
        train(_cfg(jobs=jobs), data_dir=titanic_dir, out=tmp_path / "resumed.csv", runs_root=runs_dir, on_epoch=stop)
    [cut] = [r for r in (runs_dir / "titanic").iterdir() if r != done.run_dir]
    assert runs.state_of(cut) == "interrupted"
    before = runs.read_json(cut / "status.json")["seconds"]
    assert before > 0
    if jobs == 1:        # one after the other: the cut falls exactly where the hook raised
        assert (cut / "fold0" / "model0.pt").is_file() and (cut / "fold1" / "ckpt0.pt").is_file()
    else:                # folds side by side in workers, which may run ahead of their reports: only the run is cut
        assert not (cut / "metrics.json").exists() and not (cut / "oof.csv").exists()
    assert not (tmp_path / "resumed.csv").exists()

    # listed apart from finished runs; predict refuses it
    assert main(["runs", "titanic", "--runs-dir", str(runs_dir)]) == 0
    table = capsys.readouterr().out
    finished, unfinished = table.split("unfinished")
    assert done.run_dir.name in finished and cut.name in unfinished and cut.name not in finished
    assert main(["predict", "titanic", "--run", cut.name, "--runs-dir", str(runs_dir)]) == 2
    assert "interrupted, not complete" in capsys.readouterr().err

    if jobs == 1:        # a run from before --jobs has no such key: it trained one fold at a time, and resumes so
        saved = json.loads((cut / "config.json").read_text())
        del saved["config"]["jobs"]
        (cut / "config.json").write_text(json.dumps(saved))
    # resume takes data dir and --out from the run; 'latest' finds the newest unfinished run
    assert main(["train", "titanic", "--resume", "latest", "--runs-dir", str(runs_dir), "--quiet"]) == 0
    assert runs.state_of(cut) == "complete"
    assert not list(cut.glob("fold*/ckpt*.pt"))
    assert (cut / "oof.csv").read_bytes() == (done.run_dir / "oof.csv").read_bytes()
    assert (tmp_path / "resumed.csv").read_bytes() == (tmp_path / "straight.csv").read_bytes()
    metrics = json.loads((cut / "metrics.json").read_text())
    assert metrics["resumed"] is True and metrics["seconds_total"] > before    # the time before the cut counts
    for fold in (0, 1):     # fold 0 finished before the cut, fold 1 was cut mid-way: both count their whole training
        trained = json.loads((cut / f"fold{fold}" / "bag0.json").read_text())["history"][-1]["seconds"]
        assert metrics["folds"][fold]["seconds"] >= trained > 0


@pytest.mark.parametrize("args, message", [
    (["--resume", "latest"], "no interrupted or failed titanic run"),
    (["--resume", "nope"], "run 'nope' not found"),
    (["--resume", "latest", "--epochs", "3"], "drop --epochs"),
])
def test_resume_bad_input(args, message, runs_dir, capsys):
    assert main(["train", "titanic", *args, "--runs-dir", str(runs_dir)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_resume_of_a_run_with_config_keys_this_code_lacks_is_one_line(titanic_dir, runs_dir, tmp_path, capsys):
    def stop(fold, bag, row):
        raise KeyboardInterrupt
    with pytest.raises(RunInterrupted):
        train(_cfg(epochs=2), data_dir=titanic_dir, out=tmp_path / "s.csv", runs_root=runs_dir, on_epoch=stop)
    [cut] = list((runs_dir / "titanic").iterdir())
    saved = json.loads((cut / "config.json").read_text())
    saved["config"]["warp_factor"] = 9           # written by a newer version of the code
    (cut / "config.json").write_text(json.dumps(saved))
    assert main(["train", "titanic", "--resume", cut.name, "--runs-dir", str(runs_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config key(s) warp_factor unknown to this version" in err, err
    assert str(cut / "config.json") in err and runs.state_of(cut) == "interrupted"


@pytest.mark.slow
def test_resume_of_a_complete_run_is_refused(titanic_dir, runs_dir, tmp_path, capsys):
    done = train(_cfg(epochs=1), data_dir=titanic_dir, out=tmp_path / "s.csv", runs_root=runs_dir)
    assert main(["train", "titanic", "--resume", done.run_dir.name, "--runs-dir", str(runs_dir)]) == 2
    assert "already complete" in capsys.readouterr().err


def test_unwritable_places_fail_before_training(titanic_dir, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["train", "titanic", "--folds", "2", "--epochs", "1", "--quiet", "--data-dir", str(titanic_dir),
                 "--runs-dir", str(blocker / "runs"), "--out", str(tmp_path / "s.csv")]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert main(["train", "titanic", "--folds", "2", "--epochs", "1", "--quiet", "--data-dir", str(titanic_dir),
                 "--runs-dir", str(tmp_path / "runs"), "--out", str(blocker / "s.csv")]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "s.csv").exists()


def _cli(*args):
    return [sys.executable, str(ROOT / "cli.py"), *args]


def _start(runs_dir, out, titanic_dir, jobs, process=True):
    # enough epochs that fold 0 finishing leaves most of the run still to do, and that fold 1's
    # checkpoint is there for more than a moment of polling (30 epochs left ~0.5 s on a fast host)
    # the MLP alone: its per-epoch checkpoints are what these tests kill and resume
    args = ["train", "titanic", "--model", "mlp", "--folds", "4", "--epochs", "80", "--seed", "5", "--quiet", "--jobs", str(jobs),
            "--set", "patience=1000", "--set", "bags=1", "--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir), "--out", str(out)]
    if not process:
        return args, None
    return args, subprocess.Popen(_cli(*args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(pattern, root, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        hits = list(root.glob(pattern))
        if hits:
            return hits[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"{pattern} never appeared")


def _workers_of(pid):
    """Live fold workers of `pid` (--jobs 2), from /proc: loky names them LokyProcess-N (its resource
    trackers, also children, train nothing)."""
    kids = []
    for folder in Path("/proc").glob("[0-9]*"):
        stat = proc_stat(int(folder.name))
        try:
            cmdline = (folder / "cmdline").read_bytes()
        except OSError:
            continue
        if stat is not None and int(stat[1]) == pid and stat[0] != "Z" and b"LokyProcess" in cmdline:
            kids.append(int(folder.name))
    return kids


@pytest.mark.parametrize("sig, jobs", [(signal.SIGKILL, 1), (signal.SIGKILL, 2), (signal.SIGTERM, 2)])
@pytest.mark.slow
def test_killed_subprocess_resumes_to_the_uninterrupted_result(sig, jobs, titanic_dir, tmp_path):
    straight_runs, cut_runs = tmp_path / "straight", tmp_path / "cut"
    args, _ = _start(straight_runs, tmp_path / "straight.csv", titanic_dir, jobs, process=False)
    assert main(args) == 0      # in this process: same data, seed, --jobs and threads; no interpreter start

    _, proc = _start(cut_runs, tmp_path / "cut.csv", titanic_dir, jobs)
    ckpt = _wait_for("titanic/*/fold1/ckpt0.pt", cut_runs, proc)
    while "seconds" not in runs.read_json(ckpt.parent.parent / "status.json"):   # workers' reports arrive every 0.2 s
        time.sleep(0.02)
    workers = _workers_of(proc.pid) if jobs > 1 and sys.platform == "linux" else []    # /proc
    assert len(workers) == (2 if jobs > 1 and sys.platform == "linux" else 0)
    os.kill(proc.pid, sig)
    code = proc.wait(timeout=60)
    err = proc.stderr.read()
    if workers and sys.platform == "linux":     # no worker goes on training into the run unwatched
        deadline = time.time() + 10             # the kernel's SIGKILL to them, and their exit, take a moment
        while [w for w in workers if alive(w)] and time.time() < deadline:
            time.sleep(0.05)
        assert not [w for w in workers if alive(w)]
    [run] = list((cut_runs / "titanic").iterdir())
    assert runs.state_of(run) == "interrupted"
    before = runs.read_json(run / "status.json")["seconds"]     # kept each epoch: kill -9 runs no handler
    assert before > 0
    assert not (tmp_path / "cut.csv").exists()
    if sig == signal.SIGTERM:        # handled like Ctrl-C: a one-line hint, no traceback
        assert code == 130 and "Traceback" not in err and f"--resume {run.name}" in err

    resumed = subprocess.run(_cli("train", "titanic", "--resume", run.name, "--runs-dir", str(cut_runs), "--quiet"),
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    [straight] = list((straight_runs / "titanic").iterdir())
    assert (run / "oof.csv").read_bytes() == (straight / "oof.csv").read_bytes()
    assert (tmp_path / "cut.csv").read_bytes() == (tmp_path / "straight.csv").read_bytes()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["seconds_total"] > before       # the time before the kill counts
    # fold 0 finished before the kill: its seconds are its whole training, not the reload's
    trained = json.loads((run / "fold0" / "bag0.json").read_text())["history"][-1]["seconds"]
    assert metrics["folds"][0]["seconds"] >= trained > 0


@pytest.mark.skipif(sys.platform != "linux", reason="finds the worker processes in /proc")
@pytest.mark.slow
def test_a_killed_worker_fails_the_run_in_one_line_and_it_resumes(titanic_dir, tmp_path):
    """What the out-of-memory killer does to a fold's worker: exit 1, one line naming the signal
    and the resume command; the run is kept as failed and `--resume` finishes it."""
    runs_dir = tmp_path / "runs"
    _, proc = _start(runs_dir, tmp_path / "s.csv", titanic_dir, jobs=2)
    ckpt = _wait_for("titanic/*/fold1/ckpt0.pt", runs_dir, proc)
    os.kill(_workers_of(proc.pid)[0], signal.SIGKILL)
    code, err = proc.wait(timeout=60), proc.stderr.read()
    run = ckpt.parent.parent
    assert code == 1 and err.count("\n") == 1 and "SIGKILL" in err and f"--resume {run.name}" in err, err
    assert runs.state_of(run) == "failed" and not (tmp_path / "s.csv").exists()
    resumed = subprocess.run(_cli("train", "titanic", "--resume", run.name, "--runs-dir", str(runs_dir), "--quiet"),
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert runs.state_of(run) == "complete" and (tmp_path / "s.csv").is_file()
