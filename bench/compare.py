"""Our pipeline against what a competitor would otherwise use, on the same data, folds and machine.

    python bench/compare.py tabular --tasks titanic diabetes --seeds 0 1 2
    python bench/compare.py tabular --tasks otto
    python bench/compare.py tabular --tasks otto --contenders course_raw ours_course_net
    python bench/compare.py images --tasks mnist
    python bench/compare.py images --tasks cifar10 --data cifar10=/tmp/cifar
    python bench/compare.py throughput
    python bench/compare.py report           # table + PNGs from bench/results/*.json into BENCHMARKS.md

Tabular contenders share each fold's encoded features (our encoder, fit on the fold's train rows):
  ours      `train`'s k-fold pipeline with the task's defaults (in process, so no CLI start-up);
  course    the course's loop: per-sample Dataset + DataLoader(batch_size=32, shuffle=True),
            SGD(lr=0.01, momentum=0.5), its nets (8-6-4-1 sigmoid; 93-64-32-9 ReLU), fixed epochs,
            the last epoch's weights;
  course_raw  the same loop fed the file's numeric columns as read, as the course's exercises do
            (no count transform, no scaling): the course as written, where `course` isolates the
            loop and net from our features. Tasks with missing or text columns (Titanic) have no
            raw form and are refused;
  ours_course_net  our `train` (defaults, features, AdamW one-cycle, batch slicing) running the
            course's net: what the trainer gives, apart from the model;
  sklearn   MLPClassifier with our default's hidden widths, adam, early stopping on 10% of the fold;
  lightgbm  LGBMClassifier, early stopping on the validation fold (as ours stops on it).
Images: test accuracy against wall seconds, evaluated after every epoch, for our default net in
our trainer, the course's CNN in the course's loop (torchvision-style per-sample transforms),
and the course's CNN in our trainer (with the task's defaults under that model's own, as
`train --model` gives them: cifar_course at lr 1e-3). Throughput: training samples/s of our trainer against a
plain hand-written loop on the same model, batch size and tensors.

Each subcommand appends its rows to bench/results/<kind>.json (one file per kind, rows keyed by
task/contender/seed so a rerun replaces its own rows); `report` rebuilds the markdown and plots.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (RESULTS, check_overrides, check_tasks, command_line, machine_label,  # noqa: E402,F401
                          main_exit, parse_data, save)
from core.config import format_overrides  # noqa: E402
from core.errors import UsageError  # noqa: E402
from core.runtime import autocast, seed_everything  # noqa: E402
from models import build_model  # noqa: E402
from models.registry import model_args  # noqa: E402
from models.trainer import fit  # noqa: E402
from pipelines import TASKS  # noqa: E402
from pipelines.metrics import METRICS  # noqa: E402
from pipelines.cv import cross_validate, encode_fold  # noqa: E402
from pipelines.learners import init_from_data  # noqa: E402
from pipelines.inputs import prepare  # noqa: E402
from core.runtime import as_tensor  # noqa: E402
from pipelines.proba import loss_fn, predict_proba, score_fn, to_proba  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"
DATA = {"titanic": None, "diabetes": None, "otto": SHARED / "otto", "mnist": SHARED / "mnist"}
COURSE_NET = {"diabetes": "diabetes_course", "titanic": "diabetes_course", "otto": "otto_course"}
COURSE_EPOCHS = {"diabetes": 100, "titanic": 100, "otto": 20}   # see BENCHMARKS.md for the choice
COURSE_CNN = {"mnist": "cnn_basic", "cifar10": "cifar_course"}
TABULAR_CONTENDERS = ("ours", "course", "course_raw", "ours_course_net", "sklearn", "lightgbm")
IMAGE_CONTENDERS = ("ours", "course", "ours_trainer_course_cnn")


# ---- the course's loops ------------------------------------------------------------------

class RowDataset(Dataset):
    """The course's Dataset: one (features, label) pair per __getitem__."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x, self.y = torch.from_numpy(np.asarray(x, np.float32)), torch.from_numpy(np.asarray(y))

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def __len__(self):
        return len(self.x)


class ImageDataset(Dataset):
    """torchvision-style: a uint8 HWC-ish image per item, ToTensor + Normalize in Python per sample."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean, std):
        self.images, self.labels = images, labels
        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]

    def __getitem__(self, i):
        x = torch.from_numpy(self.images[i]).float().div(255.0)      # transforms.ToTensor()
        return (x - self.mean) / self.std, int(self.labels[i])        # transforms.Normalize(mean, std)

    def __len__(self):
        return len(self.images)


def course_epoch(model, loader, opt, criterion) -> None:
    model.train()
    for xb, yb in loader:
        opt.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        opt.step()


# ---- tabular -----------------------------------------------------------------------------

def _fold_data(inp, cfg, k):
    tr, va = inp.folds[k]
    enc = encode_fold(inp.task, cfg, inp, tr, va, None)
    return tr, va, enc


def raw_features(inp) -> np.ndarray:
    """The task's numeric columns exactly as the file has them, as float32."""
    task = inp.task
    x = inp.train[list(task.numeric)]
    if len(task.numeric) != len(inp.train.columns) - 1 - bool(task.id_col) or x.isna().any().any():
        raise UsageError(f"course_raw: {task.name} has text or missing values, no raw numeric form "
                         "(use `course`, which gets our encoded features)")
    return x.to_numpy(np.float32)


def tabular_contender(name: str, inp, cfg, seed: int, course_epochs: int | None = None) -> dict:
    """CV score, wall seconds and seconds per epoch of one contender on every fold."""
    task = inp.task
    if name in ("ours", "ours_course_net"):
        if name == "ours_course_net":
            cfg = replace(cfg, model=COURSE_NET[task.name])
        start = time.perf_counter()
        result = cross_validate(inp, cfg, predict_test=False)
        seconds = time.perf_counter() - start
        return {"score": result["cv"][task.metric], "seconds": seconds,
                "epochs_run": result.get("epochs_run"), "scores": result["cv"]}
    oof = np.full((len(inp.y),) if task.binary else (len(inp.y), task.out_features), np.nan)
    seconds, epochs_run = 0.0, 0
    raw = raw_features(inp) if name == "course_raw" else None
    for k in range(len(inp.folds)):
        if name == "course_raw":
            tr, va = inp.folds[k]
            x_tr, x_va = raw[tr], raw[va]
        else:
            tr, va, enc = _fold_data(inp, cfg, k)       # encoding is not timed: it is shared
            x_tr, x_va = enc.x_train.cpu().numpy(), enc.x_val.cpu().numpy()
        y_tr, y_va = inp.y[tr], inp.y[va]
        start = time.perf_counter()
        if name in ("course", "course_raw"):
            seed_everything(seed * 101 + k)
            model = build_model(COURSE_NET[task.name], {"in_features": x_tr.shape[1], "out_features": task.out_features})
            loader = DataLoader(RowDataset(x_tr, y_tr), batch_size=32, shuffle=True)
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
            # the course's Sigmoid + BCELoss / CrossEntropyLoss, as our task loss (the course nets emit logits)
            criterion, n_epochs = loss_fn(task), course_epochs or COURSE_EPOCHS[task.name]
            for _ in range(n_epochs):
                course_epoch(model, loader, opt, criterion)
            model.eval()
            with torch.no_grad():
                proba = to_proba(task, model(torch.from_numpy(x_va)))
            epochs_run += n_epochs
        elif name == "sklearn":
            from sklearn.neural_network import MLPClassifier
            widths = tuple(max(8, round(cfg.width * cfg.shrink ** i)) for i in range(cfg.depth))
            clf = MLPClassifier(hidden_layer_sizes=widths, alpha=1e-4, batch_size=cfg.batch_size,
                                learning_rate_init=1e-3, max_iter=cfg.epochs, early_stopping=True,
                                n_iter_no_change=cfg.patience, random_state=seed * 101 + k)
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")       # ConvergenceWarning at max_iter is expected
                clf.fit(x_tr, y_tr)
            p = clf.predict_proba(x_va)
            proba = p[:, 1] if task.binary else p
            epochs_run += clf.n_iter_
        elif name == "lightgbm":
            import lightgbm as lgb
            clf = lgb.LGBMClassifier(n_estimators=3000, learning_rate=0.05, num_leaves=31, subsample=0.8,
                                     subsample_freq=1, colsample_bytree=0.5, min_child_samples=10,
                                     random_state=seed * 101 + k, n_jobs=torch.get_num_threads(), verbose=-1)
            clf.fit(x_tr, y_tr, eval_X=(x_va,), eval_y=(y_va,),
                    callbacks=[lgb.early_stopping(100, verbose=False)])
            p = clf.predict_proba(x_va)
            proba = p[:, 1] if task.binary else p
            epochs_run += clf.best_iteration_ or clf.n_estimators
        else:
            raise UsageError(f"unknown contender {name!r}; known: {', '.join(TABULAR_CONTENDERS)}")
        seconds += time.perf_counter() - start
        oof[va] = proba
    scores = {m: METRICS[m].fn(inp.y, oof) for m in (task.metric, *task.extra_metrics)}
    return {"score": scores[task.metric], "seconds": seconds, "epochs_run": epochs_run, "scores": scores}


def bench_tabular(tasks, seeds, contenders, data: dict, rows: int | None = None,
                  course_epochs: int | None = None, overrides: dict | None = None) -> list[dict]:
    out = []
    for name in tasks:
        task = TASKS.create(name)
        for seed in seeds:
            cfg = task.config(**{**(overrides or {}), "seed": seed, "device": "cpu"})
            inp = prepare(cfg, data.get(name))
            if rows:      # a slice, for the test suite: keep stratified folds over the slice
                from pipelines.folds import make_folds
                keep = np.sort(np.random.default_rng(seed).permutation(len(inp.y))[:rows])
                y = inp.y[keep]
                inp = replace(inp, train=inp.train.iloc[keep].reset_index(drop=True), y=y,
                              folds=make_folds(y, cfg.folds, seed, cfg.holdout))
            for contender in contenders:
                if contender == "course_raw" and task.required:     # text columns: no raw numeric form
                    print(f"skip course_raw on {name}: text columns ({', '.join(task.required)}), no raw numeric form")
                    continue
                res = tabular_contender(contender, inp, cfg, seed, course_epochs)
                row = {"task": name, "contender": contender, "seed": seed, "rows": len(inp.y),
                       "metric": task.metric, **res, **({"set": _label(overrides)} if overrides else {})}
                print(f"| {name} | {contender} | {seed} | " + ", ".join(f"{k} {v:.4f}" for k, v in res["scores"].items())
                      + f" | {res['seconds']:.1f} s |", flush=True)
                out.append(row)
    return out


# ---- images: time to accuracy ------------------------------------------------------------

def image_contender(name: str, task, imgs, seed: int, epochs: int,
                    overrides: dict | None = None) -> list[tuple[float, float]]:
    """[(wall seconds, test accuracy)] after every epoch; the clock includes each epoch's test
    evaluation for every contender (the course's loop runs test() after each epoch too)."""
    from features.images import BatchTransform, ChannelStats, preflip
    device = torch.device("cpu")
    stats = ChannelStats().fit(imgs.train_x[: min(len(imgs.train_x), 10_000)])
    curve: list[tuple[float, float]] = []
    if name == "course":
        seed_everything(seed)
        model = build_model(COURSE_CNN[task.name], {"in_channels": task.channels, "num_classes": 10,
                                                    "image_size": task.size})
        train = DataLoader(ImageDataset(imgs.train_x, imgs.train_y, stats.mean_, stats.std_), batch_size=64, shuffle=True)
        test = DataLoader(ImageDataset(imgs.test_x, imgs.test_y, stats.mean_, stats.std_), batch_size=64)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
        start = time.perf_counter()
        for _ in range(epochs):
            course_epoch(model, train, opt, loss_fn(task))
            model.eval()
            correct = 0
            with torch.no_grad():
                for xb, yb in test:
                    correct += (model(xb).argmax(1) == yb).sum().item()
            curve.append((time.perf_counter() - start, correct / len(imgs.test_y)))
        return curve
    model_name = task.defaults["model"] if name == "ours" else COURSE_CNN[task.name]
    cfg = task.config(**{**(overrides or {}), "model": model_name, "epochs": epochs, "seed": seed,
                         "device": "cpu", "patience": 10_000})
    batch_fn = BatchTransform(stats, device, task.flip, task.translate)
    gen = seed_everything(seed)
    args = model_args(cfg.model, cfg.to_dict(), in_channels=task.channels, image_size=task.size, num_classes=10)
    x_tr = as_tensor(imgs.train_x, device, torch.uint8)
    x_tr = preflip(x_tr, seed) if task.flip else x_tr     # as `train` does: the alternating flip
    y_tr = as_tensor(imgs.train_y, device, torch.long)
    x_te = as_tensor(imgs.test_x, device, torch.uint8)
    y_te = as_tensor(imgs.test_y, device, torch.long)
    score, _ = score_fn(task)
    start = time.perf_counter()            # the clock includes what `train` does before epoch 1
    model = build_model(cfg.model, args)
    init_from_data(model, x_tr, batch_fn)  # as `train` does: fastnet's whitened stem
    setup = time.perf_counter() - start
    tta: list[tuple[float, float]] = []

    def last_epoch_tta(row):
        """After the last epoch, the test-time augmentation `train` predicts with, on those weights."""
        if name == "ours" and row["epoch"] == epochs:
            t = time.perf_counter()
            proba = predict_proba(task, model, x_te, batch_fn, cfg.precision)
            tta.append((setup + row["seconds"] + time.perf_counter() - t,
                        float((proba.argmax(1) == imgs.test_y).mean())))

    res = fit(model, x_tr, y_tr, x_te, y_te, cfg=cfg, loss_fn=loss_fn(task, cfg.label_smoothing),
              score_fn=score, maximize=True, generator=gen, batch_transform=batch_fn, on_epoch=last_epoch_tta)
    return [(setup + row["seconds"], row["val_score"]) for row in res.history] + tta


IMAGE_EPOCHS = {"mnist": {"ours": None, "course": 10, "ours_trainer_course_cnn": 10},
                "cifar10": {"ours": None, "course": 10, "ours_trainer_course_cnn": 10}}


def image_epochs(task, contender: str) -> int:
    """A contender's epochs: the course's count, or for `ours` what the default `train` runs
    (the task's recipe included: CIFAR-10's fastnet trains 16 epochs, the task's other nets 10)."""
    return IMAGE_EPOCHS[task.name][contender] or task.default_params["epochs"]


def bench_images(tasks, seed: int, data: dict, contenders, epochs: dict | None = None, limit: int | None = None,
                 cache: Path = RESULTS / ".cache", overrides: dict | None = None):
    from data.images import load_images
    out = []
    for name in tasks:
        task = TASKS.create(name)
        imgs = load_images(task, data.get(name), cache)
        if limit:
            imgs = replace(imgs, train_x=imgs.train_x[:limit], train_y=imgs.train_y[:limit],
                           test_x=imgs.test_x[:limit], test_y=imgs.test_y[:limit])
        for contender in contenders:
            n = (epochs or {}).get(contender) or image_epochs(task, contender)
            mine = overrides if contender != "course" else None     # the course loop has no config
            curve = image_contender(contender, task, imgs, seed, n, mine)
            print(f"| {name} | {contender} | " + "  ".join(f"{s:.0f}s:{a:.4f}" for s, a in curve) + " |", flush=True)
            out.append({"task": name, "contender": contender, "seed": seed, "epochs": n,
                        "n_train": len(imgs.train_y), "curve": curve, **({"set": _label(mine)} if mine else {})})
    return out


# ---- throughput --------------------------------------------------------------------------

def plain_loop(model, x, y, batch_size: int, loss, batch_fn, generator, precision: str = "fp32") -> float:
    """The loop one writes by hand: AdamW (default kernels), shuffled slices, no schedule; the
    forward pass at the trainer's precision, so that the ratio measures the loop, not bfloat16."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    start = time.perf_counter()
    perm = torch.randperm(len(x), generator=generator)
    for i in range(0, len(x), batch_size):
        idx = perm[i:i + batch_size]
        opt.zero_grad()
        with autocast(x.device, precision):
            out = model(batch_fn(x[idx], True)).float()
        loss(out, y[idx]).backward()
        opt.step()
    return len(x) / (time.perf_counter() - start)


def bench_throughput(cases: list[tuple[str, str, int]], n: int, seed: int, repeats: int = 3) -> list[dict]:
    """For (task, model, batch_size): samples/s of `fit` (one epoch, tiny validation) and of plain_loop."""
    from features.images import BatchTransform, ChannelStats
    out = []
    for task_name, model_name, batch_size in cases:
        task = TASKS.create(task_name)
        cfg = task.config(model=model_name, epochs=1, batch_size=batch_size, seed=seed, device="cpu")
        g = torch.Generator().manual_seed(seed)
        if task.kind == "image":
            x = torch.randint(0, 256, (n, task.channels, task.size, task.size), dtype=torch.uint8, generator=g)
            stats = ChannelStats().fit(x[:256].numpy())
            batch_fn = BatchTransform(stats, torch.device("cpu"), task.flip, task.translate)
            shape = {"in_channels": task.channels, "image_size": task.size, "num_classes": task.out_features}
        else:
            x = torch.randn(n, 95, generator=g)
            batch_fn = lambda xb, training: xb    # noqa: E731
            shape = {"in_features": 95, "out_features": task.out_features}
        y = torch.randint(0, task.out_features if not task.binary else 2, (n,), generator=g)
        args = model_args(model_name, cfg.to_dict(), **shape)
        loss = loss_fn(task, cfg.label_smoothing)
        ours, plain = [], []
        for r in range(repeats + 1):      # the first round warms up allocator and kernels
            torch.manual_seed(seed)
            m = build_model(model_name, args)
            start = time.perf_counter()
            fit(m, x, y, x[:2], y[:2], cfg=cfg, loss_fn=loss, score_fn=lambda a, b: 0.0,
                maximize=True, generator=torch.Generator().manual_seed(r), batch_transform=batch_fn)
            ours_rate = n / (time.perf_counter() - start)
            torch.manual_seed(seed)
            plain_rate = plain_loop(build_model(model_name, args), x, y, batch_size, loss, batch_fn,
                                    torch.Generator().manual_seed(r), cfg.precision)
            if r:
                ours.append(ours_rate)
                plain.append(plain_rate)
        # rounds alternate ours/plain, so a ratio within a round pairs runs that saw the same machine
        # load; the median of those ratios and their range say more than a ratio of medians
        ratios = [o / p for o, p in zip(ours, plain)]
        row = {"task": task_name, "model": model_name, "batch_size": batch_size, "n": n, "repeats": repeats,
               "ours": statistics.median(ours), "plain": statistics.median(plain),
               "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}
        print(f"| {task_name} | {model_name} | {batch_size} | {row['ours']:.0f} | {row['plain']:.0f} | "
              f"{_ratio(row)} |", flush=True)
        out.append(row)
    return out


THROUGHPUT_CASES = [("otto", "mlp", 256), ("otto", "otto_course", 32), ("mnist", "fastnet", 256),
                    ("mnist", "cnn_basic", 64), ("cifar10", "fastnet", 256)]


# ---- results and report ------------------------------------------------------------------

def _label(overrides: dict) -> str:
    """A row's config overrides as saved and keyed, in key order: `lr=0.001 width=16`."""
    return format_overrides(dict(sorted(overrides.items())))


def _name(row: dict) -> str:
    """A result row's contender, followed by its overrides when it has any."""
    return " ".join(filter(None, (row["contender"], row.get("set"))))


def _ran_on(rows: list[dict]) -> str:
    """'Ran on: <machine>, <dates>; ...' for a table's rows (rows saved before the stamp: 'not recorded')."""
    by: dict[str, set] = {}
    for r in rows:
        by.setdefault(r.get("machine", "machine not recorded"), set()).add(r.get("date", "date not recorded"))
    return "Ran on: " + "; ".join(f"{m}, {', '.join(sorted(d))}" for m, d in by.items()) + "."


def _ratio(r: dict) -> str:
    """Median paired ratio ours/plain with its range over rounds (older result files: ratio of medians)."""
    if "ratio" not in r:
        return f"{r['ours'] / r['plain']:.2f}"
    return f"{r['ratio']:.2f} ({r['ratio_min']:.2f}–{r['ratio_max']:.2f}, {r['repeats']} rounds)"


def _mean_sd(vals: list[float]) -> str:
    if len(vals) == 1:
        return f"{vals[0]:.4f}"
    return f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals):.4f}"


def report(folder: Path = RESULTS) -> str:
    """Markdown for BENCHMARKS.md and PNG plots, from the saved result files."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    lines = []
    tab = json.loads((folder / "tabular.json").read_text()) if (folder / "tabular.json").is_file() else []
    if tab:
        lines += [_ran_on(tab), "", "| task | contender | seeds | rows | CV score (mean ± sd) | other metrics | wall s (mean) | s/epoch | wall vs ours |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for task in dict.fromkeys(r["task"] for r in tab):
            mine = [r for r in tab if r["task"] == task]
            ours_s = [r["seconds"] for r in mine if _name(r) == "ours"]
            for label in dict.fromkeys(map(_name, mine)):
                rs = [r for r in mine if _name(r) == label]
                c, metric = rs[0]["contender"], rs[0]["metric"]
                others = ", ".join(f"{k} {_mean_sd([r['scores'][k] for r in rs])}" for k in rs[0]["scores"] if k != metric)
                secs = statistics.mean(r["seconds"] for r in rs)
                per_epoch = [r["seconds"] / r["epochs_run"] for r in rs if r.get("epochs_run")]
                pe = f"{statistics.mean(per_epoch):.3f}" if per_epoch and c in ("ours", "ours_course_net", "course", "course_raw", "sklearn") else "–"
                ratio = f"{secs / statistics.mean(ours_s):.1f}×" if ours_s and label != "ours" else "–"
                lines.append(f"| {task} | {label} | {len(rs)} | {rs[0]['rows']} | {metric} {_mean_sd([r['score'] for r in rs])}"
                             f" | {others or '–'} | {secs:.1f} | {pe} | {ratio} |")
        lines.append("")
    img = json.loads((folder / "images.json").read_text()) if (folder / "images.json").is_file() else []
    for task in dict.fromkeys(r["task"] for r in img):
        fig, ax = plt.subplots(figsize=(6, 4))
        lines += [f"{task}: test accuracy after each epoch (wall seconds, clock includes the per-epoch test pass; "
                  "`ours` ends with one more point: the prediction `train` makes, with the task's test-time augmentation, "
                  "mirror and ±1 px shifts on CIFAR-10, none on MNIST)", "", _ran_on([r for r in img if r["task"] == task]), "",
                  "| contender | epochs | final test accuracy | seconds | curve (s: acc) |", "|---|---|---|---|---|"]
        for r in (r for r in img if r["task"] == task):
            s, a = zip(*r["curve"])
            ax.plot(s, a, marker="o", label=_name(r))
            pts = " ".join(f"{x:.0f}: {y:.4f}" for x, y in r["curve"])
            lines.append(f"| {_name(r)} | {r['epochs']} | {a[-1]:.4f} | {s[-1]:.0f} | {pts} |")
        ax.set(xlabel="wall seconds (2 CPU cores)", ylabel="test accuracy", title=f"{task}: time to accuracy")
        ax.set_ylim(max(0.0, min(a for r in img if r["task"] == task for _, a in r["curve"]) - 0.02), 1.0)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / f"{task}_time_to_accuracy.png", dpi=110)
        plt.close(fig)
        lines += ["", f"![{task}](bench/results/{task}_time_to_accuracy.png)", ""]
    thr = json.loads((folder / "throughput.json").read_text()) if (folder / "throughput.json").is_file() else []
    if thr:
        lines += [_ran_on(thr), "", "| task | model | batch | ours samples/s (median) | plain loop samples/s (median) "
                  "| ours / plain, paired per round: median (range) |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['task']} | {r['model']} | {r['batch_size']} | {r['ours']:.0f} | {r['plain']:.0f} | "
                  f"{_ratio(r)} |" for r in thr]
    if tab:
        fig, axes = plt.subplots(1, len({r['task'] for r in tab}), figsize=(4 * len({r['task'] for r in tab}), 3.5))
        for ax, task in zip(np.atleast_1d(axes), dict.fromkeys(r["task"] for r in tab)):
            mine = [r for r in tab if r["task"] == task]
            for label in dict.fromkeys(map(_name, mine)):
                rs = [r for r in mine if _name(r) == label]
                ax.scatter([r["seconds"] for r in rs], [r["score"] for r in rs], label=label)
            ax.set(xscale="log", xlabel="wall seconds (log)", ylabel=mine[0]["metric"], title=task)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(folder / "tabular_score_vs_time.png", dpi=110)
        plt.close(fig)
        lines += ["", "![tabular](bench/results/tabular_score_vs_time.png)"]
    return "\n".join(lines) + "\n"


def write_report(folder: Path = RESULTS, target: Path = ROOT / "BENCHMARKS.md") -> None:
    """Replace the block between the compare markers in BENCHMARKS.md (append it if absent)."""
    head = (f"Generated by `python bench/compare.py report` on {date.today()} from bench/results/*.json, "
            f"torch {torch.__version__}, CPU only; each table names the machine and date its rows ran on "
            "(wall times compare only within one machine). CIFAR-10 here is the JPEG-q75 copy in ../shared.\n\n")
    block = "<!-- compare:start -->\n" + head + report(folder) + "<!-- compare:end -->"
    text = target.read_text() if target.is_file() else ""
    if "<!-- compare:start -->" in text:
        before, rest = text.split("<!-- compare:start -->", 1)
        after = rest.split("<!-- compare:end -->", 1)[1]
        text = before + block + after
    else:
        text += "\n" + block + "\n"
    target.write_text(text)


def check_contenders(names: list[str], known: tuple[str, ...]) -> list[str]:
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown contender(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def parse_epochs(items: list[str], contenders: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, _, n = item.partition("=")
        if name not in contenders:
            raise UsageError(f"--epochs {item!r}: {name!r} is not a contender of this run ({', '.join(contenders)})")
        if not n.isdigit() or int(n) < 1:
            raise UsageError(f"--epochs wants CONTENDER=N with N a positive whole number, got {item!r}")
        out[name] = int(n)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=["tabular", "images", "throughput", "report"])
    ap.add_argument("--tasks", nargs="+")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--contenders", nargs="+")
    ap.add_argument("--data", nargs="*", action="extend", default=[], metavar="TASK=DIR")
    ap.add_argument("--rows", type=int, help="tabular: a stratified slice of this many rows (tests)")
    ap.add_argument("--limit", type=int, help="images: first N train and test images (tests)")
    ap.add_argument("--course-epochs", type=int, help="override the course loop's epoch count")
    ap.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                    help="config overrides for our contenders, as train --set (tabular: also the shared features)")
    ap.add_argument("--epochs", nargs="*", action="extend", default=[], metavar="CONTENDER=N", help="images: epochs per contender")
    ap.add_argument("--n", type=int, default=20_000, help="throughput: samples per epoch")
    ap.add_argument("--repeats", type=int, default=5, help="throughput: timed rounds per case (after one warm-up)")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--benchmarks-md", type=Path, default=ROOT / "BENCHMARKS.md")
    args = ap.parse_args(argv)
    data = {**DATA, **parse_data(args.data)}
    command = command_line("bench/compare.py", argv)
    if args.kind == "tabular":
        tasks = check_tasks(args.tasks or ["titanic", "diabetes", "otto"])
        contenders = check_contenders(args.contenders or ["ours", "course", "sklearn", "lightgbm"], TABULAR_CONTENDERS)
        overrides = check_overrides(tasks, args.set)
        if contenders == ["course_raw"] and all(TASKS.create(t).required for t in tasks):
            raise UsageError(f"course_raw: {', '.join(tasks)} ha{'s' if len(tasks) == 1 else 've'} text columns, "
                             "no raw numeric form (use `course`)")
        tasks = [t for t in tasks if data.get(t) is None or data[t].is_dir() or print(f"skip {t}: {data[t]} not found")]
        print("| task | contender | seed | CV | wall |\n|---|---|---|---|---|")
        rows = bench_tabular(tasks, args.seeds, contenders, data, args.rows, args.course_epochs, overrides)
        print(f"saved {save('tabular', rows, ('task', 'contender', 'seed', 'set'), args.results, command)}")
    elif args.kind == "images":
        tasks = check_tasks(args.tasks or ["mnist"])
        contenders = check_contenders(args.contenders or list(IMAGE_CONTENDERS), IMAGE_CONTENDERS)
        epochs = parse_epochs(args.epochs, contenders)
        rows = bench_images(tasks, args.seeds[0], data, contenders, epochs, args.limit, args.results / ".cache",
                            check_overrides(tasks, args.set))
        print(f"saved {save('images', rows, ('task', 'contender', 'set'), args.results, command)}")
    elif args.kind == "throughput":
        tasks = check_tasks(args.tasks or [])
        cases = [c for c in THROUGHPUT_CASES if not tasks or c[0] in tasks]
        print("| task | model | batch | ours samples/s | plain samples/s | ratio |\n|---|---|---|---|---|---|")
        rows = bench_throughput(cases, args.n, args.seeds[0], args.repeats)
        print(f"saved {save('throughput', rows, ('task', 'model', 'batch_size'), args.results, command)}")
    else:
        write_report(args.results, args.benchmarks_md)
        print(f"wrote {args.benchmarks_md} and plots under {args.results}")
    return 0


if __name__ == "__main__":
    main_exit(main)
