"""Run configuration: one frozen dataclass, overridden through one checked function.

Every default carries a comment with its unit or reason. Task files supply their own
defaults (`Task.defaults`), the CLI and params files supply overrides; both go through
`override()`, which rejects unknown keys and wrong types so a typo never trains silently, and a
run's saved config.json goes through the same checks when it is loaded (`saved_config`).

Why one flat namespace, with model- and task-specific keys in it (nanoGPT's choice): `--set KEY=V`,
a tuning study's params, `--params FILE` and a run's config.json all name the same keys, one to
one, so a tuned trial replays as a run with no translation. What keeps it honest is that each
key has one reader, written down:
- the trainer and the run (most keys);
- a model, for the keys its factory declares at `register_model(options=...)` (models/registry.py):
  the MLP family's width/depth/..., TabM's heads/embedding/n_bins/d_embedding (models/tabm.py),
  vgg16_transfer's weights_path. `--set` of a model key the
  chosen model does not read is refused (models.registry.check_options), not silently ignored;
- a task's feature builder: Otto's `transform` (tasks/otto.py) and `holdout` (image tasks, folds=1);
- the run's inputs (pipelines/inputs.py): `group`, `folds_file`, `extra_train`.
- the tree learners (pipelines/learners_gbdt.py): `trees`, one dict, as each library names its
  trees' settings differently; a learner refuses a name it does not read, and every other learner the key.
"""
from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import UsageError, did_you_mean

PRECISIONS = ("auto", "fp32", "bf16")      # TrainConfig.precision; see core.runtime.autocast
# TrainConfig.transform: Otto's count transforms (features/counts.py), the numeric scalings of an
# inferred competition's encoder (features/generic.py); each task says which it reads (Task.transforms)
EMBEDDINGS = ("none", "periodic", "piecewise")    # TrainConfig.embedding: TabM's numeric embeddings
TABM_ARCHS = ("tabm", "mini", "packed")         # TrainConfig.arch: TabM's variants (models/tabm.py)
STOPPING = ("val", "inner", "refit", "fixed")   # TrainConfig.stopping: which rows early stopping watches (pipelines/cv.py)
TRANSFORMS = ("none", "log1p", "anscombe", "quantile+standard", "quantile", "robust", "standard")


@dataclass(frozen=True)
class TrainConfig:
    task: str                     # registered task name
    model: str = "mlp"            # registered model name
    folds: int = 5                # StratifiedKFold splits (KFold for regression, grouped with `group`);
                                  # 1 = single stratified holdout (images)
    epochs: int = 30              # max epochs per fold; early stopping may end a fold sooner
    batch_size: int = 256         # rows per optimizer step
    optimizer: str = "adamw"      # 'adamw' (decoupled weight decay) or 'sgd' (Nesterov momentum, L2 decay)
    lr: float = 3e-3              # peak learning rate (the one-cycle maximum)
    weight_decay: float = 1e-2    # AdamW: decoupled decay; SGD: L2 penalty added to the gradient
    momentum: float = 0.9         # SGD's Nesterov momentum (AdamW ignores it)
    beta2: float = 0.999          # AdamW's second-moment decay (RealMLP trains with 0.95: a shorter memory
                                  # of gradient scale, which reacts faster on noisy tabular batches)
    schedule: str = "onecycle"    # per step: 'onecycle' (warm up a quarter, cosine to ~0), 'cosine' (anneal
                                  # only) or 'triangle' (airbench: linear 0.2 -> 1 at 23% -> 0.07 of lr)
    norm_lr_scale: float = 1.0    # lr multiplier for BatchNorm parameters, their decay divided by it so
                                  # they decay as the rest (airbench's 64x on BN biases)
    lookahead: bool = False       # airbench's Lookahead: from epoch 4, every 5 steps the weights move to an
                                  # EMA of themselves whose decay ramps up as (step / total)^3
    patience: int = 8             # epochs without a better validation score before a fold stops
    bags: int = 1                 # models per fold from different seeds, probabilities averaged
    label_smoothing: float = 0.0  # multi-class targets mixed with uniform; 0.1-0.2 helps image nets
    calibrate: bool = False       # temperature-scale the probabilities, T cross-fitted on the OOF rows
                                  # (pipelines/calibrate.py): improves logloss; accuracy never moves
    ema: float = 0.0              # decay of an exponential moving average of the weights, updated every
                                  # step, validated and kept instead of the raw weights; 0 = off
    # MLP family (ignored by fixed-architecture models such as the course nets)
    width: int = 256              # units in the first hidden layer
    depth: int = 2                # hidden layers
    shrink: float = 0.5           # width multiplier from one hidden layer to the next
    dropout: float = 0.2          # dropout after every hidden layer
    input_dropout: float = 0.0    # dropout on the encoded input features
    batch_norm: bool = True       # BatchNorm1d after every hidden Linear
    activation: str = "relu"      # relu | gelu | silu | prelu | sigmoid | tanh
    # TabM (models/tabm.py; it reads width, depth, dropout and activation as the MLP does, too)
    heads: int = 8                # the paper's k: MLPs in one net sharing its weights, each with its own loss;
                                  # each costs a whole MLP's compute, so 8 rather than the authors' 32 on a CPU
    embedding: str = "none"       # numeric embeddings in front: none | periodic | piecewise (piecewise-linear,
                                  # bins at the fold's training quantiles)
    arch: str = "tabm"            # tabm (BatchEnsemble: every layer scaled per member) | mini (one per-member
                                  # scaling at the input, every layer shared) | packed (k separate MLPs)
    n_bins: int = 48              # piecewise: bins per column (fewer where a column has fewer distinct values)
    d_embedding: int = 16         # periodic | piecewise: numbers each column becomes
    # feature options (task-specific; each task documents what it accepts)
    transform: str = "none"       # feature transform the task reads (Task.transforms): Otto's counts
                                  # none | log1p | anscombe; an inferred task's numbers quantile+standard | ...
    holdout: float = 0.1          # validation fraction when folds == 1
    stopping: str = "val"         # which rows pick a fold's epoch or boosting round (early stopping):
                                  # 'val', the fold's validation rows, which the OOF then scores (fast, but
                                  # the CV is optimistic), or 'inner', a stratified `inner` share of its
                                  # training rows, so the validation rows are only scored (an honest OOF),
                                  # or 'refit': the epochs (rounds) chosen as 'inner' does, then the model
                                  # trained again on all the fold's training rows for that count (honest,
                                  # no row left out of the final model; about twice the training time),
                                  # or 'fixed': no early stopping, a net trains its whole `epochs` schedule on
                                  # all the fold's training rows and keeps the last weights (honest: the count
                                  # is a setting, not chosen by the fold's rows; one fit, as fast as 'val'; nets only)
    inner: float = 0.15           # stopping='inner' or 'refit': the share of each fold's training rows it holds out
    # how the rows split into folds, and what else trains (tables only; pipelines/inputs.py reads them)
    group: str = ""               # a train column: rows sharing its value never split across folds ('' = none)
    folds_file: str = ""          # CSV of the user's fold (0..K-1) per train row; folds is then its K ('' = none)
    extra_train: str = ""         # CSV of extra labelled rows added to every fold's training part, never
                                  # validated on ('' = none)
    trees: dict = field(default_factory=dict)   # gradient-boosted trees' settings by name, over the learner's
                                  # own (pipelines/learners_gbdt.py): {"learning_rate": 0.03, "num_leaves": 63}
    weights_path: str = ""        # local pretrained weights for transfer models (vgg16_transfer); never downloaded
    compile: bool = False         # torch.compile the model (worth it on CUDA; the first epoch pays the compile)
    seed: int = 0                 # seeds folds, weight init, shuffling and dropout
    device: str = "auto"          # auto | cpu | cuda
    precision: str = "fp32"       # forward pass: fp32 | bf16 (autocast) | auto (bf16 on CUDA and on CPUs
                                  # with native bfloat16, AVX512-BF16 or AMX; else fp32). Image tasks: auto
    jobs: int = 0                 # folds trained at once, each in a worker process; 0 = auto ('auto'; CPU tables:
                                  # one per core; else 1). On the CPU the result depends on threads per fold

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_TYPES = typing.get_type_hints(TrainConfig)


def saved_config(saved: dict[str, Any], source: Path | str) -> TrainConfig:
    """The TrainConfig a run wrote to its config.json, checked as `override` checks the CLI's: keys
    this code does not know (the run came from another version of it), a wrong type or a value out
    of range (a hand-edited file) are one line naming the file, never a run trained or predicted
    with a setting the trainer would refuse."""
    unknown = sorted(set(saved) - set(_TYPES))
    if unknown:
        raise UsageError(f"{source}: config key(s) {', '.join(unknown)} unknown to this version of the code; "
                         "the run was written by another version (its config.json names the commit under versions.code)")
    try:
        checked = {k: _check(k, v) for k, v in saved.items()}
        cfg = TrainConfig(**checked)
        _validate(cfg)
    except UsageError as e:
        raise UsageError(f"{source}: {e}") from None
    except TypeError as e:                              # a key missing that has no default ('task')
        raise UsageError(f"{source}: {e}") from None
    return cfg


def _check(key: str, value: Any) -> Any:
    want = _TYPES[key]
    if key == "jobs" and value == "auto":      # the CLI's spelling of jobs 0
        return 0
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (want is not bool and isinstance(value, bool)) or not isinstance(value, want):
        raise UsageError(f"config key {key!r} wants {want.__name__}, got {value!r}")
    return value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings (the CLI's --set) to a dict; VALUE is read as JSON when it parses
    (numbers, true/false), else kept as text. Types are checked later, by `override`."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise UsageError(f"--set wants KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def parse_jobs(text: str) -> int:
    """The CLI's --jobs: 'auto' (config jobs 0: one fold per core for CPU tables, else 1) or a
    positive number of folds trained at once. A bare 0 is refused: it reads as 'no jobs'."""
    if text.strip().lower() == "auto":
        return 0
    try:
        jobs = int(text)
    except ValueError:
        jobs = None
    if jobs is None or jobs < 1:
        raise UsageError(f"--jobs wants 'auto' or a positive number of folds trained at once, got {text!r}")
    return jobs


def format_overrides(overrides: dict[str, Any]) -> str:
    """The inverse of `parse_overrides`, for labels: `{'lr': 0.001, 'width': 16}` -> `lr=0.001 width=16`."""
    return " ".join(f"{k}={v}" for k, v in overrides.items())


def override(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """Return a copy of `cfg` with `overrides` applied; unknown keys and wrong types raise."""
    if "task" in overrides:
        raise UsageError("'task' is the command's TASK argument; it cannot be set by --set or --params")
    unknown = sorted(set(overrides) - set(_TYPES))
    if unknown:
        named = ", ".join(f"{k}{did_you_mean(k, _TYPES)}" for k in unknown)
        raise UsageError(f"unknown config key(s) {named}; known: {', '.join(sorted(_TYPES))}")
    checked = {k: _check(k, v) for k, v in overrides.items()}
    out = dataclasses.replace(cfg, **checked)
    _validate(out)
    return out


def _validate(cfg: TrainConfig) -> None:
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{f.name} must be a finite number, got {value}")
    if not 0 <= cfg.seed < 2 ** 32:
        raise UsageError(f"--seed must lie in 0..{2 ** 32 - 1} (numpy's and torch's seed range), got {cfg.seed}")
    if cfg.patience < 1:
        raise UsageError(f"patience must be at least 1 (epochs without improvement before a fold stops; "
                         f"patience >= epochs never stops early), got {cfg.patience}")
    if cfg.folds < 1:
        raise UsageError(f"--folds must be at least 1, got {cfg.folds}")
    if cfg.jobs < 0:
        raise UsageError(f"jobs must be 0 or 'auto' (automatic) or a number of folds trained at once, got {cfg.jobs}")
    for key in ("epochs", "batch_size", "bags", "width", "depth", "heads", "d_embedding"):
        if getattr(cfg, key) < 1:
            raise UsageError(f"{key} must be at least 1, got {getattr(cfg, key)}")
    if cfg.lr <= 0 or cfg.weight_decay < 0:
        raise UsageError("lr must be > 0 and weight_decay >= 0")
    if not 0 <= cfg.ema < 1:
        raise UsageError(f"ema must lie in [0, 1), got {cfg.ema}")
    if not 0 <= cfg.label_smoothing < 1:
        raise UsageError(f"label_smoothing must lie in [0, 1), got {cfg.label_smoothing}")
    if not 0 <= cfg.dropout < 1 or not 0 <= cfg.input_dropout < 1:
        raise UsageError("dropout and input_dropout must lie in [0, 1)")
    if not 0 < cfg.holdout < 1:
        raise UsageError(f"holdout must lie in (0, 1), got {cfg.holdout}")
    if cfg.stopping not in STOPPING:
        raise UsageError(f"unknown stopping {cfg.stopping!r}; choose val (the fold's validation rows), "
                         "inner (a share of its training rows: an honest OOF), refit (inner's choice, "
                         "then all the training rows) or fixed (a net's whole epochs schedule, no stopping)")
    if not 0 < cfg.inner < 0.5:
        raise UsageError(f"inner must lie in (0, 0.5), got {cfg.inner}")
    if cfg.optimizer not in ("adamw", "sgd"):
        raise UsageError(f"unknown optimizer {cfg.optimizer!r}; choose adamw or sgd")
    if not 0 < cfg.beta2 < 1:
        raise UsageError(f"beta2 must lie in (0, 1), got {cfg.beta2}")
    if not 0 <= cfg.momentum < 1:
        raise UsageError(f"momentum must lie in [0, 1), got {cfg.momentum}")
    if cfg.schedule not in ("onecycle", "cosine", "triangle"):
        raise UsageError(f"unknown schedule {cfg.schedule!r}; choose onecycle, cosine or triangle")
    if cfg.precision not in PRECISIONS:
        raise UsageError(f"unknown precision {cfg.precision!r}; choose one of {', '.join(PRECISIONS)}")
    if cfg.transform not in TRANSFORMS:
        raise UsageError(f"unknown transform {cfg.transform!r}; choose one of {', '.join(TRANSFORMS)}")
    if cfg.embedding not in EMBEDDINGS:
        raise UsageError(f"unknown embedding {cfg.embedding!r}; choose one of {', '.join(EMBEDDINGS)}")
    if cfg.arch not in TABM_ARCHS:
        raise UsageError(f"unknown arch {cfg.arch!r}; choose one of {', '.join(TABM_ARCHS)}")
    if cfg.n_bins < 2:
        raise UsageError(f"n_bins must be at least 2, got {cfg.n_bins}")
    if cfg.norm_lr_scale <= 0:
        raise UsageError(f"norm_lr_scale must be > 0, got {cfg.norm_lr_scale}")


def load_params(path: Path) -> dict[str, Any]:
    """Read a JSON params file (e.g. the best params a tuning study wrote)."""
    try:
        params = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"params file {path} not found") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"params file {path} is not valid JSON: {e.msg} at line {e.lineno}") from None
    if not isinstance(params, dict):
        raise UsageError(f"params file {path} must hold a JSON object of config keys")
    return params
