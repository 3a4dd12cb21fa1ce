"""The one trainer, for tables and images alike.

Data arrive as whole tensors already on the device; each epoch slices batches from a
seeded permutation (no per-sample Dataset/DataLoader), `batch_transform` turns a raw
batch into model input (normalise/augment images; identity for encoded tables). The
loop is plain: zero_grad, forward, backward, step, scheduler step. One hook per epoch
(`on_epoch`) carries logging, early stopping is built in, and pruning raises from the hook.
A model or batch transform with per-epoch state defines `on_epoch_start(epoch)` (fastnet: its
stem; images: the alternating flip).

With `checkpoint`, the whole training state (weights, optimizer, schedule, shuffling and
dropout RNG, early-stopping record, history) is written atomically after every epoch, and a
`fit` that finds the file continues from it: a killed run resumes where it stopped and ends
with the same weights as one that was never interrupted (bit for bit on the CPU).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from core.config import TrainConfig
from core.files import replace_atomically
from core.errors import UsageError
from core.runtime import autocast

LossFn = Callable[[Tensor, Tensor], Tensor]           # (logits, targets) -> scalar loss
ScoreFn = Callable[[Tensor, Tensor], float]           # (logits, targets) -> validation score
BatchFn = Callable[[Tensor, bool], Tensor]            # (raw batch, training?) -> model input
EpochHook = Callable[[dict], None]                    # receives the epoch's log row
MetricsFn = Callable[[Tensor, Tensor], dict]          # (logits, targets) -> {column: value} for the log row


def _identity(x: Tensor, training: bool) -> Tensor:
    return x


@dataclass
class FitResult:
    model: nn.Module                       # best-scoring weights restored
    best_epoch: int                        # 1-based
    best_score: float
    history: list[dict] = field(default_factory=list)   # one row per epoch
    seconds: float = 0.0                   # training time, a resumed fit's earlier part included
    seconds_before: float = 0.0            # of which spent before the checkpoint this fit resumed from


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """All of the model's parameters (frozen ones too: a parameter unfrozen later, such as fastnet's
    stem bias, must be in the optimizer), BatchNorm's in a group of their own when `norm_lr_scale`
    is set: lr times the scale, decay divided by it, so their per-step decay is everyone's."""
    norm = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._NormBase)
            for p in m.parameters(recurse=False)}
    if cfg.norm_lr_scale == 1 or not norm:
        return [{"params": list(model.parameters())}]
    scaled = {"params": [p for p in model.parameters() if id(p) in norm],
              "lr": cfg.lr * cfg.norm_lr_scale, "weight_decay": cfg.weight_decay / cfg.norm_lr_scale}
    rest = [p for p in model.parameters() if id(p) not in norm]
    return ([{"params": rest}] if rest else []) + [scaled]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # fused kernels: one per step instead of ~10 foreach ops (~10% of a CPU epoch on Otto)
    groups = param_groups(model, cfg)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0,
                               weight_decay=cfg.weight_decay, fused=True)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, cfg.beta2), weight_decay=cfg.weight_decay, fused=True)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")    # core.config validates: never a silent fallback


def make_schedule(opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    if total_steps < 4:      # too short to warm up and anneal: hold the peak rate
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    peaks = [g["lr"] for g in opt.param_groups]          # per group: norm_lr_scale's group keeps its scale
    if cfg.schedule == "onecycle":
        # warm up over the first quarter (at least 2 steps: OneCycleLR divides by the warm-up length)
        # OneCycleLR also cycles AdamW's beta1 (0.95 -> 0.85 -> 0.95); SGD keeps `cfg.momentum`
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peaks, total_steps=total_steps,
                                                   pct_start=max(0.25, 2 / total_steps),
                                                   cycle_momentum=cfg.optimizer == "adamw")
    if cfg.schedule == "triangle":
        # airbench's: linear from 0.2 of the peak to the peak at 23% of the steps, then down to 0.07
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peaks, total_steps=total_steps,
                                                   pct_start=max(0.23, 2 / total_steps), anneal_strategy="linear",
                                                   div_factor=1 / 0.2, final_div_factor=0.2 / 0.07,
                                                   cycle_momentum=False)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    raise ValueError(f"unknown schedule {cfg.schedule!r}")      # core.config validates: never a silent fallback


class Lookahead:
    """airbench's Lookahead: from epoch `start` (1-based) on, every `every` steps the model's float
    state (weights and BatchNorm statistics) is pulled into an EMA of itself and the model set to
    that EMA; the EMA's decay ramps up as 0.95**5 * (step / total)**3, so training moves fast early
    and averages strongly at the end. At each epoch's end the model takes the EMA."""

    every, start, base = 5, 4, 0.95 ** 5

    def __init__(self, total_steps: int):
        self.total, self.state = total_steps, None      # state: the EMA, from the first pull on

    @torch.no_grad()
    def step(self, model: nn.Module, step: int, epoch: int) -> None:
        if epoch < self.start or step % self.every:
            return
        if self.state is None:
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
        else:
            self._pull(model, self.base * (step / self.total) ** 3)

    @torch.no_grad()
    def end_epoch(self, model: nn.Module) -> None:
        if self.state is not None:
            self._pull(model, 1.0)

    def _pull(self, model: nn.Module, decay: float) -> None:
        current = model.state_dict()
        for k, ema in self.state.items():
            ema.lerp_(current[k], 1 - decay)
            current[k].copy_(ema)


@torch.no_grad()
def predict_logits(model: nn.Module, x: Tensor, batch_size: int = 1024,
                   batch_transform: BatchFn = _identity, precision: str = "fp32") -> Tensor:
    """Float32 logits for every row of `x`, in eval mode, in batches (keeps memory flat on big test
    sets), the forward pass at `precision` as in training (`core.runtime.autocast`).
    1024 rows: CIFAR-10 fastnet infers 23% faster than at 4096 on the CPU (a 4096 batch's first
    activation is 1 GB); MNIST and the Otto MLP run level from 512 to 4096."""
    model.eval()
    with autocast(x.device, precision):
        out = [model(batch_transform(x[i:i + batch_size], False)).float() for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0)


def _rng_state(generator: torch.Generator, device: torch.device) -> dict:
    state = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, generator: torch.Generator, device: torch.device) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(path: Path, state: dict) -> None:
    replace_atomically(path, lambda tmp: torch.save(state, tmp))   # a kill mid-write keeps the previous one


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UsageError(f"{path}: corrupted or truncated checkpoint ({type(e).__name__}); "
                         "delete it to restart this fold from its first epoch") from None


def fit(model: nn.Module, x_train: Tensor, y_train: Tensor, x_val: Tensor, y_val: Tensor, *,
        cfg: TrainConfig, loss_fn: LossFn, score_fn: ScoreFn, maximize: bool,
        generator: torch.Generator, batch_transform: BatchFn = _identity,
        on_epoch: EpochHook | None = None, checkpoint: Path | None = None,
        epoch_metrics: MetricsFn | None = None, stop_after: int | None = None) -> FitResult:
    """Train with AdamW or SGD (`cfg.optimizer`) and a per-step schedule; stop after `cfg.patience`
    epochs without a better validation score and return the model with its best weights restored.
    `epoch_metrics` adds columns to each epoch's row (the task's metric when it is not the score).

    `stop_after`: a fixed epoch count, chosen elsewhere (stopping='refit', pipelines/cv.py): train
    that many epochs of the `cfg.epochs` schedule, no early stopping, and keep the last weights;
    the validation rows are then scored for the log only, never to choose."""
    device = x_train.device
    n = len(x_train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    opt = make_optimizer(model, cfg)     # frozen parameters get no grad, so no step
    sched = make_schedule(opt, cfg, cfg.epochs * steps_per_epoch)
    lookahead = Lookahead(cfg.epochs * steps_per_epoch) if cfg.lookahead else None
    # EMA of weights and BN buffers (torch's AveragedModel); evaluated and kept in place of the raw weights
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True) if cfg.ema else None
    scored = ema.module if ema is not None else model
    best_score, best_epoch, best_state = -math.inf if maximize else math.inf, 0, None
    history: list[dict] = []
    first, stopped, elapsed = 1, False, 0.0
    if checkpoint is not None and checkpoint.exists():
        ck = load_checkpoint(checkpoint)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        if ema is not None:
            ema.load_state_dict(ck["ema"])
        if lookahead is not None and ck.get("lookahead") is not None:     # loaded to the CPU, as the rest
            lookahead.state = {k: v.to(device) for k, v in ck["lookahead"].items()}
        _set_rng_state(ck["rng"], generator, device)
        best_score, best_epoch, best_state = ck["best_score"], ck["best_epoch"], ck["best_state"]
        history, first, stopped = ck["history"], ck["epoch"] + 1, ck["stopped"]
        elapsed = history[-1]["seconds"] if history else 0.0
    start = time.perf_counter() - elapsed
    last = min(stop_after, cfg.epochs) if stop_after else cfg.epochs
    for epoch in range(first, 0 if stopped else last + 1):
        model.train()
        for hooked in (model, batch_transform):     # per-epoch state: fastnet's stem bias, the alternating flip
            if hasattr(hooked, "on_epoch_start"):
                hooked.on_epoch_start(epoch)
        perm = torch.randperm(n, generator=generator).to(device)
        total, seen = 0.0, 0
        for i in range(0, n, cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            if len(idx) < 2:               # BatchNorm cannot normalise a single row
                continue
            opt.zero_grad(set_to_none=True)
            with autocast(device, cfg.precision):
                loss = loss_fn(model(batch_transform(x_train[idx], True)).float(), y_train[idx])
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
            if lookahead is not None:
                lookahead.step(model, sched.last_epoch, epoch)    # last_epoch: steps taken so far
            total += loss.item() * len(idx)
            seen += len(idx)
        if lookahead is not None:
            lookahead.end_epoch(model)
        logits = predict_logits(scored, x_val, batch_transform=batch_transform, precision=cfg.precision)
        score = score_fn(logits, y_val)
        improved = score > best_score if maximize else score < best_score
        if stop_after:           # a fixed count: the last epoch is the one kept, whatever it scores
            best_score, best_epoch = score, epoch
        elif improved:
            best_score, best_epoch = score, epoch
            best_state = copy.deepcopy(scored.state_dict())
        row = {"epoch": epoch, "train_loss": total / max(seen, 1),
               "val_loss": loss_fn(logits, y_val).item(), "val_score": score,
               **(epoch_metrics(logits, y_val) if epoch_metrics else {}),
               "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - start}
        history.append(row)
        stopped = not stop_after and epoch - best_epoch >= cfg.patience
        if checkpoint is not None:
            save_checkpoint(checkpoint, {
                "epoch": epoch, "stopped": stopped, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "ema": ema.state_dict() if ema is not None else None,
                "lookahead": lookahead.state if lookahead is not None else None,
                "rng": _rng_state(generator, device), "best_score": best_score, "best_epoch": best_epoch,
                "best_state": best_state, "history": history})
        if on_epoch is not None:
            on_epoch(row)
        if stopped:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    elif stop_after and ema is not None:     # the last weights as validated: the average's
        model.load_state_dict(ema.module.state_dict())
    return FitResult(model, best_epoch, best_score, history, time.perf_counter() - start, elapsed)
