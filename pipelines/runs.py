"""Run directories: `runs/<task>/<run-id>/` holds everything `predict` needs.

Layout:
    config.json            the TrainConfig, task name, library versions
    status.json            running | complete | failed | interrupted, with times
    metrics.json           CV scores, per-fold scores, best epochs, timing
    history.csv            one row per (fold, bag, epoch)
    oof.csv                out-of-fold probabilities for every train row
    fold<k>/encoder.joblib fitted feature pipeline (fit on that fold's train rows only)
    fold<k>/columns.json   encoded column order
    fold<k>/model<b>.pt    {'model', 'model_args', 'state_dict'} (rebuilds itself)
"""
from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.registry import UsageError
from models import build_model

RUNS_ROOT = Path(os.environ.get("KAGGLE_PIPELINE_RUNS", Path(__file__).resolve().parent.parent / "runs"))


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: missing; the run directory is incomplete") from None
    except json.JSONDecodeError:
        raise UsageError(f"{path}: corrupted JSON") from None


def new_run(root: Path, task: str, model: str, seed: int) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = root / task / f"{stamp}-{model}-s{seed}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    set_status(path, "running")
    return path


def set_status(run: Path, state: str) -> None:
    status = read_json(run / "status.json") if (run / "status.json").exists() else {"started": time.time()}
    write_json(run / "status.json", {**status, "state": state, "updated": time.time()})


def discard(run: Path) -> None:
    shutil.rmtree(run, ignore_errors=True)


def save_model(path: Path, name: str, args: dict, model: nn.Module) -> None:
    torch.save({"model": name, "model_args": args, "state_dict": model.state_dict()}, path)


def load_model(path: Path, device: torch.device) -> nn.Module:
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
        model = build_model(ckpt["model"], ckpt["model_args"])
        model.load_state_dict(ckpt["state_dict"])
    except FileNotFoundError:
        raise UsageError(f"{path}: missing model weights") from None
    except Exception as e:
        raise UsageError(f"{path}: corrupted or unreadable checkpoint ({type(e).__name__})") from None
    return model.to(device).eval()


def list_runs(root: Path, task: str | None = None, states=("complete",)) -> list[Path]:
    tasks = [root / task] if task else sorted(p for p in root.glob("*") if p.is_dir())
    runs = [r for t in tasks if t.is_dir() for r in t.iterdir() if (r / "status.json").is_file()]
    runs = [r for r in runs if read_json(r / "status.json").get("state") in states]
    return sorted(runs, key=lambda r: r.name)


def resolve_run(root: Path, task: str, run: str) -> Path:
    """A run id, 'latest' (newest complete run of the task) or a path to a run directory."""
    if run == "latest":
        runs = list_runs(root, task)
        if not runs:
            raise UsageError(f"no complete {task} run under {root / task}; train one first")
        return runs[-1]
    for candidate in (Path(run), root / task / run):
        if (candidate / "config.json").is_file():
            return candidate
    raise UsageError(f"run {run!r} not found under {root / task}")
