"""Plots of a run, made from its files: what `train` writes at the end and `report` rebuilds.

Everything here reads only the run directory (`config.json`, `metrics.json`, `history.csv`,
`oof.csv`, and for an unfinished run the finished bags' `fold<k>/bag<b>.json`), so the plots of any
run can be rebuilt at any time. They go to `<run>/plots/`:

    loss.png           train and validation loss per epoch, side by side; one colour per fold, one
                       line style per bag
    val_score.png      the task's metric per epoch (`val_<metric>` in the history; where early
                       stopping watches the metric itself, `val_score`), kept epoch marked
    confusion.png      OOF argmax predictions against the targets (every classification task)
    class_logloss.png  mean -log p(true class) per class, Kaggle clipping (multi-class)
    calibration.png    OOF reliability curve and histogram of predicted probabilities (binary)
    predicted.png, residuals.png   in place of the last three for regression (pipelines/plots_regression.py)

Figures are built with `matplotlib.figure.Figure` and saved with the Agg renderer: no window,
no pyplot figure left open.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import UsageError, first_line
from core.files import replace_atomically
from pipelines import runs
from pipelines.metrics import hard_labels, kaggle_nll, monitor as stopping_signal
from pipelines.plots_regression import plot_predicted, plot_residuals

log = logging.getLogger(__name__)

PLOTS = "plots"


# ---- reading the run's files -------------------------------------------------------------

def load_history(run_dir: Path) -> pd.DataFrame | None:
    """One row per (fold, bag, epoch): history.csv, or for an unfinished run the finished bags' records."""
    if (run_dir / "history.csv").is_file():
        return pd.read_csv(run_dir / "history.csv")
    rows = []
    for rec in sorted(run_dir.glob("fold*/bag*.json")):
        fold, bag = int(rec.parent.name[4:]), int(rec.stem[3:])
        rows += [{"fold": fold, "bag": bag, **row} for row in runs.read_json(rec)["history"]]
    return pd.DataFrame(rows) if rows else None


def load_oof(run_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """(targets (n,), probabilities (n,) for binary or (n, C), class names) of the scored rows;
    for regression (float targets, predicted values (n,), []).

    A holdout run (folds=1) scores only its holdout rows; the others are NaN and dropped."""
    if not (run_dir / "oof.csv").is_file():
        return None
    df = pd.read_csv(run_dir / "oof.csv")
    if "prediction" in df.columns:
        p = df["prediction"].to_numpy(float)
        return df["target"].to_numpy(float)[~np.isnan(p)], p[~np.isnan(p)], []
    if "proba" in df.columns:
        names, p = ["0", "1"], df["proba"].to_numpy(float)
    else:
        names = [c for c in df.columns if c not in ("id", "target")]
        p = df[names].to_numpy(float)
    scored = ~np.isnan(p.reshape(len(p), -1)).any(1)
    return df["target"].to_numpy(int)[scored], p[scored], names


def class_logloss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Mean -log p(true class) per class (C,), after Kaggle's clipping and row renormalisation;
    the count-weighted mean is the competition's multi-class logloss. NaN for an absent class."""
    nll = kaggle_nll(y, p)
    return np.array([nll[y == c].mean() if (y == c).any() else np.nan for c in range(p.shape[1])])


# ---- plots -------------------------------------------------------------------------------

def _figure(size=(6.4, 4.4)):
    from matplotlib.figure import Figure
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots()


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(exist_ok=True)
    # a half-written PNG never sits under the final name (format given: the temp name ends in .tmp)
    replace_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    return path


def _epoch_axis(ax, epochs: pd.Series) -> None:
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if epochs.min() == epochs.max():      # one epoch: whole-number ticks either side, not 0.95..1.05
        ax.set_xlim(epochs.min() - 1, epochs.max() + 1)


BAG_STYLES = ("-", "--", ":", "-.")     # line style of bag b: BAG_STYLES[b % 4]; the colour is the fold's


def _style(fold: int, bag: int, points: int) -> dict:
    """A curve's look: its fold's colour, its bag's line style, and a marker when it has one
    point (a 1-epoch run), which a line alone would not draw."""
    return {"color": f"C{fold % 10}", "linestyle": BAG_STYLES[bag % len(BAG_STYLES)],
            "marker": "o" if points == 1 else None}


def _curves(history: pd.DataFrame) -> list[str]:
    """One curve per (fold, bag), and per member of a learner combination (its steps restart)."""
    return ["fold", "bag"] + [c for c in ("member", "phase") if c in history.columns]


def _legend(ax, history: pd.DataFrame) -> None:
    """One entry per fold (its colour) and, with bags, one per bag (its line style, in grey):
    5 folds of 3 bags make 8 entries, not 15."""
    from matplotlib.lines import Line2D
    folds, bags = sorted(history["fold"].unique()), sorted(history["bag"].unique())
    handles = [Line2D([], [], color=f"C{f % 10}", label=f"fold {f}") for f in folds]
    if len(bags) > 1:
        handles += [Line2D([], [], color="grey", linestyle=BAG_STYLES[b % len(BAG_STYLES)], label=f"bag {b}")
                    for b in bags]
    ax.legend(handles=handles, fontsize="small", ncol=1 if len(handles) <= 5 else 2)


def plot_loss(history: pd.DataFrame, path: Path) -> Path:
    from matplotlib.figure import Figure
    fig = Figure(figsize=(9.6, 4.4), layout="constrained")
    train_ax, val_ax = fig.subplots(1, 2, sharey=True)
    for (fold, bag, *_), g in history.groupby(_curves(history)):
        train_ax.plot(g["epoch"], g["train_loss"], **_style(fold, bag, len(g)))
        val_ax.plot(g["epoch"], g["val_loss"], **_style(fold, bag, len(g)))
    train_ax.set(xlabel="epoch", ylabel="loss", title="train loss")
    val_ax.set(xlabel="epoch", title="validation loss")
    for ax in (train_ax, val_ax):
        _epoch_axis(ax, history["epoch"])
    _legend(val_ax, history)
    return _save(fig, path)


def plot_val_score(history: pd.DataFrame, best: dict[tuple[int, int], int], path: Path,
                   metric: str | None = None, monitor: str | None = None) -> Path:
    """The task's `metric` per epoch where the history has it (`val_<metric>`), else `val_score`, the
    early-stopping signal (`monitor`), labelled as that. `best`: (fold, bag) -> the epoch kept."""
    column, name, note = "val_score", monitor or "score", ""
    if metric and f"val_{metric}" in history and history[f"val_{metric}"].notna().any():
        column, name = f"val_{metric}", metric
    elif metric and monitor and monitor != metric:      # a run from before val_<metric> was recorded
        note = f"\n(the early-stopping signal; this run's history has no per-epoch {metric})"
    fig, ax = _figure()
    for (fold, bag, *_), g in history.groupby(_curves(history)):
        ax.plot(g["epoch"], g[column], **_style(fold, bag, len(g)))
        kept = g[g["epoch"] == best.get((fold, bag))]
        if len(kept):
            ax.plot(kept["epoch"].iloc[0], kept[column].iloc[0], "o", color=f"C{fold % 10}")
    by = f", best {monitor}" if monitor and monitor != name else ""
    ax.set(xlabel="epoch", ylabel=f"validation {name}",
           title=f"validation {name} per epoch (dot: the epoch kept{by}){note}")
    _epoch_axis(ax, history["epoch"])
    _legend(ax, history)
    return _save(fig, path)


def plot_confusion(y: np.ndarray, p: np.ndarray, names: list[str], path: Path) -> Path:
    from sklearn.metrics import ConfusionMatrixDisplay
    pred = hard_labels(p)
    side = max(4.8, 0.6 * len(names) + 2)
    fig, ax = _figure((side, side - 0.6))
    ConfusionMatrixDisplay.from_predictions(y, pred, labels=np.arange(len(names)), display_labels=names, ax=ax,
                                            colorbar=False, xticks_rotation=45 if max(map(len, names)) > 3 else 0)
    ax.set_title(f"OOF confusion matrix (accuracy {np.mean(pred == y):.4f}, n={len(y)})")
    return _save(fig, path)


def plot_class_logloss(y: np.ndarray, p: np.ndarray, names: list[str], path: Path) -> Path:
    per_class = class_logloss(y, p)
    counts = np.bincount(y, minlength=len(names))
    overall = np.nansum(per_class * counts) / counts.sum()
    fig, ax = _figure((max(6.4, 0.7 * len(names) + 2), 4.4))
    bars = ax.bar(range(len(names)), np.nan_to_num(per_class), color="C0")
    ax.bar_label(bars, labels=[f"n={c}" for c in counts], fontsize="small")
    ax.axhline(overall, color="C3", ls="--", label=f"overall {overall:.4f}")
    ax.set_xticks(range(len(names)), names, rotation=45 if max(map(len, names)) > 3 else 0)
    ax.set(xlabel="true class", ylabel="mean -log p(true class)", title="OOF logloss per class")
    ax.legend()
    return _save(fig, path)


def plot_calibration(y: np.ndarray, p: np.ndarray, path: Path) -> Path:
    from sklearn.calibration import calibration_curve
    frac, mean = calibration_curve(y, p, n_bins=10, strategy="uniform")
    fig, ax = _figure()
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    ax.plot(mean, frac, "o-", color="C0", label="OOF")
    hist = ax.twinx()
    hist.hist(p, bins=20, range=(0, 1), color="C1", alpha=0.25)
    hist.set_ylabel("rows")
    ax.set_zorder(hist.get_zorder() + 1)      # the curve over the histogram
    ax.patch.set_visible(False)
    ax.set(xlabel="mean predicted probability", ylabel="fraction positive", xlim=(0, 1), ylim=(0, 1),
           title=f"OOF calibration (n={len(y)})")
    ax.legend(loc="upper left")
    return _save(fig, path)


def _use_agg() -> None:
    import matplotlib
    if "matplotlib.pyplot" not in sys.modules:      # sklearn's displays import pyplot: keep it headless
        matplotlib.use("Agg")


def _task_metrics(run_dir: Path) -> tuple[str | None, str | None]:
    """(metric, early-stopping signal) of the run's task; (None, None) without a readable config."""
    from pipelines import TASKS
    try:
        task = TASKS.create(runs.read_json(run_dir / "config.json")["config"]["task"])
    except (UsageError, KeyError, TypeError):
        return None, None
    return task.metric, stopping_signal(task)


def _best_epochs(run_dir: Path, metrics: dict | None) -> dict[tuple[int, int], int]:
    """(fold, bag) -> the epoch whose weights were kept: metrics.json, or the finished bags' records."""
    if metrics is not None:
        return {(f["fold"], b): e for f in metrics.get("folds", []) for b, e in enumerate(f.get("best_epochs", []))}
    return {(int(r.parent.name[4:]), int(r.stem[3:])): runs.read_json(r).get("best_epoch")
            for r in run_dir.glob("fold*/bag*.json")}


def make_plots(run_dir: Path) -> list[Path]:
    """Every plot the run's files allow, written to <run>/plots/; returns their paths."""
    _use_agg()
    run_dir, folder, out = Path(run_dir), Path(run_dir) / PLOTS, []
    metrics = runs.read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").is_file() else None
    history = load_history(run_dir)
    if history is not None and len(history):
        out += [plot_loss(history, folder / "loss.png"),
                plot_val_score(history, _best_epochs(run_dir, metrics), folder / "val_score.png",
                               *_task_metrics(run_dir))]
    oof = load_oof(run_dir)
    if oof is not None and len(oof[0]):
        y, p, names = oof
        if not names:      # regression
            return out + [plot_predicted(y, p, folder / "predicted.png", _figure, _save),
                          plot_residuals(y, p, folder / "residuals.png", _figure, _save)]
        out.append(plot_confusion(y, p, names, folder / "confusion.png"))
        out.append(plot_calibration(y, p, folder / "calibration.png") if p.ndim == 1
                   else plot_class_logloss(y, p, names, folder / "class_logloss.png"))
    return out


def write_plots(run_dir: Path) -> list[Path]:
    """`make_plots` at the end of `train`: the run's files are all written, so a plotting
    failure only warns (`report` can make the plots later)."""
    try:
        return make_plots(run_dir)
    except Exception as e:
        log.warning("warning: %s: plots not written (%s: %s)", Path(run_dir).name, type(e).__name__, first_line(e))
        return []


def ensure_plots(run_dir: Path, state: str) -> list[Path]:
    """The run's plots, made when missing. An unfinished run's plots are remade every time:
    its history grows as bags finish."""
    existing = sorted((run_dir / PLOTS).glob("*.png"))
    if state == "complete" and existing and len(existing) == _expected_count(run_dir):
        return existing
    return make_plots(run_dir)


def _expected_count(run_dir: Path) -> int:
    """loss and val_score with a history; two from the OOF rows (confusion and calibration or
    class logloss; regression: predicted and residuals)."""
    history = (run_dir / "history.csv").is_file()
    return 2 * history + 2 * (run_dir / "oof.csv").is_file()
