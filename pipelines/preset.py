"""`train TASK --preset best --time-limit 30m`: a portfolio of diverse learners trained one after
another inside a time budget, each a normal run (its own folder, CV, submission), then stacks of
the finished ones (pipelines/stack.py: logistic or ridge regression on their predictions, and
weights >= 0 summing to 1, each cross-fitted), a leaderboard of every learner and stack, and the
best of them written as the submission: what AutoGluon's `best_quality` does, on this tool's runs.
Every figure on the leaderboard is honest; taking the best of them reads the OOF labels once more,
so the winner's figure is a little optimistic as an estimate of the submission (a choice among a
handful, not a fit).

    best   lightgbm, extra trees, the task's MLP (its own tuned defaults), xgboost, a wider,
           deeper MLP (512 units, 3 layers, dropout 0.4), a random forest, tabm, catboost, then a
           second LightGBM (smaller leaves, slower learning, half the columns). The two forests
           (300 fully grown trees, pipelines/learners.py) are weak alone but err unlike the rest:
           on Otto the extra trees took the stack from 0.4360 to 0.4277 (seed 0, `stack`), and
           they are cheap (150 s there). Ordered so that, when the budget is short for the
           data, the kinds seen to cost the most per fold come last: on Otto (62k rows, 9
           classes, 2 cores) a first fold of catboost or of the slow LightGBM took 230-400 s,
           more than a whole run of the MLP (about 200 s); started before the others, they were
           stopped at that fold, using the time the wide MLP and tabm would have finished in.
           On small tables all seven fit and the order does not matter. The task's own default
           learner, where it is one of these (Otto: tabm; diabetes: the MLP), goes first
           (lead_with_default).
    fast   the linear baseline (logreg or ridge), then LightGBM at learning rate 0.1: a first
           submission in about a minute on a table of tens of thousands of rows

Learners whose library is missing (catboost is optional), that are not registered, or that do
not fit the problem are skipped, and the preset says so. Every run shares the task's folds
(`--folds`, `--seed`), so the stack's cross-fit is over the same rows, and early-stops on a share
of each fold's training rows (`stopping=inner`): the preset picks its submission by CV and stacks
on the OOF predictions, so no OOF row's label may have chosen a learner's epoch or round. Not
`stopping=refit`, the single runs' default: its second fit per fold and bag would leave room for
fewer learners inside the budget. A net the task trains a fixed epoch count (`stopping=fixed`:
Otto's TabM) trains so here too, and a one-fit learner (logreg) always does: as honest, one fit,
and on every training row.

The budget is planned from progress measured in this run, never from durations written here:
- a learner of a kind that already finished in this preset is started only if its measured time
  fits in what is left;
- any learner is stopped, and its run discarded, once the folds it finished project past the
  learners' deadline (time so far / folds done x folds), or once that deadline passes mid-fold
  (checked at every epoch or boosting round);
- the learners' deadline keeps STACK_SHARE of the budget for the stacks, which read the runs' kept
  test predictions (pipelines/predict.py) and check the budget between their meta-learners' fits,
  stopping there; the best single run's submission is written before them, so the preset has a
  valid submission whenever it stops.
A task without test rows (diabetes) gets the same runs, stack CV and leaderboard, and no file: the
preset names the commands that predict new rows with the best of them.
A learner is stopped only between two of its steps, so one step (an epoch, a round, 50 trees of
a forest, one linear fit) may run past the deadline: on huge data give the preset the time of one.
"""
from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import UsageError, first_line
from pipelines import TASKS, runs
from pipelines.inputs import check_learner
from pipelines.learners import LEARNERS
from pipelines.metrics import METRICS
from submissions.format import SUBMISSIONS_DIR, check_writable

clock = time.perf_counter     # the budget's clock (a test replaces it)
STACK_SHARE = 0.1           # of the budget, kept for the stack after the learners' deadline
# the level-2 learners tried (pipelines/stack_meta.py), on the OOF only; the cheap one first, so a
# budget that ends during the other still leaves a stack
STACK_METAS = ("weights", "linear")
LINEAR = {"regression": "ridge"}      # the linear baseline per problem (classification: logreg)

PRESETS: dict[str, tuple[dict, ...]] = {
    "best": ({"model": "lightgbm"}, {"model": "extratrees"}, {"model": "mlp"}, {"model": "xgboost"},
             {"model": "mlp", "width": 512, "depth": 3, "dropout": 0.4}, {"model": "randomforest"},
             {"model": "tabm"}, {"model": "catboost"},
             {"model": "lightgbm", "trees": {"num_leaves": 15, "learning_rate": 0.03, "colsample": 0.5}}),
    "fast": ({"model": "linear"}, {"model": "lightgbm", "trees": {"learning_rate": 0.1}}),
}


class BudgetSpent(Exception):
    """Raised from a run's progress hooks: the learner cannot finish inside the budget."""


@dataclass
class Entry:
    name: str                    # the learner as the leaderboard names it
    run: str | None = None       # its run folder's name, when it finished
    submission: Path | None = None   # the submission that run wrote
    scores: dict = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""               # why it was skipped or stopped


@dataclass
class PresetResult:
    task: str
    metric: str
    entries: list[Entry]
    stacks: dict                 # meta-learner -> the stack's CV scores, when two runs or more finished
    best: str                    # the entry with the best CV (its submission written, where there is a test)
    submission: Path | None      # None: the task has no test rows to predict
    seconds: float
    runs: list[str] = field(default_factory=list)     # the finished runs, in training order

    def leaderboard(self) -> list[tuple[str, dict]]:
        """(name, CV scores) of every finished learner and the stack, best first."""
        rows = [(f"{e.name} ({e.run})", e.scores) for e in self.entries if e.run]
        rows += [(f"stack ({meta})", cv) for meta, cv in self.stacks.items()]
        sign = -1 if METRICS[self.metric].maximize else 1
        return sorted(rows, key=lambda r: sign * r[1][self.metric])


def parse_duration(text: str) -> float:
    """'30m', '90s', '1h', '1h30m' or plain seconds -> seconds."""
    units, total, number = {"h": 3600, "m": 60, "s": 1}, 0.0, ""
    try:
        for ch in text.strip().lower():
            if ch in units:
                total, number = total + float(number) * units[ch], ""
            else:
                number += ch
        total += float(number) if number else 0.0
    except ValueError:
        total = -1.0
    if not total > 0:
        raise UsageError(f"--time-limit {text!r}: give a duration such as 90s, 30m or 1h")
    return total


def candidates(task, preset: str) -> tuple[list[tuple[str, dict]], list[Entry]]:
    """The preset's learners this task can train: (leaderboard name, config overrides), and the
    skipped ones with the reason."""
    if preset not in PRESETS:
        raise UsageError(f"--preset {preset}: unknown; choose {' or '.join(PRESETS)}")
    if task.kind != "tabular":
        raise UsageError(f"--preset: for tables only; {task.name} is an image task")
    keep, skipped, seen = [], [], {}
    for spec in lead_with_default(task, PRESETS[preset]):
        spec = dict(spec)
        if spec["model"] == "linear":
            spec["model"] = LINEAR.get(task.problem, "logreg")
        model = spec["model"]
        seen[model] = seen.get(model, 0) + 1
        name = model + (f" #{seen[model]}" if seen[model] > 1 else "")
        try:
            check_learner(task, task.config(**spec))      # registered, for this problem, its library here
        except UsageError as e:
            skipped.append(Entry(name, note=first_line(e)))
            continue
        keep.append((name, spec))
    return keep, skipped


def lead_with_default(task, portfolio: tuple[dict, ...]) -> list[dict]:
    """The portfolio with the task's own default learner moved first, where the portfolio trains it
    as is ({"model": NAME}, no settings of its own): the learner its defaults were measured best
    with on this task (Otto's TabM), so a budget too short for every learner still trains it rather
    than spending itself on the kinds ahead of it in the generic order. On Otto those four
    (lightgbm, the MLP, xgboost, the wide MLP) took 820 s of a 30-minute preset (seed 2, BENCHMARKS.md:
    its runs began 205, 213, 288 and 114 s apart), all a 15-minute budget leaves its learners.
    An inferred task's default (a combination, mlp+lightgbm) is not in the portfolio as such: the
    order stays."""
    default = {"model": task.params()["model"]}
    lead = next((i for i, spec in enumerate(portfolio) if spec == default), None)
    if lead is None:
        return list(portfolio)
    return [portfolio[lead], *portfolio[:lead], *portfolio[lead + 1:]]


def stopping(task, model: str) -> str:
    """How a preset learner picks its epochs (rounds) honestly in one fit: 'inner', except where
    nothing is held out for it: a one-fit learner (logreg: no count to choose) and a net the task
    trains a fixed count (its defaults and recipe say stopping=fixed for that model: its epochs are
    then a whole schedule, not a cap for early stopping) train on every training row ('fixed')."""
    unit = LEARNERS.get(model).progress_unit
    if unit == "fit" or (unit == "epoch" and task.config(model=model).stopping == "fixed"):
        return "fixed"
    return "inner"


def run_preset(task_name: str, preset: str, time_limit: float, overrides: dict, data_dir: Path | None = None,
               out: Path | None = None, runs_root: Path | None = None, say=print,
               start: float | None = None) -> PresetResult:
    """Train the preset's learners inside `time_limit` seconds, stack them, write the best
    submission (to `out`, or submissions/<task>-preset-<preset>.csv). `overrides`: config keys
    every learner shares (folds, seed, jobs, device). `start`: when the budget began (perf_counter;
    default now)."""
    from pipelines.stack import stack
    from pipelines.train import train
    start = clock() if start is None else start
    task = TASKS.create(task_name)
    todo, entries = candidates(task, preset)
    for e in entries:
        say(f"skipped {e.name}: {e.note}")
    out = out or SUBMISSIONS_DIR / f"{task.name}-preset-{preset}.csv"
    check_writable(out)
    root = runs_root or runs.RUNS_ROOT
    learners_end = start + time_limit * (1 - STACK_SHARE)
    took: dict[str, float] = {}          # model -> seconds its last finished run took here
    for name, spec in todo:
        left = learners_end - clock()
        if spec["model"] in took and took[spec["model"]] > left:
            entries.append(Entry(name, note=f"not started: its kind took {took[spec['model']]:.0f}s here, {max(left, 0):.0f}s left"))
            say(f"{name}: not started ({entries[-1].note.split(': ', 1)[1]})")
            continue
        if left <= 0:
            entries.append(Entry(name, note="not started: the budget is spent"))
            continue
        before = _runs(root, task.name)
        cfg = task.config(**{"stopping": stopping(task, spec["model"]), **overrides, **spec})
        t0 = clock()
        hooks = _Hooks(learners_end, cfg.folds, t0)
        try:
            res = train(cfg, data_dir=data_dir, runs_root=runs_root, on_epoch=hooks.on_epoch, on_fold=hooks.on_fold)
        except BudgetSpent as e:
            for d in _runs(root, task.name) - before:
                runs.discard(d)
            entries.append(Entry(name, seconds=clock() - t0, note=f"stopped: {e}"))
            say(f"{name}: stopped after {entries[-1].seconds:.0f}s ({e}); its run discarded")
            continue
        took[spec["model"]] = res.seconds
        entries.append(Entry(name, res.run_dir.name, res.submission, res.scores, res.seconds))
        say(f"{name}: CV {task.metric} {res.scores[task.metric]:.5f}  ({res.seconds:.0f}s)  run {res.run_dir.name}")
    done = [e for e in entries if e.run]
    if not done:
        raise UsageError(f"--time-limit {time_limit:.0f}s: no learner of preset {preset} finished inside it "
                         f"({'; '.join(f'{e.name}: {e.note}' for e in entries if e.note)}); give it more time")
    sign = -1 if METRICS[task.metric].maximize else 1
    best = min(done, key=lambda e: sign * e.scores[task.metric])
    submit = best.submission is not None      # a task without test rows (diabetes): CV and runs only
    if submit:
        shutil.copyfile(best.submission, out)     # a valid file before the stack
    chosen, stacked, ids = best.name, {}, [e.run for e in done]
    end = start + time_limit

    def check() -> None:
        if clock() > end:
            raise BudgetSpent("the budget ended")
    if len(done) >= 2:
        try:
            # each meta-learner's cross-fitted CV from the OOF alone; the test predictions (the runs'
            # kept ones) and the final fit only for the one that is submitted
            for meta in STACK_METAS:
                try:
                    stacked[meta] = stack(task.name, ids, meta=meta, data_dir=data_dir, runs_root=runs_root,
                                          submit=False, check=check).cv
                except BudgetSpent as e:
                    say(f"stack ({meta}) stopped: {e}")
                    break
            meta = min(stacked, key=lambda m: sign * stacked[m][task.metric], default=None)
            if meta and sign * stacked[meta][task.metric] < sign * best.scores[task.metric]:
                if submit:
                    st = stack(task.name, ids, meta=meta, data_dir=data_dir, runs_root=runs_root, cv=stacked[meta],
                               check=check, out=out.with_name(out.stem + "-stack" + out.suffix))
                    shutil.copyfile(st.submission, out)
                    st.submission.unlink(missing_ok=True)
                chosen = f"stack ({meta})"
        except UsageError as e:           # the best single run stands
            say(f"stack skipped: {first_line(e)}")
        except BudgetSpent as e:          # the best single run's file is in place
            say(f"stack stopped: {e}; the best single run stands")
    return PresetResult(task.name, task.metric, entries, stacked, chosen, out if submit else None,
                        clock() - start, ids)


class _Hooks:
    """A run's progress hooks that stop it when it cannot finish by `deadline`."""

    def __init__(self, deadline: float, folds: int, start: float):
        self.deadline, self.folds, self.start, self.done = deadline, folds, start, 0

    def on_epoch(self, fold: int, bag: int, row: dict) -> None:
        if clock() > self.deadline:
            raise BudgetSpent("the learners' deadline passed mid-fold")

    def on_fold(self, fold: int, row: dict) -> None:
        """Project the run's end from its finished folds. Folds train `jobs` at a time (the row
        says how many: pipelines/cv.py), so the time so far is that of the rounds of `jobs` folds
        begun; 5 folds 2 at a time take 3 such rounds, not 5 folds' worth."""
        self.done += 1
        now = clock()
        jobs = max(1, int(row.get("jobs", 1)))
        per_round = (now - self.start) / math.ceil(self.done / jobs)
        projected = self.start + per_round * math.ceil(self.folds / jobs)
        if self.done < self.folds and projected > self.deadline:
            raise BudgetSpent(f"{self.done} of {self.folds} folds in {now - self.start:.0f}s"
                              f"{f' ({jobs} at a time)' if jobs > 1 else ''} project "
                              f"{projected - self.start:.0f}s, past the deadline")


def _runs(root: Path, task: str) -> set[Path]:
    folder = Path(root) / task
    return {d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")} if folder.is_dir() else set()

