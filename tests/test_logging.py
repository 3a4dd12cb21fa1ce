"""--verbose / --quiet: our summary lines by default, debug lines and library warnings only with
--verbose, errors only with --quiet; results stay on stdout whatever the level."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from cli import main

HEARTBEAT = "Heartbeat of storage is supposed to be used with Study.optimize"


def _predict_that_warns(tmp_path: Path):
    """Stands in for the pipeline's predict and makes Optuna raise its real heartbeat UserWarning."""
    def predict(*args, **kwargs):
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=60)
        optuna.create_study(storage=storage).ask()      # ask() outside optimize() warns
        return tmp_path / "sub.csv"
    return predict


@pytest.mark.parametrize("flags, shown", [([], False), (["--quiet"], False), (["--verbose"], True), (["-v"], True)])
def test_library_warnings_only_with_verbose(flags, shown, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("pipelines.predict.predict", _predict_that_warns(tmp_path))
    assert main(["predict", "titanic", *flags]) == 0
    out, err = capsys.readouterr()
    assert out == f"submission: {tmp_path / 'sub.csv'}\n"
    assert (HEARTBEAT in err) == shown, err


def test_train_levels(titanic_dir, tmp_path, capsys):
    def train(*flags):
        args = ["train", "titanic", "--model", "mlp", "--folds", "2", "--epochs", "2", "--set", "bags=1", "--jobs", "1",
                "--data-dir", str(titanic_dir),
                "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "sub.csv"), *flags]
        assert main(args) == 0
        out, err = capsys.readouterr()
        assert "CV accuracy" in out and "submission: " in out        # results: stdout, every level
        return err

    epoch = re.compile(r"fold \d bag \d (choose|refit) epoch \d+: train_loss")      # stopping=refit: both fits
    fold = re.compile(r"^fold \d: accuracy ", re.M)
    default = train()
    assert len(fold.findall(default)) == 2 and not epoch.search(default), default
    verbose = train("--verbose")
    phases = epoch.findall(verbose)
    assert phases.count("choose") == 4 and 2 <= phases.count("refit") <= 4 and len(fold.findall(verbose)) == 2, verbose
    assert train("--quiet") == ""


def test_verbose_and_quiet_exclude_each_other(capsys):
    assert main(["predict", "titanic", "-v", "-q"]) == 2
    err = capsys.readouterr().err
    assert err == "error: --verbose and --quiet exclude each other\n"


@pytest.mark.parametrize("flags, shown", [([], False), (["--quiet"], False), (["--verbose"], True)])
def test_torch_warnings_only_with_verbose(flags, shown, tmp_path, monkeypatch, capfd):
    """torch's loggers write through their own handler (as inductor's 'No CUDA runtime is found'
    does under compile=true on a CPU-only machine), so their level is what silences them."""
    import logging

    def predict(*args, **kwargs):
        logging.getLogger("torch.utils.cpp_extension").warning("No CUDA runtime is found (test)")
        return tmp_path / "sub.csv"
    monkeypatch.setattr("pipelines.predict.predict", predict)
    assert main(["predict", "titanic", *flags]) == 0
    assert ("No CUDA runtime is found (test)" in capfd.readouterr().err) == shown
