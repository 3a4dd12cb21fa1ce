"""Run directories: `runs/<task>/<run-id>/` holds everything `predict` needs.

Layout:
    config.json            the TrainConfig, data folder, library versions and the code's git commit;
                           `data`: the training rows' source, count and fingerprint (data/fingerprint.py)
    status.json            running | complete | failed | interrupted, with times, pid and host
    metrics.json           CV scores, per-fold scores, best epochs, timing
    history.csv            one row per (fold, bag, epoch)
    oof.csv                out-of-fold probabilities for every train row
    fold<k>/encoder.joblib fitted feature pipeline (fit on that fold's train rows only)
    fold<k>/columns.json   encoded column order
    fold<k>/model<b>.pt    {'model', 'model_args', 'state_dict'} (rebuilds itself)
    spec.json              a competition inferred from its files: the spec it trained with
    fold<k>/bag<b>.json    that model's best epoch, score and per-epoch history
    fold<k>/ckpt<b>.pt     while it trains: the full training state after the last epoch
                           (`train --resume` continues from it; deleted once model<b>.pt is written)

A run that did not finish (Ctrl-C, kill, crash) keeps its folder and checkpoints; it is listed
apart from finished runs and `train TASK --resume ID` completes it.

Runs rank (and blend) only against runs of the same data (pipelines/listing.py). A run from before config.json held `data`
has no fingerprint: `runs` lists it under "data not recorded", `--top` never picks it and `blend`
refuses it, as nothing says which rows it trained on; `predict` and `report` read it as before.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import TrainConfig, saved_config
from core.errors import UsageError
from core.files import remove_empty_dirs, replace_atomically

if TYPE_CHECKING:       # torch and joblib are imported where a model or encoder is saved or loaded:
    import torch        # listing runs (`cli.py runs`) needs neither
    from torch import nn

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent


def code_version() -> str | None:
    """The git commit this checkout is at, recorded in each run's config.json so that weights a
    later change of a model no longer fits can name the code that trained them; None outside git."""
    try:
        proc = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


RUNS_ROOT = Path(os.environ.get("KAGGLE_PIPELINE_RUNS", ROOT / "runs"))


def write_json(path: Path, obj: Any) -> None:
    replace_atomically(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n"))


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


def save_spec(run: Path, spec) -> None:
    """spec.json: the CompetitionSpec of an inferred task, which `predict` and the other commands
    rebuild the task from (pipelines.register_run_spec), whatever the editable spec says later."""
    from data.spec import to_json
    replace_atomically(run / "spec.json", lambda tmp: tmp.write_text(to_json(spec)))


def dump_joblib(obj: Any, path: Path, compress: int = 0) -> None:
    """`compress`: joblib's zlib level (0: none), for large models such as fully grown forests."""
    import joblib
    replace_atomically(path, lambda tmp: joblib.dump(obj, tmp, compress=compress))


def set_status(run: Path, state: str, **extra) -> None:
    """`extra`: e.g. seconds=..., the wall time spent on the run so far (kept for a resume)."""
    status = read_json(run / "status.json") if (run / "status.json").exists() else {"started": time.time()}
    owner = {"pid": os.getpid(), "host": socket.gethostname()} if state == "running" else {}
    write_json(run / "status.json", {**status, **owner, **extra, "state": state, "updated": time.time()})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # exists, owned by someone else
        return True
    return True


def state_of(run: Path) -> str:
    """The run's state; a 'running' run whose process is gone (killed) reads as 'interrupted'."""
    try:
        status = read_json(run / "status.json")
    except UsageError as e:          # one damaged folder must not hide every other run of the task
        log.warning("%s; run skipped", e)
        return "corrupted"
    state = status.get("state", "unknown") if isinstance(status, dict) else "corrupted"
    if state == "running" and status.get("host") == socket.gethostname() and not _alive(status.get("pid", -1)):
        return "interrupted"
    return state


def discard(run: Path) -> None:
    """Remove a run that failed on bad input, and the task and runs folders if it made them empty."""
    shutil.rmtree(run, ignore_errors=True)
    remove_empty_dirs((run.parent, run.parent.parent))     # other runs, studies and caches stay


def save_model(path: Path, name: str, args: dict, model: nn.Module) -> None:
    import torch
    replace_atomically(path, lambda tmp: torch.save({"model": name, "model_args": args,
                                                      "state_dict": model.state_dict()}, tmp))


def load_model(path: Path, device: torch.device, trained_by: str | None = None) -> nn.Module:
    """Rebuild a saved model. `trained_by`: the commit the run recorded, named when the weights no
    longer fit the model as this code builds it (a model changed since the run was trained)."""
    import torch
    from models import build_model
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
        name, args, state = ckpt["model"], dict(ckpt["model_args"]), ckpt["state_dict"]
    except FileNotFoundError:
        raise UsageError(f"{path}: missing model weights") from None
    except Exception as e:
        raise UsageError(f"{path}: corrupted or unreadable checkpoint ({type(e).__name__})") from None
    if args.get("weights_path"):     # vgg16_transfer: the state dict holds every weight, so the
        args["weights_path"] = ""     # pretrained file need not exist any more (nor be read again)
    try:
        model = build_model(name, args)
        model.load_state_dict(state)
    except UsageError as e:          # a model no longer registered
        raise UsageError(f"{path}: {e}") from None
    except (TypeError, RuntimeError) as e:
        detail = " ".join(str(e).split())
        detail = detail[:200] + "..." if len(detail) > 200 else detail
        code = f"the commit that trained it, {trained_by}" if trained_by else "the code that trained it"
        raise UsageError(f"{path}: these weights do not fit model {name!r} as this code builds it ({detail}); "
                         f"the model changed since this run was trained: retrain, or predict with {code}") from None
    return model.to(device).eval()


def list_runs(root: Path, task: str | None = None, states=("complete",)) -> list[Path]:
    tasks = [root / task] if task else sorted(p for p in root.glob("*") if p.is_dir())
    runs = [r for t in tasks if t.is_dir() for r in t.iterdir() if (r / "status.json").is_file()]
    runs = [r for r in runs if state_of(r) in states]
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


REQUIRE = ("complete", "unfinished", None)


@dataclass(frozen=True)
class Run:
    """One run folder as a command reads it. `saved`: config.json whole (config, data_dir, out,
    data, versions); `config` and `metrics` are read when asked for, so a run a newer version of
    the code wrote, or one with a damaged metrics.json, still lists and reports."""
    path: Path
    saved: dict
    state: str               # state_of(path); 'unknown (no status.json)' where that file is gone

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def task(self) -> str | None:
        return self.saved["config"].get("task")

    @property
    def config(self) -> TrainConfig:
        """The run's TrainConfig, validated: a key this code lacks is one line (core.config.saved_config)."""
        return saved_config({"jobs": 1, **self.saved["config"]}, self.path / "config.json")  # runs from
        # before --jobs trained one fold at a time

    @property
    def metrics(self) -> dict | None:
        """metrics.json, written when the run completes; None before."""
        return read_json(self.path / "metrics.json") if (self.path / "metrics.json").is_file() else None


def load(task_name: str | None, run: str, require: str | None = "complete", runs_root: Path | None = None) -> Run:
    """The run `run` names (an id, a path or 'latest') of task `task_name`, checked: a run of
    another task, or (`require`) one not complete or not 'unfinished' (interrupted or failed), is
    one line naming the run. 'latest' is the newest run `require` accepts. No task (`report`
    only): the run is looked for under every task, and 'latest' is the newest complete run of any."""
    if require not in REQUIRE:
        raise ValueError(f"require must be one of {REQUIRE}, got {require!r}")
    root = runs_root or RUNS_ROOT
    if task_name is None:
        path = _find_any(root, run)
    elif require == "unfinished" and run == "latest":
        unfinished = list_runs(root, task_name, states=("interrupted", "failed"))
        if not unfinished:
            raise UsageError(f"no interrupted or failed {task_name} run under {root / task_name} to resume")
        path = unfinished[-1]
    else:
        path = resolve_run(root, task_name, run)
    saved = read_json(path / "config.json")
    if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
        raise UsageError(f"{path / 'config.json'}: no 'config' in it; the run directory is damaged")
    state = state_of(path) if (path / "status.json").is_file() else "unknown (no status.json)"
    found = Run(path, saved, state)
    if task_name is not None and found.task != task_name:
        raise UsageError(f"run {path.name} is a {found.task} run, not {task_name}")
    if require == "complete" and state != "complete":
        finish = (f"; finish it with `train {task_name or found.task} --resume {path.name}`"
                  if state in ("interrupted", "failed") else "")
        raise UsageError(f"run {path.name} is {state}, not complete{finish}")
    if require == "unfinished" and state == "complete":
        raise UsageError(f"run {path.name} is already complete; nothing to resume")
    if require == "unfinished" and state == "running":
        raise UsageError(f"run {path.name} is still running (pid {read_json(path / 'status.json').get('pid')})")
    return found


def _find_any(root: Path, run: str) -> Path:
    """A run id, 'latest' or a path, across every task."""
    if (Path(run) / "config.json").is_file():
        return Path(run)
    if run == "latest":
        done = list_runs(root) if root.is_dir() else []
        if not done:
            raise UsageError(f"no complete run under {root}; train one first")
        return max(done, key=lambda r: r.name)       # ids start with their UTC start time
    found = [t / run for t in (sorted(root.iterdir()) if root.is_dir() else []) if (t / run / "config.json").is_file()]
    if not found:
        raise UsageError(f"run {run!r} not found under {root}")
    if len(found) > 1:
        raise UsageError(f"run {run!r} exists for several tasks ({', '.join(p.parent.name for p in found)}); name the task")
    return found[0]


def submission_of_run(task: str, run: str, runs_root: Path | None = None) -> Path:
    """The submission file a finished run wrote (its metrics.json records the path)."""
    run_dir = resolve_run(runs_root or RUNS_ROOT, task, run)
    path = read_json(run_dir / "metrics.json").get("submission")
    if not path:
        raise UsageError(f"run {run_dir.name} wrote no submission; pass --file FILE")
    if not Path(path).is_file():
        raise UsageError(f"{path}: the submission of run {run_dir.name} is gone; pass --file FILE")
    return Path(path)
