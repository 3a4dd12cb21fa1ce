"""What a competition is: `TaskBase`, what every task answers; `Task`, the table competitions'
spec each `tasks/<name>.py` fills in (`ImageTask`, in tasks/image_task.py, for images); and
the registry of their factories.

A task file declares everything particular to its competition (files, columns, target,
metric, submission format, feature builder, default hyperparameters, search space);
the generic stages (pipelines/inputs.py, cv.py, train.py, predict.py) do the rest, calling the
task's methods where tables and images differ: reading the data, encoding a fold, the views a
prediction averages, preparing a test set for a fold's model. Those methods import torch and the
readers where they run: listing the tasks needs neither.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection

import numpy as np
import pandas as pd
from sklearn.base import TransformerMixin

from core.config import TrainConfig, override
from core.errors import UsageError
from core.registry import Registry

DATA_ROOT = Path(__file__).resolve().parent.parent / "data"
PROBLEMS = ("binary", "multiclass", "regression")

log = logging.getLogger(__name__)


@dataclass
class Encoded:
    """One fold's model inputs, as a task's `encode_fold` gives them: tensors on the device, the
    fitted encoder, the data's shape."""
    encoder: object
    x_train: "torch.Tensor"
    x_val: "torch.Tensor"
    x_test: "torch.Tensor | None"
    shape: dict                  # model_args shape kwargs (in_features / in_channels, ...)
    columns: list[str]           # encoded column order (tables) or channel names (images)
    batch_fn: Callable | None    # per-batch normalise/augment (images), None for tables


class TaskBase:
    """What every task answers, tables or images. A subclass is a frozen dataclass with `name`,
    `classes`, `defaults`, `recipe`, `min_folds`, `kind` and `id_col`, and these methods, in the
    order a run calls them:

        load(cfg, device, data_dir, cache_dir) -> (train, test, sample, y, test_ids, test_y)
        encode_fold(cfg, inp, tr, va, test) -> Encoded        fit on the fold's training rows only
        predict_logits(model, x, batch_fn, precision)         the views a prediction averages
        row_ids(train) -> ids                                 oof.csv's id column
        load_test(data_dir, input_path, cache_dir) -> (data, ids, sample)      `predict`
        test_input(data, device); fold_input(encoder, columns, x, device, fold_dir) -> (x, batch_fn)
        read_images(paths) -> (files, uint8 images)           `predict-image`
    """
    parallel_folds = False               # True: on the CPU, folds train in worker processes, one per core
    # False: a label metric (accuracy, f1, ...) is too coarse to early-stop on, so a task naming no
    # `monitor` stops on the validation loss; True: its holdout is large enough (images: 5,000+
    # rows move accuracy in 0.02% steps) to stop on the metric itself
    steady_label_metrics = False
    spec = None                          # the CompetitionSpec an inferred task was built from (tasks/generic.py)
    channels_last = False                # True: NHWC on CUDA, faster convs on tensor cores
    image_grids = False                  # True: --tensorboard draws training and misclassified images
    spec = None                          # the CompetitionSpec of a task inferred from its files (tasks/generic.py)
    transforms = ("none",)               # the values of config key `transform` this task's features read

    @property
    def bundled(self) -> Path:
        return DATA_ROOT / self.name

    @property
    def problem(self) -> str:
        """'binary' | 'multiclass' | 'regression' (Task sets it as a field; images classify)."""
        return "binary" if self.binary else "multiclass"

    def params(self, model: str | None = None) -> dict:
        """What a run of `model` (default: the task's own) sets before the user's overrides: the task's
        defaults, then the model's own defaults (`register_model(defaults=...)`: a course net without
        BatchNorm wants a lower lr than the task's default net), then the task's recipe when `model`
        is the default one: measured on this task for this model, it is the more specific of the two."""
        from models import MODELS       # here, not at the top: listing the tasks needs no torch
        default_model = self.defaults.get("model", TrainConfig.model)
        model = default_model if model is None else model
        recipe = self.recipe if model == default_model else {}
        return {**self.defaults, **MODELS.tags.get(model, {}).get("defaults", {}), **recipe, "model": model}

    @property
    def default_params(self) -> dict:
        """What the default run sets (tune's trial 0)."""
        return self.params()

    def config(self, **overrides) -> TrainConfig:
        """`params` of the chosen model (the task's defaults, the model's own, its recipe), then `overrides`."""
        from models import MODELS
        params = self.params(overrides.get("model"))
        model, tags = params["model"], MODELS.tags.get(params["model"], {})   # an unknown name fails later, listing every model
        if tags and tags.get("kind") != self.kind:
            raise UsageError(f"model {model!r} is for {tags.get('kind')} data, but {self.name} has {self.kind} "
                             f"data; its models: {', '.join(MODELS.names(kind=self.kind))}")
        cfg = override(TrainConfig(task=self.name), {**params, **overrides})
        if cfg.folds < self.min_folds:
            raise UsageError(f"--folds must be at least {self.min_folds} for {self.name}, got {cfg.folds}")
        if cfg.transform not in self.transforms:
            raise UsageError(f"transform {cfg.transform!r} is not one of {self.name}'s: {', '.join(self.transforms)}")
        return cfg

    def read_images(self, paths) -> tuple[list[Path], np.ndarray]:
        raise UsageError(f"{self.name} is not an image task")


@dataclass(frozen=True)
class Task(TaskBase):
    """A table competition: one row per example, a target column, an encoder fitted per fold."""
    name: str
    title: str                           # one line for `cli.py tasks`
    files: dict[str, str]                # role (train/test/sample) -> file name as the competition ships it
    target: str                          # target column in the train file
    classes: tuple                       # target values, in the order of the model's outputs; () for regression
    metric: str                          # primary CV metric, a key of pipelines.metrics.METRICS
    features: Callable[[TrainConfig], TransformerMixin]   # fresh, unfitted feature pipeline
    submission: Callable[[np.ndarray, np.ndarray, "Task"], pd.DataFrame]  # (ids, proba or values) -> file
    # optuna trial -> TrainConfig overrides; or {model: that} where the task tunes models apart (Otto)
    search_space: Callable[[Any], dict] | dict[str, Callable[[Any], dict]]
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
    # how the default model trains, over `defaults` and the model's registered defaults: only when that
    # model is chosen (another model keeps `defaults` and its own, as a recipe tuned for one net can wreck another)
    recipe: dict = field(default_factory=dict)
    min_folds: int = 2                   # tables need k-fold CV; image tasks allow 1 (a holdout)
    transforms: tuple[str, ...] = ("none",)   # what its features accept as config key `transform` (Otto: counts)
    # "binary" | "multiclass" | "regression"; "" = from `classes` (2: binary, more: multiclass)
    problem: str = ""
    na_values: tuple[str, ...] = ()      # extra cell tokens read as missing, beyond pandas' defaults
    id_as_text: bool = False             # the id column is read as text, kept verbatim ("0013_01", "00042")
    kind = "tabular"
    parallel_folds = True                # a small MLP trains one fold per core best (cv.fold_plan)

    def __post_init__(self):
        """`problem` resolved from `classes` when not given, and checked against them (a spec file
        is edited by hand: one line, not a traceback)."""
        if self.problem == "":      # frozen: the resolved value is set once, here
            object.__setattr__(self, "problem", "binary" if len(self.classes) == 2 else "multiclass")
        if self.problem not in PROBLEMS:
            raise UsageError(f"task {self.name}: problem {self.problem!r}; known: {', '.join(PROBLEMS)}")
        want = {"regression": "no classes", "binary": "two classes", "multiclass": "two or more classes"}
        n = len(self.classes)
        if n != {"regression": 0, "binary": 2}.get(self.problem, max(n, 2)):
            raise UsageError(f"task {self.name}: a {self.problem} task has {want[self.problem]}, got {n}")

    @property
    def binary(self) -> bool:
        return self.problem == "binary"

    @property
    def out_features(self) -> int:
        """The model's outputs: one logit (binary), one per class, or one value (regression)."""
        return len(self.classes) if self.problem == "multiclass" else 1

    def load(self, cfg: TrainConfig, device, data_dir: Path | None, cache_dir: Path):
        """The train and test tables, the sample submission, the encoded target and the test ids,
        checked against the sample; fetched from Kaggle first when missing (see fetch_if_missing)."""
        from data import ingest
        from submissions.format import check_test_ids
        fetch_if_missing(self, data_dir)
        train_df = ingest.load(self, "train", data_dir)
        test_df = ingest.load(self, "test", data_dir) if "test" in self.files else None
        sample = load_sample(self, data_dir)
        y = ingest.encode_target(self, train_df[self.target])
        test_ids = self.row_ids(test_df) if test_df is not None else None
        if test_ids is not None:
            check_test_ids(test_ids, sample, self.id_col, self.files["test"], self.files.get("sample", "the sample"))
        return train_df, test_df, sample, y, test_ids, None

    def encode_fold(self, cfg: TrainConfig, inp, tr, va, test) -> Encoded:
        """The task's feature pipeline fitted on the fold's training rows; train/val/test encoded."""
        from core.runtime import as_tensor
        device = inp.device
        encoder = self.features(cfg)
        # fit_transform, not fit().transform(): target encoders cross-fit the training rows
        x_tr = as_tensor(encoder.fit_transform(inp.train.iloc[tr], inp.y[tr]), device)
        columns = [str(c) for c in encoder.get_feature_names_out()]
        return Encoded(encoder, x_tr, as_tensor(encoder.transform(inp.train.iloc[va]), device),
                       as_tensor(encoder.transform(test), device) if test is not None else None,
                       {"in_features": len(columns), "out_features": self.out_features}, columns, None)

    def predict_logits(self, model, x, batch_fn, precision: str):
        """One view: the rows as they are."""
        from models.trainer import predict_logits
        return predict_logits(model, x, batch_transform=lambda xb, training: xb, precision=precision)

    def row_ids(self, df: pd.DataFrame) -> np.ndarray:
        """The id column, or the row number from 1 when the competition has none."""
        return (df[self.id_col] if self.id_col else pd.Series(np.arange(1, len(df) + 1))).to_numpy()

    def load_test(self, data_dir: Path | None, input_path: Path | None, cache_dir: Path):
        """The rows to predict (the test file, or `input_path`), their ids and the sample submission."""
        from data import ingest
        from submissions.format import check_test_ids
        if input_path is None and "test" not in self.files:
            raise UsageError(f"{self.name} has no test file; pass --input FILE with rows to predict")
        if input_path is None:
            fetch_if_missing(self, data_dir, roles=("test",))
        test_df = ingest.load(self, "test", data_dir, path=input_path)
        sample = load_sample(self, data_dir) if input_path is None else None
        ids = self.row_ids(test_df)
        check_test_ids(ids, sample, self.id_col, self.files.get("test", "test file"), self.files.get("sample", "the sample"))
        return test_df, ids, sample

    def test_input(self, data: pd.DataFrame, device):
        return data        # each fold's encoder transforms the table (fold_input)

    def fold_input(self, encoder, columns: list[str], data: pd.DataFrame, device, fold_dir: Path):
        """The test table through a fold's fitted encoder, checked against the columns it trained on."""
        from core.runtime import as_tensor
        x = encoder.transform(data)
        if x.shape[1] != len(columns):
            raise UsageError(f"{fold_dir}: encoder gives {x.shape[1]} columns, the model was trained on {len(columns)}")
        return as_tensor(x, device), None


def fetch_if_missing(task: Task, data_dir: Path | None, roles: Collection[str] = ("train", "test")) -> None:
    """Download the competition's files into data/<task>/ when one of `roles` is found nowhere and
    Kaggle API credentials exist: the one place a run downloads (data/ingest.py only locates).
    Without credentials the not-found error stands; it names `download TASK` and --data-dir."""
    from data import ingest
    from submissions import kaggle
    for role in [r for r in roles if r in task.files]:
        try:
            ingest.locate(task, role, data_dir, warn=False)
        except ingest.DataNotFound:
            if not (task.kaggle and kaggle.has_credentials()):
                raise
            log.info("%s: %s found nowhere; downloading %s into %s", task.name, task.files[role], task.kaggle,
                     task.bundled)
            kaggle.download(task, task.bundled)
            return


def load_sample(task: Task, data_dir: Path | None) -> pd.DataFrame | None:
    """The sample submission beside the test file, if the competition ships one there.

    Only the test file's own folder is searched: a sample from elsewhere (the bundled
    copy) would describe a different test set.
    """
    from data import ingest
    if "sample" not in task.files or "test" not in task.files:
        return None
    test_source = str(ingest.locate(task, "test", data_dir))
    folder = Path(test_source.split("::")[0]).parent
    source = ingest.find_in(folder, task.files["sample"], task)
    return ingest.read_csv(task, source) if source else None


TASKS: Registry[TaskBase] = Registry("task")
register_task = TASKS.register
