"""Every registered model: forward + backward on a tiny batch, right output shape, no NaN."""
import pytest
import torch

from core.config import TrainConfig
from models import MODELS
from models.mlp import Dropout
from models.registry import build_model, model_args


@pytest.mark.parametrize("name", MODELS.names(kind="tabular"))
@pytest.mark.parametrize("in_features, out_features", [(8, 1), (93, 9)])
def test_forward_backward(name, in_features, out_features):
    torch.manual_seed(0)
    args = model_args(name, TrainConfig(task="t").to_dict(), in_features=in_features, out_features=out_features)
    model = build_model(name, args)
    x = torch.randn(16, in_features)
    out = model(x)
    # logits (N, out); an ensemble net (TabM) gives its k members' (N, k, out): pipelines/proba.py reads both
    assert out.shape == ((16, args["heads"], out_features) if "heads" in args else (16, out_features))
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
    assert isinstance(m[0], Dropout) and m[0].p == 0.1


def test_dropout_matches_torch_semantics():
    torch.manual_seed(0)
    x = torch.ones(200_000)
    drop = Dropout(0.4)
    y = drop(x)
    kept = y != 0
    assert kept.float().mean().item() == pytest.approx(0.6, abs=0.01)
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.6))
    assert y.mean().item() == pytest.approx(1.0, abs=0.02)          # unbiased, like nn.Dropout
    for lane in range(4):      # each 16-bit lane of the 64-bit draws is a fair coin, not just their mean
        assert kept[lane::4].float().mean().item() == pytest.approx(0.6, abs=0.01)
    drop.eval()
    assert torch.equal(drop(x), x)


def test_dropout_gradient_is_the_mask_and_any_shape_works():
    torch.manual_seed(1)
    x = torch.randn(7, 3, 5, requires_grad=True)          # 105 elements: not a multiple of four
    y = Dropout(0.25)(x)
    y.sum().backward()
    kept = y.detach() != 0
    assert y.shape == x.shape
    assert torch.allclose(x.grad, kept.float() / 0.75)
    assert torch.allclose(y.detach()[kept], x.detach()[kept] / 0.75)
    with pytest.raises(ValueError):
        Dropout(1.0)


def test_model_args_only_pass_what_the_factory_takes():
    args = model_args("otto_course", TrainConfig(task="t").to_dict(), in_features=93, out_features=9)
    assert args == {"in_features": 93, "out_features": 9}


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "triangle"])
@pytest.mark.parametrize("rows", [3, 10, 40])
def test_trainer_handles_tiny_data_and_restores_best(schedule, rows):
    """A handful of steps must not break the schedule; the returned model is the best epoch's."""
    from core.config import override
    from models.trainer import fit, predict_logits
    torch.manual_seed(0)
    x = torch.randn(rows, 4)
    y = (x[:, 0] > 0).long()
    cfg = override(TrainConfig(task="t"), {"epochs": 6, "batch_size": 4, "schedule": schedule, "patience": 3})
    model = MODELS.create("mlp", in_features=4, out_features=2, width=8)
    loss = torch.nn.functional.cross_entropy
    res = fit(model, x, y, x, y, cfg=cfg, loss_fn=loss, score_fn=lambda lg, t: loss(lg, t).item(),
              maximize=False, generator=torch.Generator().manual_seed(0))
    assert 1 <= res.best_epoch <= len(res.history) <= 6
    assert loss(predict_logits(res.model, x), y).item() == pytest.approx(res.best_score, rel=1e-5)
    assert res.best_score == min(r["val_score"] for r in res.history)


def test_trainer_tells_the_batch_transform_each_epoch_before_its_batches():
    """The alternating flip reads its side from `on_epoch_start`: called once per epoch, in order,
    before that epoch's training batches (evaluation batches come after)."""
    from models.trainer import fit
    calls = []

    class Recording:
        def on_epoch_start(self, epoch):
            calls.append(("epoch", epoch))

        def __call__(self, xb, training):
            if training and calls[-1][0] == "epoch":
                calls.append(("train", calls[-1][1]))
            return xb
    torch.manual_seed(0)
    x = torch.randn(20, 4)
    y = (x[:, 0] > 0).long()
    loss = torch.nn.functional.cross_entropy
    fit(MODELS.create("mlp", in_features=4, out_features=2, width=8), x, y, x, y,
        cfg=TrainConfig(task="t", epochs=3, batch_size=8, patience=100), loss_fn=loss,
        score_fn=lambda lg, t: loss(lg, t).item(), maximize=False, generator=torch.Generator().manual_seed(0),
        batch_transform=Recording())
    assert calls == [("epoch", 1), ("train", 1), ("epoch", 2), ("train", 2), ("epoch", 3), ("train", 3)]


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_trainer_runs_the_forward_pass_at_the_configured_precision(precision, dtype):
    """Training and validation forward passes autocast to `cfg.precision`; the weights, the returned
    logits and the score stay float32, and the score is what `predict_logits` at that precision gives."""
    from models.trainer import fit, predict_logits
    torch.manual_seed(0)
    x = torch.randn(40, 4)
    y = (x[:, 0] > 0).long()
    model = MODELS.create("mlp", in_features=4, out_features=2, width=8)
    seen = []
    model[0].register_forward_hook(lambda mod, inp, out: seen.append((mod.training, out.dtype)))
    loss = torch.nn.functional.cross_entropy
    res = fit(model, x, y, x, y, cfg=TrainConfig(task="t", epochs=2, batch_size=16, precision=precision),
              loss_fn=loss, score_fn=lambda lg, t: loss(lg, t).item(), maximize=False,
              generator=torch.Generator().manual_seed(0))
    assert {training for training, _ in seen} == {True, False} and {d for _, d in seen} == {dtype}
    assert all(p.dtype == torch.float32 for p in res.model.parameters())
    logits = predict_logits(res.model, x, precision=precision)
    assert logits.dtype == torch.float32
    assert loss(logits, y).item() == pytest.approx(res.best_score, rel=1e-6)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "triangle"])
def test_sgd_learns_with_nesterov_momentum_held_and_frozen_weights_untouched(schedule):
    """`optimizer=sgd` is Nesterov SGD at `cfg.momentum` through the whole schedule (one-cycle
    cycles only AdamW's beta1), it fits a separable problem, and a frozen parameter is never
    stepped nor decayed."""
    from core.config import override
    from models.trainer import fit, make_optimizer, make_schedule
    torch.manual_seed(0)
    x = torch.randn(200, 4)
    y = (x[:, 0] - x[:, 1] > 0).long()
    cfg = override(TrainConfig(task="t"), {"optimizer": "sgd", "lr": 0.2, "momentum": 0.8, "epochs": 8,
                                           "batch_size": 32, "schedule": schedule, "weight_decay": 1e-3})
    model = MODELS.create("mlp", in_features=4, out_features=2, width=16)
    frozen = model[1].weight                           # the first BatchNorm1d's scale
    frozen.requires_grad_(False)
    before = frozen.detach().clone()
    loss = torch.nn.functional.cross_entropy
    res = fit(model, x, y, x, y, cfg=cfg, loss_fn=loss, maximize=True,
              score_fn=lambda lg, t: (lg.argmax(1) == t).float().mean().item(),
              generator=torch.Generator().manual_seed(0))
    assert res.best_score >= 0.95
    assert torch.equal(frozen, before)

    opt = make_optimizer(torch.nn.Linear(1, 1), cfg)
    sched = make_schedule(opt, cfg, total_steps=20)
    for _ in range(10):
        opt.step()
        sched.step()
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["nesterov"]
    assert opt.param_groups[0]["momentum"] == 0.8 and opt.param_groups[0]["lr"] > 0


def test_norm_lr_scale_gives_batchnorm_its_own_rate_and_the_same_decay_per_step():
    """airbench's 64x on BatchNorm: a group of their own whose lr is scaled and whose decay is
    divided, so lr * decay (the per-step shrink) is everyone's; the schedule keeps the ratio."""
    from core.config import override
    from models.trainer import make_optimizer, make_schedule
    model = MODELS.create("mlp", in_features=4, out_features=2, width=8)
    norm = {id(p) for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d) for p in m.parameters()}
    assert len(make_optimizer(model, TrainConfig(task="t")).param_groups) == 1          # scale 1: as before
    for optimizer, schedule in [("sgd", "triangle"), ("adamw", "onecycle"), ("sgd", "cosine")]:
        cfg = override(TrainConfig(task="t"), {"optimizer": optimizer, "schedule": schedule, "lr": 0.1,
                                               "weight_decay": 0.01, "norm_lr_scale": 64.0})
        opt = make_optimizer(model, cfg)
        rest, scaled = opt.param_groups
        assert {id(p) for p in scaled["params"]} == norm and not norm & {id(p) for p in rest["params"]}
        assert len(rest["params"]) + len(scaled["params"]) == len(list(model.parameters()))
        sched = make_schedule(opt, cfg, total_steps=40)
        for _ in range(7):
            opt.step()
            sched.step()
            assert scaled["lr"] == pytest.approx(64 * rest["lr"])
        assert scaled["lr"] * scaled["weight_decay"] == pytest.approx(rest["lr"] * rest["weight_decay"])


def test_triangle_schedule_is_airbenchs():
    """Linear from 0.2 of the peak to the peak at 23% of the steps, then linear down to 0.07."""
    from core.config import override
    from models.trainer import make_optimizer, make_schedule
    cfg = override(TrainConfig(task="t"), {"optimizer": "sgd", "schedule": "triangle", "lr": 1.0})
    opt = make_optimizer(torch.nn.Linear(2, 2), cfg)
    sched = make_schedule(opt, cfg, total_steps=100)       # the peak lands on step 22 exactly
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.2) and max(lrs) == pytest.approx(1.0) and lrs[-1] == pytest.approx(0.07)
    peak = lrs.index(max(lrs))
    assert peak == 22
    steps = torch.tensor(lrs).diff()
    assert (steps[:peak] > 0).all() and (steps[peak:] < 0).all()
    assert steps[:peak].std() < 1e-6 and steps[peak + 1:].std() < 1e-6          # straight lines


def test_lookahead_starts_in_epoch_4_and_leaves_each_epoch_on_its_average():
    """Before epoch 4 the weights are the optimizer's alone; from then on every 5th step pulls them
    into an EMA (a first state is a copy), and an epoch ends on the EMA itself."""
    from models.trainer import Lookahead
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    la = Lookahead(total_steps=100)
    for step in range(1, 16):
        la.step(model, step, epoch=3)
    assert la.state is None
    la.step(model, 16, epoch=4)                  # not a 5th step
    assert la.state is None
    la.step(model, 20, epoch=4)
    assert la.state is not None and set(la.state) == {k for k, v in model.state_dict().items() if v.is_floating_point()}
    before = {k: v.clone() for k, v in la.state.items()}
    with torch.no_grad():
        model[0].weight.add_(1.0)                # an optimizer step moves the weights
    la.step(model, 25, epoch=4)
    decay = 0.95 ** 5 * 0.25 ** 3
    want = before["0.weight"] * decay + (before["0.weight"] + 1) * (1 - decay)
    assert torch.allclose(la.state["0.weight"], want) and torch.allclose(model[0].weight, want)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    la.end_epoch(model)                          # the epoch ends on the EMA, which stays put
    assert torch.allclose(model[0].weight, want) and torch.allclose(la.state["0.weight"], want)
    assert model[1].num_batches_tracked.dtype == torch.int64                       # integer buffers untouched


def test_every_model_declares_exactly_the_config_keys_its_factory_reads():
    """The config -> model mapping is written at register_model(options=...); a factory parameter
    that is neither a shape key nor declared, or a declared key TrainConfig lacks, is a bug."""
    import dataclasses
    import inspect
    from models.registry import SHAPE, model_options
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for name in MODELS.names():
        takes = set(inspect.signature(MODELS.get(name)).parameters) - set(SHAPE)
        assert set(model_options(name)) == takes, name
        assert takes <= fields, name


def test_setting_a_model_option_the_model_does_not_read_is_refused():
    from core.errors import UsageError
    from models.registry import all_options, check_options
    check_options("mlp", {"width", "lr"}, all_options())           # mlp reads width; lr is the trainer's
    with pytest.raises(UsageError, match="'otto_course' does not read width .*fixed architecture"):
        check_options("otto_course", {"width", "lr"}, all_options())
    with pytest.raises(UsageError, match="does not read depth .*its options: width, dropout"):
        check_options("preact_resnet", {"depth"}, all_options())
