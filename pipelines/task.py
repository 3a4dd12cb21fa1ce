"""What a competition is: the `Task` (tables) or `ImageTask` spec each `pipelines/<name>.py` fills in,
and the registry of their factories.

A task file declares everything particular to its competition (files, columns, target,
metric, submission format, feature builder, default hyperparameters, search space);
the generic stages (pipelines/inputs.py, cv.py, train.py, predict.py) do the rest.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from sklearn.base import TransformerMixin

from core.config import TrainConfig, override
from core.errors import UsageError
from core.registry import Registry

DATA_ROOT = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class Task:
    name: str
    title: str                           # one line for `cli.py tasks`
    files: dict[str, str]                # role (train/test/sample) -> file name as the competition ships it
    target: str                          # target column in the train file
    classes: tuple                       # target values, in the order of the model's outputs
    metric: str                          # primary CV metric, a key of pipelines.metrics.METRICS
    features: Callable[[TrainConfig], TransformerMixin]   # fresh, unfitted feature pipeline
    submission: Callable[[np.ndarray, np.ndarray, "Task"], pd.DataFrame]  # (ids, proba) -> file
    search_space: Callable[[Any], dict] # optuna trial -> TrainConfig overrides
    numeric: tuple[str, ...] = ()        # columns that must parse as numbers (train and test)
    required: tuple[str, ...] = ()       # other columns the features read
    nonnegative: bool = False            # numeric columns are counts: a negative value is bad data
    id_col: str | None = None            # row id column (None: row number)
    header: bool = True                  # False: headerless file, columns named below
    column_names: tuple[str, ...] = ()   # names for a headerless file, in file order
    extra_metrics: tuple[str, ...] = ()  # reported beside the primary metric
    monitor: str | None = None           # early-stopping signal: 'loss' or a METRICS name (None: `metric`)
    kaggle: str | None = None            # competition slug for the Kaggle API
    kaggle_ids: range | None = None      # ids of the competition's test rows, in submission order (`submit` checks)
    defaults: dict = field(default_factory=dict)   # TrainConfig overrides that make the default run
    # how the default model trains, over `defaults`: only when that model is chosen (another model
    # keeps `defaults` and its own, as a recipe tuned for one net can wreck another)
    recipe: dict = field(default_factory=dict)
    min_folds: int = 2                   # tables need k-fold CV; image tasks allow 1 (a holdout)
    kind = "tabular"

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    @property
    def out_features(self) -> int:
        return 1 if self.binary else len(self.classes)

    @property
    def bundled(self) -> Path:
        return DATA_ROOT / self.name

    @property
    def default_params(self) -> dict:
        """What the default run sets: the defaults with the default model's recipe."""
        return {**self.defaults, **self.recipe}

    def config(self, **overrides) -> TrainConfig:
        """The task's defaults (with its recipe when the model is the default one), then the chosen
        model's own (`register_model(defaults=...)`: a course net without BatchNorm wants a lower lr
        than the task's default net), then `overrides`."""
        from models import MODELS       # here, not at the top: listing the tasks needs no torch
        default_model = self.defaults.get("model", TrainConfig.model)
        model = overrides.get("model", default_model)
        tags = MODELS.tags.get(model, {})           # an unknown name fails later, listing every model
        if tags and tags.get("kind") != self.kind:
            raise UsageError(f"model {model!r} is for {tags.get('kind')} data, but {self.name} has {self.kind} "
                             f"data; its models: {', '.join(MODELS.names(kind=self.kind))}")
        model_defaults = tags.get("defaults", {})
        recipe = self.recipe if model == default_model else {}
        cfg = override(TrainConfig(task=self.name), {**self.defaults, **recipe, **model_defaults, **overrides})
        if cfg.folds < self.min_folds:
            raise UsageError(f"--folds must be at least {self.min_folds} for {self.name}, got {cfg.folds}")
        return cfg


TASKS: Registry["Task | ImageTask"] = Registry("task")
register_task = TASKS.register


@dataclass(frozen=True)
class ImageTask:
    """An image-classification competition: images in, one class per image out."""
    name: str
    title: str
    classes: tuple                       # class names in label-index order
    channels: int                        # 1 (grey) or 3 (RGB); predict-image converts to this
    size: int                            # square side in pixels
    read_layout: Callable[[Path], Any]   # folder -> data.images.ImageSet, or None when no known layout
    download: Callable[[Path], None]     # fetch into a folder (torchvision); raises UsageError offline
    submission: Callable[[np.ndarray, np.ndarray, "ImageTask"], pd.DataFrame]  # (ids, proba) -> file
    search_space: Callable[[Any], dict]
    flip: bool = False                   # horizontal-flip augmentation and TTA (not for digits)
    translate: int = 2                   # max random shift in pixels per training image
    tta_translate: int = 0               # TTA: also average views shifted by +-this many pixels (0 = off)
    metric: str = "accuracy"
    extra_metrics: tuple[str, ...] = ()
    monitor: str | None = None
    id_col: str | None = None
    kaggle: str | None = None            # competition slug for the Kaggle API
    kaggle_ids: range | None = None      # ids of the competition's test images, in submission order
    defaults: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)      # as Task's: the default model's own training recipe
    min_folds: int = 1                   # 1 = train on the official train split with a held-out slice
    kind = "image"
    binary = False

    @property
    def out_features(self) -> int:
        return len(self.classes)

    @property
    def bundled(self) -> Path:
        return DATA_ROOT / self.name

    default_params = Task.default_params
    config = Task.config        # the same defaults + checked overrides + min_folds rule as tables
