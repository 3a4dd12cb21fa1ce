"""Tabular nets: a configurable MLP family and the course's fixed nets, registered by name.

Every net returns logits (N, out_features); the task's loss applies the sigmoid/softmax,
which is why the course's final `Sigmoid` is not a layer here (BCEWithLogits is the
numerically stable form of Sigmoid + BCELoss). For regression the one output is the value
itself, in the transformed target's units (pipelines/target.py), and the loss is MSE.
"""
from __future__ import annotations

import torch
from torch import nn

from models.registry import register_model

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "prelu": nn.PReLU,
               "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def _activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        from core.errors import UsageError
        raise UsageError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}") from None


class Dropout(nn.Module):
    """Inverted dropout that draws 16 random bits per element instead of a float.

    Same semantics as nn.Dropout (keep with probability 1-p to within 2**-16, scale kept values
    by 1/(1-p)), but cheaper on the CPU, where torch's generator is the cost: torch's `bernoulli_`
    (what nn.Dropout uses) took a third of an Otto epoch, `rand_like(x) >= p` a sixth (one 32-bit
    draw per element). Here one 64-bit draw gives four 16-bit lanes, compared against p as
    integers, and the mask is turned into the scale in place: forward+backward of a 256x1024
    batch took 0.86 ms against rand_like's 2.1 ms (docs/benchmark-history.md).
    """

    def __init__(self, p: float):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.threshold = round(p * 65536) - 32768     # int16 lanes are uniform on [-32768, 32767]

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-2 ** 63, None)
        keep = bits.view(torch.int16)[:n].view(x.shape) >= self.threshold
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


@register_model(kind="tabular", options=("width", "depth", "shrink", "dropout", "input_dropout", "batch_norm",
                                       "activation"))
def mlp(in_features: int, out_features: int, width: int = 256, depth: int = 2, shrink: float = 0.5,
        dropout: float = 0.2, input_dropout: float = 0.0, batch_norm: bool = True,
        activation: str = "relu") -> nn.Module:
    """Linear -> [BatchNorm] -> act -> Dropout, `depth` times, widths width, width*shrink, ..."""
    layers: list[nn.Module] = [Dropout(input_dropout)] if input_dropout else []
    fan_in = in_features
    for i in range(depth):
        fan_out = max(8, round(width * shrink ** i))
        layers += [nn.Linear(fan_in, fan_out, bias=not batch_norm)]
        layers += [nn.BatchNorm1d(fan_out)] if batch_norm else []
        layers += [_activation(activation), Dropout(dropout)]
        fan_in = fan_out
    layers.append(nn.Linear(fan_in, out_features))
    return nn.Sequential(*layers)


@register_model(kind="tabular")
def diabetes_course(in_features: int = 8, out_features: int = 1) -> nn.Module:
    """The course's Pima net: 8-6-4-1 with sigmoid activations."""
    return nn.Sequential(nn.Linear(in_features, 6), nn.Sigmoid(), nn.Linear(6, 4), nn.Sigmoid(),
                         nn.Linear(4, out_features))


@register_model(kind="tabular")
def otto_course(in_features: int = 93, out_features: int = 9) -> nn.Module:
    """The course's Otto net: 93-64-32-9 with ReLU."""
    return nn.Sequential(nn.Linear(in_features, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                         nn.Linear(32, out_features))


@register_model(kind="tabular")
def logistic(in_features: int, out_features: int) -> nn.Module:
    """A single Linear layer: logistic / softmax regression, the baseline every MLP must beat."""
    return nn.Linear(in_features, out_features)
