"""The learner seam (pipelines/learners.py): a second learner, scikit-learn's logistic regression,
goes through train, predict, report and blend with the fold loop unchanged."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from cli import main
from models import MODELS
from pipelines.learners import LEARNERS, LogRegLearner, TorchLearner
from tasks.task import Encoded

FAST = ["--folds", "2", "--quiet", "--set", "bags=2", "--jobs", "1"]


def _run(runs_dir, task: str) -> str:
    return next(d.name for d in (runs_dir / task).iterdir() if "-logreg-" in d.name)


def test_every_net_is_a_torch_learner_and_logreg_an_sklearn_one():
    assert all(LEARNERS.get(name) is TorchLearner for name in MODELS.names())
    assert LEARNERS.get("logreg") is LogRegLearner and "logreg" not in MODELS


def test_logreg_trains_predicts_and_reports_titanic(titanic_dir, runs_dir, tmp_path, capsys):
    out = tmp_path / "train.csv"
    where = ["--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir)]
    assert main(["train", "titanic", "--model", "logreg", "--seed", "3", "--out", str(out), *FAST, *where]) == 0
    run = _run(runs_dir, "titanic")
    fold = runs_dir / "titanic" / run / "fold0"
    # bags=2 asked, one trained: logreg's fit ignores the seed, a second bag would repeat it
    assert sorted(p.name for p in fold.glob("model*")) == ["model0.joblib"]
    assert not list(fold.glob("*.pt"))
    history = pd.read_csv(runs_dir / "titanic" / run / "history.csv")
    assert len(history) == 2 and (history["epoch"] == 1).all()        # one row per fit: 2 folds x 1 bag
    # predict rebuilds the same submission from the run folder alone
    again = tmp_path / "predict.csv"
    assert main(["predict", "titanic", "--run", run, "--runs-dir", str(runs_dir), "--out", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()
    capsys.readouterr()
    assert main(["report", "titanic", "--run", run, "--runs-dir", str(runs_dir)]) == 0
    text = capsys.readouterr().out
    assert "model:       logreg" in text and "state:       complete" in text and "CV:" in text


def test_logreg_blends_with_an_mlp_run(titanic_dir, runs_dir, tmp_path, capsys):
    where = ["--data-dir", str(titanic_dir), "--runs-dir", str(runs_dir)]
    assert main(["train", "titanic", "--model", "logreg", "--out", str(tmp_path / "a.csv"), *FAST, *where]) == 0
    assert main(["train", "titanic", "--epochs", "2", "--out", str(tmp_path / "b.csv"), *FAST, *where]) == 0
    runs = sorted(d.name for d in (runs_dir / "titanic").iterdir())
    out = tmp_path / "blend.csv"
    capsys.readouterr()
    assert main(["blend", "titanic", *runs, "--runs-dir", str(runs_dir), "--out", str(out)]) == 0
    assert "blend CV accuracy" in capsys.readouterr().out
    assert list(pd.read_csv(out).columns) == ["PassengerId", "Survived"]


def test_logreg_trains_on_the_bundled_diabetes_data(runs_dir, tmp_path):
    out = tmp_path / "diabetes.csv"
    assert main(["train", "diabetes", "--model", "logreg", "--out", str(out), "--runs-dir", str(runs_dir), *FAST]) == 0
    metrics = pd.read_json(runs_dir / "diabetes" / _run(runs_dir, "diabetes") / "metrics.json", typ="series")
    assert metrics["cv"]["roc_auc"] > 0.75        # a linear model on the Pima data scores about 0.83


def test_logreg_on_an_image_task_is_a_one_line_error(runs_dir, capsys):
    assert main(["train", "mnist", "--model", "logreg", "--runs-dir", str(runs_dir), "--quiet"]) != 0
    assert "is for tabular data, but mnist has image data" in capsys.readouterr().err


def test_logreg_multiclass_probabilities_and_history_row():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = torch.tensor(np.eye(3)[y] * 2 + rng.normal(size=(300, 3)), dtype=torch.float32)
    task = SimpleNamespace(name="toy", binary=False, problem="multiclass", monitor=None, metric="accuracy",
                           extra_metrics=(), steady_label_metrics=False)
    enc = Encoded(None, x[:200], x[200:], None, {}, ["a", "b", "c"], None)
    rows = []
    learner = LogRegLearner(task, None, torch.device("cpu")).fit(enc, y[:200], y[200:], on_step=rows.append)
    p = learner.predict_proba(x[200:])
    assert p.shape == (100, 3) and np.allclose(p.sum(1), 1) and (p.argmax(1) == y[200:]).mean() > 0.8
    assert rows == learner.history_ and learner.best_step_ == 1 and learner.best_score_ == rows[0]["val_score"]
    assert {"epoch", "train_loss", "val_loss", "val_score", "lr", "seconds"} <= set(rows[0])


def test_models_lists_every_learner_once(capsys):
    assert main(["models"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert sorted(names) == LEARNERS.names() and "logreg" in names
