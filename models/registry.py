"""The model registry and the one place that turns (name, config) into an nn.Module.

A factory takes the data's shape (SHAPE keys, from the task) and the config keys it declares
at registration, `register_model(options=("width", "depth", ...))`: the mapping from config to
model is written down, not guessed from parameter names (tests/test_models.py checks every
declaration against the factory's signature and TrainConfig's fields).
"""
from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from core.errors import UsageError
from core.registry import Registry

MODELS: Registry[nn.Module] = Registry("model")
register_model = MODELS.register

SHAPE = ("in_features", "out_features", "in_channels", "num_classes", "image_size")   # from the data, never the config


def model_options(name: str) -> tuple[str, ...]:
    """The config keys model `name` reads (none for the course's fixed architectures). A learner
    combination `mlp+lightgbm` (pipelines/learners_ensemble.py) reads what its nets read."""
    if "+" in name:
        return tuple(dict.fromkeys(k for part in name.split("+") if part in MODELS for k in model_options(part)))
    MODELS.get(name)                        # an unknown name: one line listing the models
    return tuple(MODELS.tags[name].get("options", ()))


def model_args(name: str, hparams: dict[str, Any], **shape: Any) -> dict[str, Any]:
    """The keyword arguments factory `name` is built with: its declared options from `hparams`
    (a config dict) plus the data's shape. Stored with the weights, so a checkpoint rebuilds its
    own model (nanoGPT's `model_args`)."""
    unknown = sorted(set(shape) - set(SHAPE))
    if unknown:
        raise ValueError(f"model shape keys {unknown} not in {SHAPE}")
    args = {k: hparams[k] for k in model_options(name)}
    takes = inspect.signature(MODELS.get(name)).parameters       # fixed nets take some shape keys only
    args.update({k: v for k, v in shape.items() if k in takes})
    return args


def check_options(name: str, keys: set[str] | list[str], model_keys: set[str]) -> None:
    """Refuse model options the user set for a model that does not read them: `--set width=64`
    with a course net would otherwise train the same net and report a result for a setting that
    never reached it. `model_keys`: every key some registered model reads."""
    own = model_options(name) if name in MODELS or "+" in name else ()     # a learner that is no net: none
    ignored = sorted(k for k in keys if k in model_keys and k not in own)
    if ignored:
        why = "a fixed architecture: it has no options" if name in MODELS else "it reads no net's options"
        raise UsageError(f"model {name!r} does not read {', '.join(ignored)} "
                         f"({'its options: ' + ', '.join(own) if own else why})")


def all_options() -> set[str]:
    """Every config key some registered model reads."""
    return {k for n in MODELS.names() for k in model_options(n)}


def build_model(name: str, args: dict[str, Any]) -> nn.Module:
    return MODELS.create(name, **args)
