"""Every registered model: forward + backward on a tiny batch, right output shape, no NaN."""
import pytest
import torch

from core.config import TrainConfig
from models import MODELS
from models.registry import build_model, model_args


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("in_features, out_features", [(8, 1), (93, 9)])
def test_forward_backward(name, in_features, out_features):
    torch.manual_seed(0)
    args = model_args(name, TrainConfig(task="t").to_dict(), in_features=in_features, out_features=out_features)
    model = build_model(name, args)
    x = torch.randn(16, in_features)
    out = model(x)
    assert out.shape == (16, out_features)
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert torch.isfinite(out).all()


def test_course_nets_have_the_course_shapes():
    sizes = lambda m: [l.out_features for l in m if isinstance(l, torch.nn.Linear)]
    assert sizes(MODELS.create("diabetes_course")) == [6, 4, 1]
    assert sizes(MODELS.create("otto_course")) == [64, 32, 9]


def test_mlp_knobs_reach_the_net():
    m = MODELS.create("mlp", in_features=10, out_features=3, width=64, depth=3, shrink=0.5,
                      batch_norm=False, activation="gelu", input_dropout=0.1)
    widths = [l.out_features for l in m if isinstance(l, torch.nn.Linear)]
    assert widths == [64, 32, 16, 3]
    assert not any(isinstance(l, torch.nn.BatchNorm1d) for l in m)
    assert isinstance(m[0], torch.nn.Dropout)


def test_model_args_only_pass_what_the_factory_takes():
    args = model_args("otto_course", TrainConfig(task="t").to_dict(), in_features=93, out_features=9)
    assert args == {"in_features": 93, "out_features": 9}
