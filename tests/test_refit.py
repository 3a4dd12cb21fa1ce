"""stopping='refit': each fold's epochs (boosting rounds) are chosen on an inner share of its
training rows, then the model trains again on all of them for that count. No validation row's
label chooses anything that scores it; the refit sees every training row; a run stopped between
the two fits resumes without choosing again."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from core.config import TrainConfig
from models import build_model
from models.trainer import fit
from pipelines.train import resume, train
from tiny_tasks import regression_frame, registered, table_task, write_competition


def _toy_fit(stop_after=None, ema=0.0):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(160, 4, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).long()
    torch.manual_seed(0)
    model = build_model("mlp", {"in_features": 4, "out_features": 2, "width": 8, "depth": 1, "dropout": 0.0})
    cfg = TrainConfig(task="toy", epochs=8, batch_size=32, patience=1, ema=ema)
    return fit(model, x[:120], y[:120], x[120:], y[120:], cfg=cfg, loss_fn=F.cross_entropy, maximize=False,
               score_fn=lambda logits, t: F.cross_entropy(logits, t).item(),
               generator=torch.Generator().manual_seed(1), stop_after=stop_after)


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_a_fixed_epoch_count_trains_that_many_epochs_and_keeps_the_last(ema):
    res = _toy_fit(stop_after=5, ema=ema)
    assert [r["epoch"] for r in res.history] == [1, 2, 3, 4, 5] and res.best_epoch == 5
    assert res.best_score == res.history[-1]["val_score"]        # the last epoch's score, not the best one's
    # the kept weights score as the last epoch's row says (an EMA: the average's, as validated)
    x = torch.randn(160, 4, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] - x[:, 1] > 0).long()
    res.model.eval()
    with torch.no_grad():
        assert F.cross_entropy(res.model(x[120:]), y[120:]).item() == pytest.approx(res.best_score, rel=1e-5)


def _competition(tmp_path, y_shift: float = 0.0):
    """Regression rows in fixed folds (KFold on ids: the labels choose no split); `y_shift` moves the
    target of fold 0's validation rows only."""
    frame, test = regression_frame(150), regression_frame(12, seed=1)
    folds = pd.DataFrame({"id": frame["id"], "fold": np.arange(150) % 3})
    frame.loc[folds["fold"] == 0, "y"] += y_shift
    folder = write_competition(tmp_path / f"c{y_shift}", frame, test)
    folds.to_csv(tmp_path / "folds.csv", index=False)
    return folder, str(tmp_path / "folds.csv"), (folds["fold"] == 0).to_numpy()


@pytest.mark.slow
@pytest.mark.parametrize("stopping", ["refit", "inner"])
def test_no_validation_label_moves_its_own_prediction(tmp_path, runs_dir, stopping):
    """Fold 0's validation targets shifted by 5 leave their OOF predictions unchanged: net and trees
    (mlp+lightgbm) chose their epochs and rounds without them. Stopping on them ('val') moves them."""
    def oof(shift, how):
        folder, folds_file, va = _competition(tmp_path, shift)
        with registered(table_task("refit", metric="rmse")) as task:
            cfg = task.config(model="mlp+lightgbm", epochs=12, batch_size=16, patience=2, stopping=how,
                              folds_file=folds_file)
            res = train(cfg, data_dir=folder, runs_root=runs_dir, out=tmp_path / f"{how}{shift}.csv")
        return pd.read_csv(res.run_dir / "oof.csv")["prediction"].to_numpy()[va]
    assert np.array_equal(oof(0.0, stopping), oof(5.0, stopping))
    assert not np.array_equal(oof(0.0, "val"), oof(5.0, "val"))


@pytest.mark.slow
def test_the_refit_trains_the_chosen_count_on_every_training_row(tmp_path, runs_dir, monkeypatch):
    """Per fold and bag: a first fit on the inner split, whose best step the second fit on all the
    fold's training rows trains (a net: the same epochs; trees: rounds times the rows' ratio)."""
    from pipelines.learners_gbdt import LightGBMLearner
    calls, real = [], LightGBMLearner.fit

    def spy(self, enc, y_train, y_val, on_step=None, checkpoint=None, steps=None, grow=1.0):
        out = real(self, enc, y_train, y_val, on_step, checkpoint, steps, grow)
        calls.append((len(y_train), len(y_val), steps, grow, out.best_step_, len(out.history_)))
        return out
    monkeypatch.setattr(LightGBMLearner, "fit", spy)
    folder, folds_file, _ = _competition(tmp_path)
    with registered(table_task("refit", metric="rmse")) as task:
        res = train(task.config(model="lightgbm", stopping="refit", folds_file=folds_file, bags=2),
                    data_dir=folder, runs_root=runs_dir, out=tmp_path / "a.csv")
        from pipelines.predict import predict
        again = predict(res.run_dir.name, "refit", runs_root=runs_dir, out=tmp_path / "b.csv")
    assert len(calls) == 12                                      # 3 folds x 2 bags x (choose, refit)
    folds = [calls[i:i + 4] for i in range(0, 12, 4)]            # per fold: both bags' choices, then both refits
    for choose0, choose1, refit0, refit1 in folds:
        for choose, refit in ((choose0, refit0), (choose1, refit1)):
            assert choose[:2] == (85, 15) and choose[2] is None               # 100 training rows: 85 fit, 15 stop
            assert refit[:2] == (100, 50) and refit[2] == choose[4]           # all 100; the fold's 50 logged only
            assert refit[3] == pytest.approx(100 / 85)
            assert refit[4] == refit[5] == max(1, round(choose[4] * 100 / 85))   # that many rounds, all kept
    metrics = pd.read_json(res.run_dir / "metrics.json", typ="series")
    assert [f["best_epochs"] for f in metrics["folds"]] == [[c[0][4], c[1][4]] for c in folds]
    assert not list(res.run_dir.glob("fold*/chosen*.json"))     # each bag's record holds its choice
    history = pd.read_csv(res.run_dir / "history.csv")
    assert set(history["phase"]) == {"choose", "refit"}
    assert again.read_bytes() == (tmp_path / "a.csv").read_bytes()


@pytest.mark.slow
def test_a_run_stopped_between_the_fits_resumes_without_choosing_again(tmp_path, runs_dir, monkeypatch):
    from pipelines.learners import TorchLearner
    folder, folds_file, _ = _competition(tmp_path)
    with registered(table_task("refit", metric="rmse")) as task:
        cfg = task.config(stopping="refit", folds_file=folds_file, epochs=6)
        straight = train(cfg, data_dir=folder, runs_root=runs_dir, out=tmp_path / "a.csv")
        real, chose = TorchLearner.fit, []

        def stop_in_fold1_refit(self, enc, y_train, y_val, on_step=None, checkpoint=None, steps=None, grow=1.0):
            if steps is None:
                chose.append(len(y_train))
            elif len(chose) == 2:          # fold 1's refit, after its choice was recorded
                raise KeyboardInterrupt
            return real(self, enc, y_train, y_val, on_step, checkpoint, steps, grow)
        monkeypatch.setattr(TorchLearner, "fit", stop_in_fold1_refit)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, data_dir=folder, runs_root=runs_dir / "b", out=tmp_path / "b.csv")
        run = next((runs_dir / "b" / "refit").iterdir())
        assert (run / "fold1" / "chosen0.json").is_file() and not (run / "fold1" / "bag0.json").exists()
        chose.clear()
        resumed = resume("refit", run.name, data_dir=folder, runs_root=runs_dir / "b", out=tmp_path / "b.csv")
    assert chose == [85]                      # fold 2 chooses (on its 85 inner-fit rows); folds 0 and 1 chose before the stop
    assert (straight.run_dir / "oof.csv").read_bytes() == (resumed.run_dir / "oof.csv").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


@pytest.mark.slow
def test_a_one_fit_learner_fits_once_on_every_training_row(tmp_path, runs_dir, monkeypatch):
    """logreg has no epoch count to choose: with stopping=refit it fits once per fold, on all 100
    training rows, the fold's 50 validation rows passed for its log only."""
    from pipelines.learners import LogRegLearner
    calls, real = [], LogRegLearner.fit

    def spy(self, enc, y_train, y_val, *args, **kw):
        calls.append((len(y_train), len(y_val)))
        return real(self, enc, y_train, y_val, *args, **kw)
    monkeypatch.setattr(LogRegLearner, "fit", spy)
    frame, test = regression_frame(150), regression_frame(12, seed=1)
    frame["y"] = (frame["y"] > frame["y"].median()).astype(int)
    folder = write_competition(tmp_path / "c", frame, test)
    pd.DataFrame({"id": frame["id"], "fold": np.arange(150) % 3}).to_csv(tmp_path / "folds.csv", index=False)
    from tiny_tasks import labels_submission
    with registered(table_task("refit1", problem="binary", metric="logloss", classes=(0, 1),
                               submission=labels_submission)) as task:
        train(task.config(model="logreg", stopping="refit", folds_file=str(tmp_path / "folds.csv")),
              data_dir=folder, runs_root=runs_dir, out=tmp_path / "a.csv")
    assert calls == [(100, 50)] * 3
