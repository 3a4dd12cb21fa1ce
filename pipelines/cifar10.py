"""CIFAR-10: 32x32 colour images -> 10 classes; accuracy.

Data: torchvision's cifar-10-batches-py/, Kaggle's train/<id>.png + trainLabels.csv, or
train/<class>/ folders. Submission: Kaggle's `id,label` with class names.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from data.images import _cifar_kaggle, _cifar_torchvision, _imagefolder, torchvision_download
from pipelines.task import ImageTask, register_task

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def read_layout(d: Path):
    return _cifar_torchvision(d) or _cifar_kaggle(d, CLASSES) or _imagefolder(d, CLASSES, 3, 32)


def submission(ids: np.ndarray, proba: np.ndarray, task) -> pd.DataFrame:
    return pd.DataFrame({"id": np.asarray(ids, dtype=int), "label": np.asarray(CLASSES)[proba.argmax(1)]})


def search_space(trial) -> dict:
    return {
        "model": trial.suggest_categorical("model", ["fastnet", "cifar_course", "preact_resnet"]),
        "lr": trial.suggest_float("lr", 1e-3, 2e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 5e-2, log=True),
        "epochs": trial.suggest_int("epochs", 4, 20),
        "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.3),
    }


@register_task
def cifar10() -> ImageTask:
    return ImageTask(
        name="cifar10",
        title="CIFAR-10: class of a 32x32 colour image (10), accuracy",
        classes=CLASSES, channels=3, size=32, flip=True, translate=2, tta_translate=1,
        read_layout=read_layout,
        download=lambda root: torchvision_download("CIFAR10", root),
        submission=submission, search_space=search_space,
        kaggle="cifar-10", kaggle_ids=range(1, 300001),    # 300,000 test images (10,000 scored)
        defaults=dict(model="fastnet", folds=1, holdout=0.05, epochs=10, batch_size=256, lr=1e-2,
                      weight_decay=5e-4, width=32, label_smoothing=0.2, patience=100),
    )
