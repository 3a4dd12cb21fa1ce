"""TabM (models/tabm.py) and how the stages read an ensemble's (N, k, C) outputs (pipelines/proba.py):
each member trains on its own loss, everything else sees the members' mean prediction."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import rtdl_num_embeddings as rne
import torch
import torch.nn.functional as F

from core.config import TrainConfig, override
from core.errors import UsageError
from models import MODELS
from pipelines.learners import TorchLearner
from pipelines.proba import ensemble, loss_fn, score_fn, to_proba
from tasks.task import Encoded


def _task(problem: str, binary: bool = False, metric: str = "logloss"):
    return SimpleNamespace(name="toy", problem=problem, binary=binary, monitor=None, metric=metric,
                           extra_metrics=(), steady_label_metrics=False)


def _tiny(embedding="none", **kw):
    return MODELS.create("tabm", in_features=5, out_features=3, heads=4, width=8, depth=1, dropout=0.0,
                         embedding=embedding, n_bins=6, d_embedding=3, **kw)


@pytest.mark.parametrize("embedding", ["none", "periodic", "piecewise"])
def test_k_members_out_in_training_and_evaluation(embedding):
    torch.manual_seed(0)
    net = _tiny(embedding)
    x = torch.randn(7, 5)
    assert net(x).shape == (7, 4, 3)
    net.eval()
    assert net(x).shape == (7, 4, 3)


def test_the_options_reach_the_net():
    net = MODELS.create("tabm", in_features=5, out_features=2, heads=6, width=12, depth=3, dropout=0.3,
                        activation="gelu", embedding="piecewise", n_bins=7, d_embedding=4)
    assert net.tabm.k == 6 and len(net.tabm.backbone.blocks) == 3
    assert net.tabm.backbone.blocks[0][0].weight.shape == (12, 5 * 4)          # 5 columns x 4 numbers each
    assert isinstance(net.tabm.backbone.blocks[0][1], torch.nn.GELU)
    assert net.tabm.backbone.blocks[0][2].p == 0.3
    assert net.tabm.num_module.impl.weight.shape == (5, 7)
    with pytest.raises(UsageError, match="unknown embedding"):
        _tiny("fourier")
    with pytest.raises(UsageError, match="unknown embedding"):
        override(TrainConfig(task="t"), {"embedding": "fourier"})
    with pytest.raises(UsageError, match="heads must be at least 1"):
        override(TrainConfig(task="t"), {"heads": 0})


def test_arch_picks_the_papers_variant():
    """tabm scales every layer per member (r in, s out, a bias each); mini scales only the input once
    per member and shares every layer, bias included; packed is k separate MLPs. All return (N, k, out)."""
    torch.manual_seed(0)
    shapes = {"tabm": {"blocks.0.0.weight": (8, 5), "blocks.0.0.r": (4, 5), "blocks.0.0.s": (4, 8),
                       "blocks.0.0.bias": (4, 8)},
              "mini": {"blocks.0.0.weight": (8, 5), "blocks.0.0.bias": (8,), "affine.weight": (4, 5)},
              "packed": {"blocks.0.0.weight": (4, 5, 8), "blocks.0.0.bias": (4, 8)}}
    for arch, expected in shapes.items():
        net = _tiny(arch=arch)
        assert {n: tuple(p.shape) for n, p in net.tabm.backbone.named_parameters()} == expected
        assert net(torch.randn(7, 5)).shape == (7, 4, 3)
    with pytest.raises(UsageError, match="unknown arch"):
        _tiny(arch="huge")
    with pytest.raises(UsageError, match="unknown arch"):
        override(TrainConfig(task="t"), {"arch": "huge"})


def test_the_loss_is_the_members_mean_loss():
    torch.manual_seed(0)
    out, y = torch.randn(6, 4, 3), torch.randint(0, 3, (6,))
    each = [F.cross_entropy(out[:, j], y) for j in range(4)]
    assert loss_fn(_task("multiclass"))(out, y).item() == pytest.approx(torch.stack(each).mean().item())
    yb = torch.randint(0, 2, (6,))
    each = [F.binary_cross_entropy_with_logits(out[:, j, 0], yb.float()) for j in range(4)]
    got = loss_fn(_task("binary", True))(out[..., :1], yb).item()
    assert got == pytest.approx(torch.stack(each).mean().item())
    assert loss_fn(_task("multiclass"))(out[:, 0], y).item() == pytest.approx(F.cross_entropy(out[:, 0], y).item())


def test_predictions_and_early_stopping_read_the_members_mean():
    torch.manual_seed(0)
    out = torch.randn(6, 4, 3) * 3
    multi = _task("multiclass")
    assert np.allclose(to_proba(multi, out), out.softmax(-1).mean(1).double().numpy())
    binary = _task("binary", True)
    assert np.allclose(to_proba(binary, out[..., :1]), out[..., 0].sigmoid().mean(1).double().numpy())
    regression = _task("regression", metric="rmse")
    assert np.allclose(to_proba(regression, out[..., :1]), out[..., 0].mean(1).double().numpy())
    y = torch.randint(0, 3, (6,))
    score, maximize = score_fn(multi)                       # logloss: the ensemble's, not the members'
    mean_p = out.softmax(-1).mean(1)
    assert not maximize and score(out, y) == pytest.approx(F.nll_loss(mean_p.log(), y).item(), rel=1e-5)
    one = out[:, 0]
    assert ensemble(multi, one) is one


def test_piecewise_bins_come_from_the_data_and_travel_with_the_weights():
    """Bins at the training rows' quantiles, a constant and a 0/1 column included; the edges are
    buffers, so a net rebuilt from its arguments and loaded from the state dict predicts the same."""
    torch.manual_seed(0)
    x = torch.cat([torch.randn(50, 3) * 10, torch.zeros(50, 1), (torch.arange(50) % 2).float()[:, None]], 1)
    net = _tiny("piecewise").eval()
    torch.nn.init.normal_(net.tabm.num_module.linear.weight)     # version B starts it at 0: the bins unseen
    before = net(x)
    net.init_from_data(x)
    after = net(x)
    assert not torch.allclose(before, after) and torch.isfinite(after).all()
    impl = net.tabm.num_module.impl
    for i, edges in enumerate(rne.compute_bins(x[:, :3], 6)):        # 6 bins each: no padding
        assert torch.allclose(impl.weight[i], 1 / edges.diff())
    assert impl.single_bin_mask.tolist()[:4] == [False, False, False, True]        # the constant column: one bin
    again = _tiny("piecewise").eval()
    again.load_state_dict(net.state_dict())
    assert torch.equal(again(x), after)


@pytest.mark.parametrize("problem, classes", [("multiclass", 3), pytest.param("binary", 2, marks=pytest.mark.slow),
                                               pytest.param("regression", 0, marks=pytest.mark.slow)])
def test_torch_learner_trains_tabm_and_predicts_the_members_mean(problem, classes, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (classes == 3) * (x[:, 1] > 0.5) if classes else x[:, 0] * 3 + 10
    task = SimpleNamespace(name="toy", problem=problem, binary=problem == "binary", monitor=None,
                           metric={"multiclass": "logloss", "binary": "logloss", "regression": "rmse"}[problem],
                           extra_metrics=(), steady_label_metrics=False, channels_last=False,
                           predict_logits=lambda model, x, batch_fn, precision: __import__(
                               "models.trainer", fromlist=["predict_logits"]).predict_logits(model, x))
    cfg = override(TrainConfig(task="toy", model="tabm"), {"heads": 3, "width": 8, "depth": 1, "epochs": 2,
                                                            "batch_size": 32, "embedding": "piecewise", "n_bins": 4})
    xt = torch.tensor(x)
    out = classes if classes > 2 else 1
    enc = Encoded(None, xt[:90], xt[90:], None, {"in_features": 4, "out_features": out}, list("abcd"), None)
    learner = TorchLearner(task, cfg, torch.device("cpu")).fit(enc, y[:90], y[90:])
    assert learner.net_.tabm.num_module.impl.weight.abs().sum() > 0      # init_from_data ran on the fold's rows
    p = learner.predict_proba(xt[90:])
    assert p.shape == ((30, 3) if classes == 3 else (30,)) and np.isfinite(p).all()
    learner.save(tmp_path / "model0.pt")
    back = TorchLearner.load(tmp_path / "model0.pt", task, torch.device("cpu"))
    assert np.allclose(back.predict_proba(xt[90:]), p)
