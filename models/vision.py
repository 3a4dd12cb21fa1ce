"""Image nets: the course's fixed nets, small modern nets and an airbench-style fast default.

Every factory takes (in_channels, num_classes, image_size) plus, at most, the config's
`width` and `dropout` (vgg16_transfer also takes `weights_path`), and returns a module
mapping a float batch (N, in_channels, image_size, image_size) to logits (N, num_classes).
Parameter shapes are fixed at construction (no LazyLinear), so a state_dict loads into a
freshly built net without a forward pass. All nets accept 1x28x28 (MNIST) and 3x32x32 (CIFAR).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.registry import register_model


def _conv_out(size: int, kernel: int, pool: int = 1, padding: int = 0) -> int:
    """Side length after a stride-1 conv then a `pool`-wide max pool (floors like PyTorch)."""
    return (size + 2 * padding - kernel + 1) // pool


# --------------------------------------------------------------------------- the course's nets

@register_model(kind="image")
def mnist_mlp(in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> nn.Module:
    """The course's MNIST MLP: flattened pixels -> 512-256-128-64 with ReLU -> classes."""
    widths = [in_channels * image_size ** 2, 512, 256, 128, 64]
    layers: list[nn.Module] = [nn.Flatten()]
    for fan_in, fan_out in zip(widths, widths[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], num_classes))


@register_model(kind="image")
def cnn_basic(in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> nn.Module:
    """The course's basic CNN: two 5x5 convs (10, 20 channels) with max pool and ReLU, one Linear."""
    side = _conv_out(_conv_out(image_size, 5, 2), 5, 2)          # 28 -> 4, 32 -> 5
    return nn.Sequential(
        nn.Conv2d(in_channels, 10, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(10, 20, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(20 * side ** 2, num_classes))   # 320 inputs on MNIST


@register_model(kind="image")
def cnn_deep(in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> nn.Module:
    """The course's deeper CNN: convs 10@5x5, 20@5x5, 30@3x3, each pooled, then Linear 64-32-classes."""
    # the 3x3 conv is padded so a 28 px image still has 2x2 pixels after the third pool
    side = _conv_out(_conv_out(_conv_out(image_size, 5, 2), 5, 2), 3, 2, padding=1)
    return nn.Sequential(
        nn.Conv2d(in_channels, 10, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(10, 20, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(20, 30, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(30 * side ** 2, 64), nn.ReLU(),      # 120 inputs on 28 and 32 px
        nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, num_classes))


class InceptionA(nn.Module):
    """The course's Inception block: 1x1 (16), 5x5 (24), double 3x3 (24), pool+1x1 (24) = 88 channels."""

    out_channels = 16 + 24 + 24 + 24

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch1x1 = nn.Conv2d(in_channels, 16, 1)
        self.branch5x5 = nn.Sequential(nn.Conv2d(in_channels, 16, 1), nn.Conv2d(16, 24, 5, padding=2))
        self.branch3x3 = nn.Sequential(nn.Conv2d(in_channels, 16, 1), nn.Conv2d(16, 24, 3, padding=1),
                                       nn.Conv2d(24, 24, 3, padding=1))
        self.branch_pool = nn.Conv2d(in_channels, 24, 1)

    def forward(self, x):
        pooled = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([self.branch1x1(x), self.branch5x5(x), self.branch3x3(x), pooled], dim=1)


# 1e-2 sent this net to chance on CIFAR-10 (10.0% after 3 epochs) though it suited MNIST (99.16%);
# 3e-3 gave 99.10% and 64.75%, 1e-3 98.82% and 58.78% (BENCHMARKS.md, "The course's nets at their own lr")
@register_model(kind="image", defaults=dict(lr=3e-3))
def googlenet_course(in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> nn.Module:
    """The course's GoogLeNet-style net: two 5x5 convs, each followed by an InceptionA block."""
    side = _conv_out(_conv_out(image_size, 5, 2), 5, 2)          # Inception keeps the side
    return nn.Sequential(
        nn.Conv2d(in_channels, 10, 5), nn.MaxPool2d(2), nn.ReLU(), InceptionA(10),
        nn.Conv2d(InceptionA.out_channels, 20, 5), nn.MaxPool2d(2), nn.ReLU(), InceptionA(20),
        nn.Flatten(), nn.Linear(InceptionA.out_channels * side ** 2, num_classes))  # 1408 on MNIST


class ResidualBlock(nn.Module):
    """The course's residual block: relu(x + conv2(relu(conv1(x)))), 3x3 convs keeping the shape."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


@register_model(kind="image")
def resnet_course(in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> nn.Module:
    """The course's residual CNN: 5x5 convs (16, 32 channels), each followed by a ResidualBlock."""
    side = _conv_out(_conv_out(image_size, 5, 2), 5, 2)
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 5), nn.MaxPool2d(2), nn.ReLU(), ResidualBlock(16),
        nn.Conv2d(16, 32, 5), nn.MaxPool2d(2), nn.ReLU(), ResidualBlock(32),
        nn.Flatten(), nn.Linear(32 * side ** 2, num_classes))   # 512 inputs on MNIST


# AdamW at 1e-2 (MNIST's and CIFAR-10's defaults, set for fastnet) breaks this net, which has neither
# an activation nor BatchNorm: 3 epochs reached 91.34% on MNIST at 1e-2 and 98.99% at 1e-3, 47.89%
# and 65.83% on CIFAR-10 (10 epochs: 60.33% and 72.43%; BENCHMARKS.md, "The course's nets at their own lr")
@register_model(kind="image", defaults=dict(lr=1e-3))
def cifar_course(in_channels: int = 3, num_classes: int = 10, image_size: int = 32) -> nn.Module:
    """The course's CIFAR-10 net: three padded 5x5 convs (32, 32, 64) with max pool, Linear 64."""
    # as in the course there is no activation; max pooling is the only nonlinearity
    side = image_size // 8                                       # 32 -> 4 (Linear 1024-64), 28 -> 3
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 5, padding=2), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 5, padding=2), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * side ** 2, 64), nn.Linear(64, num_classes))


# --------------------------------------------------------------------------- pre-activation ResNet

class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus a shortcut (He et al. 2016, "Identity Mappings").

    The shortcut is the identity, or a strided 1x1 conv on the pre-activated input when the
    shape changes, so the identity path stays free of BN and ReLU.
    """

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.shortcut = (nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False)
                         if stride != 1 or in_channels != channels else None)

    def forward(self, x):
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + skip


def _preact_resnet(in_channels: int, num_classes: int, width: int, blocks: list[int],
                   dropout: float) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1, bias=False)]
    fan_in = width
    for stage, n in enumerate(blocks):                   # channels double, side halves per stage
        fan_out = width * 2 ** stage
        for i in range(n):
            layers.append(PreActBlock(fan_in, fan_out, stride=2 if stage and i == 0 else 1))
            fan_in = fan_out
    return nn.Sequential(*layers, nn.BatchNorm2d(fan_in), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Dropout(dropout), nn.Linear(fan_in, num_classes))


@register_model(kind="image", options=("width", "dropout"))
def preact_resnet(in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                  width: int = 16, dropout: float = 0.0) -> nn.Module:
    """Pre-activation ResNet-14, CIFAR style: 3 stages x 2 blocks, `width`-2w-4w channels."""
    return _preact_resnet(in_channels, num_classes, width, [2, 2, 2], dropout)


@register_model(kind="image", options=("width", "dropout"))
def preact_resnet18(in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
                    width: int = 64, dropout: float = 0.0) -> nn.Module:
    """Pre-activation ResNet-18: 4 stages x 2 blocks, 64-512 channels (11M params; wants a GPU)."""
    return _preact_resnet(in_channels, num_classes, width, [2, 2, 2, 2], dropout)


# --------------------------------------------------------------------------- DenseNet

def _bn_relu_conv(fan_in: int, fan_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(fan_in), nn.ReLU(),
                         nn.Conv2d(fan_in, fan_out, kernel, padding=kernel // 2, bias=False))


class DenseBlock(nn.Module):
    """`layers` BN-ReLU-conv3x3 layers, each seeing all earlier outputs: in + layers*growth channels."""

    def __init__(self, in_channels: int, layers: int, growth: int):
        super().__init__()
        self.layers = nn.ModuleList(_bn_relu_conv(in_channels + i * growth, growth, 3) for i in range(layers))
        self.out_channels = in_channels + layers * growth

    def forward(self, x):
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x


@register_model(kind="image")
def densenet_small(in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> nn.Module:
    """Small DenseNet (Huang et al. 2017): 3 dense blocks of 4 layers, growth 12, 0.5 transitions."""
    growth, per_block = 12, 4
    channels = 2 * growth
    layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)]
    for i in range(3):
        block = DenseBlock(channels, per_block, growth)
        layers.append(block)
        channels = block.out_channels
        if i < 2:                                   # transition: halve channels and side
            layers += [_bn_relu_conv(channels, channels // 2, 1), nn.AvgPool2d(2)]
            channels //= 2
    return nn.Sequential(*layers, nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(channels, num_classes))


# --------------------------------------------------------------------------- VGG16 transfer

class VGG16Transfer(nn.Module):
    """torchvision's VGG16 features under a small head; grey images are repeated to 3 channels."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int, dropout: float):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers
        # torchvision's own VGG16 feature stack ("features.*" keys of vgg16()): vgg16() itself
        # would also build and initialise the 4096-wide classifier (124M params, ~2 s, 0.5 GB)
        # only for it to be replaced by the head below
        self.features = make_layers(cfgs["D"])
        for m in self.features.modules():           # VGG's own init for its convs
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        self.grey = in_channels == 1
        self.size = max(32, image_size)             # 5 max pools need >= 32 px
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(512, 256), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(256, num_classes))

    def forward(self, x):
        if self.grey:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] < self.size or x.shape[-2] < self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.head(self.pool(self.features(x)))


@register_model(kind="image", options=("dropout", "weights_path"))
def vgg16_transfer(in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
                   dropout: float = 0.5, weights_path: str = "") -> nn.Module:
    """VGG16 features (frozen when loaded from `weights_path`) with a small 256-unit head."""
    from core.errors import UsageError
    if in_channels not in (1, 3):
        raise UsageError(f"vgg16_transfer takes 1- or 3-channel images, got {in_channels} channels")
    model = VGG16Transfer(in_channels, num_classes, image_size, dropout)
    if not weights_path:
        return model
    # a torchvision vgg16 state_dict (ImageNet weights, which expect ImageNet-normalised input);
    # only its features are used, so a features-only dict with the same keys loads too
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        model.features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()
                                        if k.startswith("features.")})
    except Exception as e:                          # missing, unreadable, or not a VGG16 state_dict
        why = ("no such file" if isinstance(e, FileNotFoundError)
               else f"not a VGG16 state_dict ({type(e).__name__})")
        raise UsageError(f"cannot load VGG16 weights from {weights_path}: {why}") from None
    model.features.requires_grad_(False)
    return model


# --------------------------------------------------------------------------- airbench-style fast net

class _BatchNorm(nn.BatchNorm2d):
    """airbench's BatchNorm: keeps 0.6 of the running stats per step (torch momentum 0.4), eps 1e-12,
    no learned scale (the following GELU and conv absorb it)."""

    def __init__(self, channels: int):
        super().__init__(channels, eps=1e-12, momentum=1 - 0.6)
        self.weight.requires_grad_(False)


class _Conv(nn.Conv2d):
    """3x3 'same' conv without bias, its first in_channels filters initialised to the identity
    (dirac) so a fresh net starts close to passing its input through (airbench)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 3, padding="same", bias=False)

    def reset_parameters(self):
        super().reset_parameters()
        nn.init.dirac_(self.weight.data[:self.in_channels])


class ConvGroup(nn.Sequential):
    """conv -> max pool 2 -> BN -> GELU -> conv -> BN -> GELU: halves the side."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(_Conv(in_channels, out_channels), nn.MaxPool2d(2), _BatchNorm(out_channels),
                         nn.GELU(), _Conv(out_channels, out_channels), _BatchNorm(out_channels), nn.GELU())


class FastNet(nn.Module):
    """Whitening stem (2x2 conv, 2*C*4 channels) + GELU, three ConvGroups, global max pool, Linear/9."""

    kernel = 2                                      # whitening patch side, px
    whiten_bias_epochs = 3                          # the stem's bias trains this long, then freezes (airbench)

    def __init__(self, in_channels: int, num_classes: int, width: int, scale: float = 1 / 9):
        super().__init__()
        # no padding: 32 px -> 31 -> 15 -> 7 -> 3 and 28 -> 27 -> 13 -> 6 -> 3 before the max pool
        self.whiten = nn.Conv2d(in_channels, 2 * in_channels * self.kernel ** 2, self.kernel)
        widths = [self.whiten.out_channels, 2 * width, 4 * width, 4 * width]
        self.body = nn.Sequential(nn.GELU(), *(ConvGroup(a, b) for a, b in zip(widths, widths[1:])),
                                  nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.head = nn.Linear(widths[-1], num_classes, bias=False)
        self.scale = scale                          # airbench's logit temperature, tuned with its lr

    def forward(self, x):
        return self.head(self.body(self.whiten(x))) * self.scale

    def on_epoch_start(self, epoch: int) -> None:
        """From epoch 4 on (1-based) the stem's bias is frozen too: as in airbench, and then no step
        back-propagates into the first conv's input, ~8% of a CIFAR-10 step on the CPU."""
        self.whiten.bias.requires_grad_(epoch <= self.whiten_bias_epochs)

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor) -> None:
        """airbench's stem: whiten the training images' 2x2 patches, then freeze those filters
        (the bias trains for `whiten_bias_epochs`). `images` are normalised training images (N, C, H, W)."""
        init_whitening(self.whiten, images.float())
        self.whiten.weight.requires_grad_(False)


@register_model(kind="image", options=("width",))
def fastnet(in_channels: int = 1, num_classes: int = 10, image_size: int = 28, width: int = 32) -> nn.Module:
    """Fast default (airbench style): whitening stem, 3 conv groups of 2w-4w-4w channels, GELU, BN."""
    return FastNet(in_channels, num_classes, width)


@torch.no_grad()
def init_whitening(conv: nn.Conv2d, images: torch.Tensor, eps: float = 5e-4, chunk: int = 256) -> None:
    """Set `conv` to whiten the k x k patches of `images` (N, C, H, W), as airbench's stem.

    Filters are the patch covariance's eigenvectors v_i / sqrt(lambda_i + eps), largest
    first, followed by their negatives (so a ReLU/GELU after the conv loses no direction);
    the bias centres the patches. The first half of the output channels then has zero mean
    and covariance ~identity over the images' patches. A few thousand images suffice.
    """
    c, k = images.shape[1], conv.kernel_size[0]
    dim = c * k * k
    if conv.in_channels != c or conv.out_channels != 2 * dim or conv.kernel_size != (k, k):
        raise ValueError(f"whitening {c}-channel {k}x{k} patches needs Conv2d({c}, {2 * dim}, {k}), "
                         f"got {conv}")
    f64 = dict(dtype=torch.float64, device=images.device)
    total, moment, n = torch.zeros(dim, **f64), torch.zeros(dim, dim, **f64), 0
    for batch in images.split(chunk):               # chunks keep the (patches, dim) matrix small
        patches = F.unfold(batch.double(), k).transpose(1, 2).reshape(-1, dim)   # rows: (C, kh, kw) flat
        total += patches.sum(0)
        moment += patches.T @ patches
        n += len(patches)
    mean = total / n
    eigenvalues, eigenvectors = torch.linalg.eigh(moment / n - torch.outer(mean, mean))
    filters = (eigenvectors / torch.sqrt(eigenvalues.clamp(min=0) + eps)).T.flip(0)    # (dim, dim)
    conv.weight.copy_(torch.cat([filters, -filters]).reshape(conv.weight.shape))
    if conv.bias is not None:
        conv.bias.copy_(torch.cat([-filters @ mean, filters @ mean]))
