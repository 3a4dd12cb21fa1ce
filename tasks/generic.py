"""A competition the tool has no file for: a `Task` built from a `CompetitionSpec`.

The spec says what the files say (data/infer.py infers it, `cli.py init` writes it as an editable
JSON file, data/spec.py reads it back); this module adds what every table competition shares:
the generic feature encoder (features/generic.py), a submission in the sample's own form, a
search space and defaults for the MLP. A hand-written task file (tasks/titanic.py) is the same
`Task` with hand-made features; where one exists it wins over any spec.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data.spec import CompetitionSpec, class_columns
from features.generic import NUMERIC, generic_encoder
from tasks.task import Task

# The default run for a table never seen before: quantile+standard scaling of numbers (bench/encoding.py:
# best or within noise on 5 of its 6 table/learner pairs), and on each fold a 256-128 MLP and LightGBM
# averaged with equal weights (pipelines/learners_ensemble.py): trees and a net err differently, and
# their mean beats both (seed 0, one bag: House Prices RMSLE 0.1270 MLP, 0.1236 LightGBM, 0.1190 mean;
# Spaceship Titanic accuracy 0.8033, 0.8084, 0.8104; BENCHMARKS.md has the 3-seed figures).
# 3 bags per fold where a fold trains in seconds (mean of 3 seeds against one bag: Spaceship Titanic
# +0.0004 accuracy, House Prices -0.0014 RMSLE); above SMALL rows one, as each bag trains both learners.
# Both choose their epochs (rounds) on an inner 15% of each fold's training rows, not on the rows the
# fold scores, then train again on all of them for that count (stopping=refit): a CV that users pick
# models by must not have let those rows' labels choose an epoch or a round. Measured (mean of seeds
# 0-2): Spaceship Titanic accuracy 0.8072 with refit, 0.8084 stopping on the inner rows alone
# (stopping=inner), 0.8089 stopped on the scored rows (optimistic); House Prices RMSLE 0.1258 with
# refit, 0.1283 inner, 0.1222 stopped on the 292 scored rows.
# Any of it can be overridden with --set or a params file; `tune` also searches the scaling.
DEFAULTS = dict(transform="quantile+standard", model="mlp+lightgbm", stopping="refit", epochs=40, batch_size=256,
                lr=2e-3, weight_decay=1e-2, width=256, depth=2, shrink=0.5, dropout=0.3, patience=8, bags=3)
SMALL = 20_000
# Past this many rows an epoch holds enough steps that larger batches converge as well and far sooner
# (bench/scale.py: a 1M-row 5-fold run inside half an hour on 2 cores). There the refit's second fit
# would double the training time while the inner 15% it gives back matter little, so early stopping
# watches the inner rows alone (stopping=inner; not measured against refit at that size)
LARGE = 200_000
LARGE_DEFAULTS = dict(batch_size=1024, epochs=20, patience=4, stopping="inner")


def defaults(rows: int) -> dict:
    return {**DEFAULTS, **({"bags": 1} if rows > SMALL else {}), **(LARGE_DEFAULTS if rows > LARGE else {})}


def search_space(trial) -> dict:
    """The MLP around what wins on ordinary mixed tables: 1-3 layers, 64-1024 units, dropout."""
    return {
        "transform": trial.suggest_categorical("transform", ["quantile+standard", "robust"]),
        "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True),
        "width": trial.suggest_int("width", 64, 1024, log=True),
        "depth": trial.suggest_int("depth", 1, 3),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "batch_size": trial.suggest_categorical("batch_size", [128, 256, 512]),
        "epochs": trial.suggest_int("epochs", 20, 80, step=10),
    }


def submission_writer(spec: CompetitionSpec):
    """(ids, predictions, task) -> the submission frame, columns named and valued as the sample's:
    labels as the train file writes them (True/False, 0/1, 'yes'), one probability, one column per
    class, or values."""
    columns = list(spec.prediction_columns)
    classes = np.asarray(spec.classes, dtype=object)
    # each class-probability column takes its class's output, matched by name (Class_10 is the
    # sample's tenth column but the second of the sorted class names)
    matched = class_columns(spec.classes, columns) or {}
    outputs = [list(spec.classes).index(matched[c]) if c in matched else i for i, c in enumerate(columns)]

    def write(ids, pred: np.ndarray, task: Task) -> pd.DataFrame:
        out = pd.DataFrame({spec.id_col: np.asarray(ids)})
        if spec.submission in ("values", "probability"):
            out[columns[0]] = pred
        elif spec.submission == "class_probabilities":
            proba = pred / pred.sum(1, keepdims=True)
            for column, i in zip(columns, outputs):
                out[column] = proba[:, i]
        else:                                            # labels, as the train file writes them
            picked = (pred >= 0.5).astype(int) if pred.ndim == 1 else pred.argmax(1)
            out[columns[0]] = classes[picked]
        return out
    return write


@dataclass(frozen=True)
class InferredTask(Task):
    """A Task that keeps the spec it was built from: a run of it saves the spec beside its config."""
    spec: CompetitionSpec | None = None


def task_from_spec(spec: CompetitionSpec) -> InferredTask:
    numeric = tuple(c for c, kind in spec.columns.items() if kind == "numeric")
    others = tuple(c for c in spec.columns if c not in numeric)
    files = dict(spec.files)
    zips = {name.split("::")[0] for name in files.values() if "::" in name}
    archive = Path(zips.pop()).stem if len(zips) == 1 else None      # the competition's one zip: searched too
    files = {role: name.split("::")[-1] for role, name in files.items()}
    return InferredTask(
        name=spec.name,
        title=f"{spec.problem} from {len(spec.columns)} columns, {spec.metric} (inferred from its files)",
        files=files,
        id_col=spec.id_col,
        target=spec.target,
        classes=tuple(spec.classes),
        problem=spec.problem,
        metric=spec.metric,
        numeric=numeric,
        required=others,
        features=lambda cfg: generic_encoder(spec.columns, spec.problem, seed=cfg.seed, numeric=cfg.transform),
        transforms=NUMERIC,
        submission=submission_writer(spec),
        search_space=search_space,
        kaggle=archive,
        na_values=tuple(spec.na_values),
        id_as_text=True,
        defaults=defaults(spec.rows),
        spec=spec,
    )
