"""Every registered image model on MNIST- and CIFAR-shaped batches, plus the course nets'
sizes, the whitening stem and VGG16 weight loading."""
import inspect

import pytest
import torch
from torch import nn

from core.errors import UsageError
from models import MODELS
from models.vision import init_whitening

SHAPES = [(1, 28), (3, 32)]                         # (channels, side px): MNIST, CIFAR-10


@pytest.mark.parametrize("name", MODELS.names(kind="image"))
@pytest.mark.parametrize("channels, side", SHAPES)
def test_forward_backward(name, channels, side):
    torch.manual_seed(0)
    model = MODELS.create(name, in_channels=channels, num_classes=10, image_size=side)
    out = model(torch.randn(4, channels, side, side))
    assert out.shape == (4, 10)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", MODELS.names(kind="image"))
def test_factories_follow_the_image_signature(name):
    """The config reaches factories by argument name, so only the agreed names may appear."""
    factory = MODELS.get(name)
    params = list(inspect.signature(factory).parameters)
    assert params[:3] == ["in_channels", "num_classes", "image_size"]
    assert set(params[3:]) <= {"width", "dropout", "weights_path"}
    assert (factory.__doc__ or "").strip()          # first line is what `cli.py models` shows


@pytest.mark.parametrize("name", MODELS.names(kind="image"))
def test_state_dict_loads_into_a_fresh_net(name):
    """Shapes are fixed at construction: a checkpoint loads without a forward pass."""
    torch.manual_seed(0)
    state = MODELS.create(name, in_channels=3, num_classes=10, image_size=32).state_dict()
    MODELS.create(name, in_channels=3, num_classes=10, image_size=32).load_state_dict(state)


def _linear_shapes(model: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]


def test_course_nets_have_the_course_sizes():
    mnist = dict(in_channels=1, num_classes=10, image_size=28)
    assert _linear_shapes(MODELS.create("mnist_mlp", **mnist)) == [
        (784, 512), (512, 256), (256, 128), (128, 64), (64, 10)]
    assert _linear_shapes(MODELS.create("cnn_basic", **mnist)) == [(320, 10)]
    assert _linear_shapes(MODELS.create("googlenet_course", **mnist)) == [(1408, 10)]
    assert _linear_shapes(MODELS.create("resnet_course", **mnist)) == [(512, 10)]
    assert _linear_shapes(MODELS.create("cifar_course", in_channels=3, num_classes=10, image_size=32)) == [
        (1024, 64), (64, 10)]
    assert _linear_shapes(MODELS.create("cifar_course", **mnist)) == [(576, 64), (64, 10)]  # 28 // 8 = 3


def test_inception_block_outputs_88_channels():
    from models.vision import InceptionA
    assert InceptionA(10)(torch.randn(2, 10, 12, 12)).shape == (2, 88, 12, 12)


def test_width_reaches_the_fast_and_resnet_nets():
    def convs(m):
        return [c.out_channels for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert max(convs(MODELS.create("fastnet", width=8))) == 32
    assert max(convs(MODELS.create("preact_resnet", width=8))) == 32


def _correlated_images(n: int = 64, side: int = 32) -> torch.Tensor:
    """Colour-mixed, spatially blurred noise with an offset: patches far from white."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, side + 2, side + 2, generator=g)
    x = torch.nn.functional.conv2d(x, torch.rand(3, 3, 3, 3, generator=g))     # mixes pixels and channels
    return x + 0.3 * torch.randn(x.shape, generator=g) + torch.tensor([2.0, -1.0, 0.5]).view(1, 3, 1, 1)


def _channel_cov(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = out.transpose(0, 1).reshape(out.shape[1], -1).double()     # (channels, N*H*W)
    return flat.mean(1), torch.cov(flat)


def test_init_whitening_gives_identity_patch_covariance():
    torch.manual_seed(0)
    images = _correlated_images()
    model = MODELS.create("fastnet", in_channels=3, num_classes=10, image_size=32)
    stem = model.whiten
    dim = stem.out_channels // 2                    # 3 channels * 2 * 2 px = 12 patch directions
    _, before = _channel_cov(stem(images).detach()[:, :dim])
    assert (before - torch.eye(dim, dtype=before.dtype)).abs().max() > 0.1
    init_whitening(stem, images)
    out = stem(images).detach()
    mean, cov = _channel_cov(out[:, :dim])
    assert torch.allclose(cov, torch.eye(dim, dtype=cov.dtype), atol=0.02)
    assert mean.abs().max() < 1e-3
    assert torch.allclose(out[:, dim:], -out[:, :dim], atol=1e-4)           # negated directions
    assert torch.isfinite(model(images[:4])).all()


def test_init_whitening_rejects_a_conv_of_the_wrong_width():
    with pytest.raises(ValueError, match="needs Conv2d"):
        init_whitening(nn.Conv2d(3, 16, 2), torch.randn(2, 3, 8, 8))


def test_vgg16_missing_weights_is_a_usage_error(tmp_path):
    missing = tmp_path / "vgg16.pth"
    with pytest.raises(UsageError, match="vgg16.pth"):
        MODELS.create("vgg16_transfer", in_channels=3, num_classes=10, image_size=32, weights_path=str(missing))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(UsageError, match="garbage.pth"):
        MODELS.create("vgg16_transfer", weights_path=str(garbage))


@pytest.mark.slow
def test_vgg16_loads_torchvision_weights_and_freezes_features(tmp_path):
    import torchvision
    torch.manual_seed(0)
    state = torchvision.models.vgg16(weights=None).state_dict()
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    del state
    model = MODELS.create("vgg16_transfer", in_channels=1, num_classes=10, image_size=28, weights_path=str(path))
    saved = torch.load(path, weights_only=True)
    assert all(torch.equal(v, saved[f"features.{k}"]) for k, v in model.features.state_dict().items())
    assert not any(p.requires_grad for p in model.features.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    out = model(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.head.parameters())


def test_fastnet_init_from_data_whitens_and_freezes_the_stem():
    """What the pipeline calls before training: the stem whitens the data and does not train."""
    torch.manual_seed(0)
    images = _correlated_images()
    model = MODELS.create("fastnet", in_channels=3, num_classes=10, image_size=32)
    model.init_from_data(images)
    frozen = model.whiten.weight.detach().clone()
    bias = model.whiten.bias.detach().clone()
    assert not model.whiten.weight.requires_grad and model.whiten.bias.requires_grad
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(images[:16]), torch.arange(16) % 10).backward()
        opt.step()
    assert torch.equal(model.whiten.weight, frozen)             # AdamW skips a parameter without grad
    assert not torch.equal(model.whiten.bias, bias)


def test_fastnet_stem_bias_trains_for_three_epochs_then_freezes():
    """airbench's schedule for the stem, through the one trainer: the bias moves in epochs 1-3
    and not after (then nothing back-propagates into the first conv's input); the rest trains on."""
    from core.config import TrainConfig, override
    from models.trainer import fit
    torch.manual_seed(0)
    images = _correlated_images()
    y = torch.arange(len(images)) % 10
    model = MODELS.create("fastnet", in_channels=3, num_classes=10, image_size=32, width=4)
    model.init_from_data(images)
    snapshots = [(model.whiten.bias.detach().clone(), model.head.weight.detach().clone())]
    cfg = override(TrainConfig(task="t"), {"epochs": 5, "batch_size": 32, "patience": 100})
    fit(model, images, y, images[:32], y[:32], cfg=cfg, loss_fn=nn.functional.cross_entropy,
        score_fn=lambda lg, t: 0.0, maximize=True, generator=torch.Generator().manual_seed(0),
        on_epoch=lambda row: snapshots.append((model.whiten.bias.detach().clone(),
                                               model.head.weight.detach().clone())))
    bias_moved = [not torch.equal(a[0], b[0]) for a, b in zip(snapshots, snapshots[1:])]
    head_moved = [not torch.equal(a[1], b[1]) for a, b in zip(snapshots, snapshots[1:])]
    assert bias_moved == [True, True, True, False, False] and all(head_moved)


@pytest.mark.slow
def test_a_saved_vgg16_transfer_model_loads_after_its_pretrained_file_is_gone(tmp_path):
    """predict/predict-image rebuild a run from its directory alone: the fold checkpoint holds
    every weight, so the ImageNet file it was trained from need not exist any more."""
    import torchvision

    from pipelines.runs import load_model, save_model
    weights = tmp_path / "vgg16.pth"
    torch.save(torchvision.models.vgg16(weights=None).state_dict(), weights)
    args = dict(in_channels=3, num_classes=10, image_size=32, dropout=0.5, weights_path=str(weights))
    model = MODELS.create("vgg16_transfer", **args).eval()
    save_model(tmp_path / "model0.pt", "vgg16_transfer", args, model)
    weights.unlink()
    loaded = load_model(tmp_path / "model0.pt", torch.device("cpu"))
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(loaded(x), model(x))
