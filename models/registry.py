"""The model registry and the one place that turns (name, config) into an nn.Module."""
from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from core.registry import Registry

MODELS: Registry[nn.Module] = Registry("model")
register_model = MODELS.register


def model_args(name: str, hparams: dict[str, Any], **shape: Any) -> dict[str, Any]:
    """The keyword arguments factory `name` accepts: the data's shape plus matching hyperparameters.

    Fixed-architecture nets (the course's) take only the shape, so MLP knobs in the
    config do not reach them. The result is stored with the weights so a checkpoint
    rebuilds its own model (nanoGPT's `model_args`).
    """
    params = inspect.signature(MODELS.get(name)).parameters
    args = {k: v for k, v in hparams.items() if k in params}
    args.update({k: v for k, v in shape.items() if k in params})
    return args


def build_model(name: str, args: dict[str, Any]) -> nn.Module:
    return MODELS.create(name, **args)
