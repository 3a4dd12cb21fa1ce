"""What a study found, as `tune` ends: the top trials, pruned and failed counts, the time pruning
saved, best_params.json (the whole config of the best trial, for `train --params best`) and the
history and importance plots."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna

from core.errors import UsageError
from pipelines import runs


@dataclass
class TuneResult:
    study_dir: Path
    best_value: float
    best_params: dict
    n_complete: int
    n_pruned: int
    n_failed: int
    seconds_saved: float          # estimated from each pruned trial's own pace (see `pruned_saving`)
    top: list[dict]
    plots: list[Path]


def summarize(st: optuna.Study, task, folder: Path, fixed: dict, top_n: int = 5) -> TuneResult:
    states = optuna.trial.TrialState
    done = [t for t in st.trials if t.state == states.COMPLETE]
    pruned = [t for t in st.trials if t.state == states.PRUNED]
    failed = [t for t in st.trials if t.state == states.FAIL]
    if not done:
        raise UsageError(f"study {st.study_name!r} has no complete trial yet (pruned {len(pruned)}, failed {len(failed)})")
    secs = lambda t: (t.datetime_complete - t.datetime_start).total_seconds()
    saved = sum(pruned_saving(t, secs(t)) for t in pruned)
    folder.mkdir(parents=True, exist_ok=True)
    best = st.best_trial
    held = lambda t: t.user_attrs.get("fixed", fixed)    # trials from before this attribute: today's --set
    # the config the best trial trained with (trials from before the "config" attribute: what it
    # sampled and held, today's defaults fill in the rest)
    params = best.user_attrs.get("config") or {**best.params, **held(best)}
    runs.write_json(folder / "best_params.json", params)
    reverse = st.direction == optuna.study.StudyDirection.MAXIMIZE
    top = sorted(done, key=lambda t: t.value, reverse=reverse)[:top_n]
    top_rows = [{"trial": t.number, "value": t.value, "seconds": secs(t), **t.params, **held(t)} for t in top]
    return TuneResult(folder, best.value, params, len(done), len(pruned), len(failed), saved, top_rows,
                      write_plots(st, folder))


def pruned_saving(trial: optuna.trial.FrozenTrial, seconds: float) -> float:
    """Seconds a pruned trial would still have trained at its own pace: it did the fraction `done`
    of its work in `seconds`. An upper estimate, since early stopping may have ended folds sooner.
    Trials pruned before this attribute existed count nothing rather than a guess."""
    done = trial.user_attrs.get("done")
    return seconds * (1 / done - 1) if done else 0.0


def write_plots(st: optuna.Study, folder: Path) -> list[Path]:
    """Optimization history and parameter importances as PNG (matplotlib backend)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as ovm
    except ImportError:
        return []
    out = []
    warnings.filterwarnings("ignore", message=".*importances.*", category=UserWarning)
    for name, plot in [("history", ovm.plot_optimization_history), ("importances", ovm.plot_param_importances)]:
        try:
            ax = plot(st)
        except (ValueError, RuntimeError):      # importances need >= 2 complete trials with varying params
            continue
        path = folder / f"{name}.png"
        (ax.figure if hasattr(ax, "figure") else ax[0].figure).savefig(path, dpi=100, bbox_inches="tight")
        plt.close("all")
        out.append(path)
    return out
