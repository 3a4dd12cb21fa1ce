"""Issue 25 at Playground size: a synthetic competition of ROWS x COLS (1M x 30 is the issue's
target: ingest in <= 30 s, the default 5-fold train in <= 30 minutes and <= 8 GiB), written once,
then measured in fresh processes, as a user meets it:

    ingest-infer    `data.infer.infer(NAME, DIR)`: the id, target, problem and column types
    ingest-prepare  `resolve_task` + `pipelines.inputs.prepare(cfg, DIR)`: the run's whole reading
                    and checking before training (prepare_s is prepare alone; it re-infers first)
    train           `python cli.py train NAME --data-dir DIR ... --quiet`, default 5 folds

Each stage reports wall seconds and two peak memories: `rss_tree_mib`, the sum of the resident
memory of the process and all its descendants (sampled every 0.2 s with psutil: folds train in
worker processes, and a limit like 8 GiB is on their sum), and `rss_max_process_mib`, the largest
single process (its ru_maxrss from wait4, which is what /usr/bin/time -v or RUSAGE_CHILDREN would
report: a maximum, never a sum). A run too short to be sampled reports the largest process as
its tree peak (the sum is never below it). Seconds: `wall_s` is the whole process, interpreter and
imports included; `call_s` the measured call alone.

    python bench/scale.py --rows 1000000 --cols 30 --stage ingest
    python bench/scale.py --rows 20000 --stage all --set epochs=3 --timeout 600

The folder (default: <tmp>/kaggle-scale-ROWSxCOLS-sSEED) is reused when its scale.json says it
holds the same shape and seed; a folder holding other files is refused, never overwritten.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import command_line, main_exit, save  # noqa: E402
from core.errors import UsageError  # noqa: E402

NAME = "playground_scale"       # no task file has it, so the CLI infers it from the files
GENERATOR = 1                   # bump when the data changes: a folder of an older version is rewritten
STAGES = ("ingest", "train", "all")
MIN_ROWS, MIN_COLS = 100, 8
NUMERIC_KINDS = ("normal", "lognormal", "uniform", "t", "exponential", "poisson")
HIGH_LEVELS = (1000, 20000)     # the high-cardinality columns' levels, cycled
SAMPLE_EVERY = 0.2


def layout(cols: int) -> dict[str, int]:
    """How many feature columns of each kind: at 30, 20 numeric, 6 categorical, 2 high-cardinality,
    2 boolean (a Playground table's mix); other widths keep the proportions."""
    boolean = high = max(1, round(cols / 15))
    categorical = max(1, round(cols / 5))
    return {"numeric": cols - boolean - high - categorical, "categorical": categorical,
            "high": high, "boolean": boolean}


def _numeric(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "normal":
        return rng.normal(size=n)
    if kind == "lognormal":                 # skewed
        return rng.lognormal(mean=1.0, sigma=1.0, size=n)
    if kind == "uniform":
        return rng.uniform(size=n)
    if kind == "t":                         # long-tailed both ways
        return rng.standard_t(df=2, size=n)
    if kind == "exponential":
        return rng.exponential(scale=3.0, size=n)
    return rng.poisson(lam=4.0, size=n).astype(float)      # whole counts


def _levels(prefix: str, k: int, n: int, rng: np.random.Generator, power: float) -> pd.Categorical:
    """n draws of k named levels with Zipf-like frequencies (a few common, a long rare tail)."""
    p = 1.0 / np.arange(1, k + 1) ** power
    codes = rng.permutation(k)[np.searchsorted(np.cumsum(p / p.sum()), rng.uniform(size=n), side="right").clip(0, k - 1)]
    return pd.Categorical.from_codes(codes, [f"{prefix}{i:05d}" for i in range(k)])


def generate(rows: int, cols: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train with `id` and `target`, test of rows // 2 with `id`): one draw split in two, so the
    test rows come from the same distribution and share the high-cardinality levels. The target is
    binary and depends non-linearly on a few columns (a sine, a step on a skewed column, an
    interaction, a categorical's and a high-cardinality column's level effects, a boolean) plus
    logistic noise: a model can learn it, a base-rate guess is far below."""
    rng = np.random.default_rng(seed)
    n = rows + rows // 2
    kinds = layout(cols)
    data = {}
    for i in range(kinds["numeric"]):
        x = np.round(_numeric(NUMERIC_KINDS[i % len(NUMERIC_KINDS)], n, rng), 4)
        if i % 4 == 3:                      # every fourth column ~5% missing
            x[rng.uniform(size=n) < 0.05] = np.nan
        elif NUMERIC_KINDS[i % len(NUMERIC_KINDS)] == "poisson":
            x = x.astype(np.int64)          # counts without gaps are written as integers
        data[f"num_{i}"] = x
    for i in range(kinds["categorical"]):
        data[f"cat_{i}"] = _levels(f"c{i}_", 3 + (i * 2) % 10, n, rng, power=0.8)
    for i in range(kinds["high"]):
        data[f"high_{i}"] = _levels(f"h{i}_", min(HIGH_LEVELS[i % len(HIGH_LEVELS)], max(10, n // 5)), n, rng, 0.7)
    for i in range(kinds["boolean"]):
        flag = pd.Series(rng.uniform(size=n) < 0.3 + 0.2 * i, dtype=object)
        if i % 2 == 1:                      # True/False with gaps, as a Playground file has them
            flag[rng.uniform(size=n) < 0.03] = None
        data[f"flag_{i}"] = flag
    frame = pd.DataFrame(data)
    effect = lambda col, scale: scale * rng.normal(size=len(frame[col].cat.categories))[frame[col].cat.codes]  # noqa: E731
    z = (1.6 * np.sin(2 * frame["num_0"]) + 1.0 * (np.log(frame["num_1"]) > 1.5)
         + 2.4 * (frame["num_2"].fillna(0.5) - 0.5) * frame["num_0"]
         + effect("cat_0", 0.9) + effect("high_0", 0.7) + 0.8 * frame["flag_0"].astype(bool))
    noisy = z + rng.logistic(size=n)
    target = (noisy > np.quantile(noisy, 0.62)).astype(np.int8)          # ~38% positives
    frame.insert(0, "id", np.arange(n))
    train = frame.iloc[:rows].assign(target=target[:rows])
    return train, frame.iloc[rows:].reset_index(drop=True)


def write(folder: Path, rows: int, cols: int, seed: int) -> tuple[bool, float]:
    """The competition's files in `folder` (train.csv, test.csv, sample_submission.csv, scale.json);
    (reused, seconds). A folder this script wrote with the same shape is reused as it is."""
    meta = {"rows": rows, "cols": cols, "seed": seed, "generator": GENERATOR}
    marker = folder / "scale.json"
    if marker.is_file():
        if json.loads(marker.read_text()) == meta:
            return True, 0.0
        shutil.rmtree(folder)
    elif folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"--out {folder}: holds other files (no scale.json); give an empty or new folder")
    start = time.perf_counter()
    train, test = generate(rows, cols, seed)
    folder.mkdir(parents=True, exist_ok=True)
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"id": test["id"], "target": 0.5}).to_csv(folder / "sample_submission.csv", index=False)
    marker.write_text(json.dumps(meta) + "\n")       # last: a folder without it is unfinished
    return False, time.perf_counter() - start


def measure(cmd: list[str], timeout: float | None) -> dict:
    """Run `cmd` from the repo root; its wall seconds, exit code, output and peak memories (see the
    module docstring). Past `timeout` its whole process group is killed and `timed_out` is set."""
    import psutil
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, start_new_session=True)
        root, peak, timed_out = psutil.Process(proc.pid), 0, False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, _tree_rss(root))
            if timeout is not None and time.perf_counter() - start > timeout and not timed_out:
                timed_out = True
                os.killpg(proc.pid, 9)          # the group this Popen started: the run and its workers
            time.sleep(SAMPLE_EVERY)
        proc.returncode = os.waitstatus_to_exitcode(status)      # reaped here, so Popen must not wait
        out.seek(0), err.seek(0)
        return {"wall_s": round(time.perf_counter() - start, 2), "returncode": proc.returncode,
                "timed_out": timed_out, "rss_tree_mib": round(max(peak, usage.ru_maxrss * 1024) / 2 ** 20),
                "rss_max_process_mib": round(usage.ru_maxrss / 1024), "stdout": out.read(), "stderr": err.read()}


def _tree_rss(root) -> int:
    import psutil
    total = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:               # a worker that ended between listing and reading
            pass
    return total


INFER = """import json, time
from data.infer import infer
start = time.perf_counter()
spec = infer({name!r}, {folder!r})
kinds = {{}}
for kind in spec.columns.values():
    kinds[kind] = kinds.get(kind, 0) + 1
print(json.dumps({{"call_s": time.perf_counter() - start, "problem": spec.problem, "metric": spec.metric, "types": kinds}}))
"""

PREPARE = """import json, time
from pathlib import Path
from pipelines import TASKS, resolve_task
from pipelines.inputs import prepare
start = time.perf_counter()
task = resolve_task({name!r}, data_dir=Path({folder!r}), runs_root=Path({runs!r}))
inferred = time.perf_counter()
inp = prepare(task.config(), Path({folder!r}), runs_root=Path({runs!r}))
done = time.perf_counter()
print(json.dumps({{"call_s": done - start, "infer_s": inferred - start, "prepare_s": done - inferred,
                  "train_rows": len(inp.train), "test_rows": len(inp.test)}}))
"""


def _checked(stage: str, result: dict) -> dict:
    """A stage's result; a failure (not a timeout) is a bug of the tool and stops the bench loudly."""
    if result["returncode"] != 0 and not result["timed_out"]:
        raise SystemExit(f"{stage} failed (exit code {result['returncode']}):\n{result['stderr'][-4000:]}")
    return result


def ingest(folder: Path, runs: Path, timeout: float | None) -> list[dict]:
    rows = []
    for stage, code in (("ingest-infer", INFER), ("ingest-prepare", PREPARE)):
        result = _checked(stage, measure([sys.executable, "-c", code.format(name=NAME, folder=str(folder),
                                                                            runs=str(runs))], timeout))
        found = {} if result["timed_out"] else json.loads(result["stdout"].strip().splitlines()[-1])
        rows.append({"stage": stage, **_figures(result), **{k: round(v, 2) if isinstance(v, float) else v
                                                           for k, v in found.items()}})
    return rows


def train(folder: Path, runs: Path, overrides: list[str], timeout: float | None) -> dict:
    cmd = [sys.executable, "cli.py", "train", NAME, "--data-dir", str(folder), "--runs-dir", str(runs),
           "--out", str(runs / "sub.csv"), "--quiet", *[a for kv in overrides for a in ("--set", kv)]]
    result = _checked("train", measure(cmd, timeout))
    row = {"stage": "train", **_figures(result)}
    cv = re.search(rf"^{NAME}: (?:CV|holdout) (.*?)(?:  \(|$)", result["stdout"], re.MULTILINE)
    if cv:
        words = cv[1].split()
        row["cv"] = {k: float(v) for k, v in zip(words[::2], words[1::2])}
    run_dir = re.search(r"^run: (.+)$", result["stdout"], re.MULTILINE)
    if run_dir and (Path(run_dir[1].strip()) / "history.csv").is_file():
        history = pd.read_csv(Path(run_dir[1].strip()) / "history.csv")
        if "member" in history:          # a learner combination: each member's steps (epochs, rounds)
            steps = history.groupby(["fold", "bag", "member"], sort=False).size()
            row["steps_per_fold"] = ["+".join(str(int(n)) for n in steps[k].groupby(level="member", sort=False).max())
                                     for k in sorted(history["fold"].unique())]
        else:
            counts = history.groupby(["fold", "bag"]).size()
            row["epochs_per_fold"] = [int(counts[k].max()) for k in sorted(history["fold"].unique())]
    return row


def _figures(result: dict) -> dict:
    return {k: result[k] for k in ("wall_s", "rss_tree_mib", "rss_max_process_mib", "timed_out")}


def table(rows: list[dict]) -> list[str]:
    lines = ["| stage | rows | cols | set | wall s | in-call s | tree peak MiB | largest process MiB | result |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["timed_out"]:
            result = f"killed at the {r.get('timeout_s')} s timeout"
        elif r["stage"] == "train":
            result = " ".join(f"{k} {v:.4f}" for k, v in r.get("cv", {}).items()) + \
                (f"; steps/fold {r['steps_per_fold']}" if "steps_per_fold" in r else f"; epochs/fold {r.get('epochs_per_fold')}")
        elif r["stage"] == "ingest-infer":
            result = f"{r['problem']} ({r['metric']}), {r['types']}"
        else:
            result = f"infer {r['infer_s']} s + prepare {r['prepare_s']} s"
        lines.append(f"| {r['stage']} | {r['rows']:,} | {r['cols']} | {r.get('set', '')} | {r['wall_s']} | "
                     f"{r.get('call_s', '')} | {r['rss_tree_mib']:,} | {r['rss_max_process_mib']:,} | {result} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="train rows (test gets half as many)")
    parser.add_argument("--cols", type=int, default=30, help="feature columns (id and target come on top)")
    parser.add_argument("--out", type=Path, help="the competition's folder (default: one under the temp dir)")
    parser.add_argument("--stage", default="all", help="ingest, train or all")
    parser.add_argument("--seed", type=int, default=0, help="seeds the data, not the training")
    parser.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                        help="config overrides for the train stage, as train --set")
    parser.add_argument("--timeout", type=float, help="seconds a stage may run before it is killed and reported")
    parser.add_argument("--no-save", action="store_true", help="print only; leave bench/results/scale.json alone")
    args = parser.parse_args(argv)
    if args.rows < MIN_ROWS:
        raise UsageError(f"--rows must be at least {MIN_ROWS}, got {args.rows}")
    if args.cols < MIN_COLS:
        raise UsageError(f"--cols must be at least {MIN_COLS} (room for every column kind), got {args.cols}")
    if args.stage not in STAGES:
        raise UsageError(f"--stage {args.stage}: one of {', '.join(STAGES)}")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"--timeout must be positive, got {args.timeout}")
    label = _check_set(args.set)
    folder = (args.out or Path(tempfile.gettempdir()) / f"kaggle-scale-{args.rows}x{args.cols}-s{args.seed}").resolve()
    reused, seconds = write(folder, args.rows, args.cols, args.seed)
    print(f"{folder}: {'reused' if reused else f'written in {seconds:.1f}s'}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="scale-runs-") as runs:
        if args.stage in ("ingest", "all"):
            rows += ingest(folder, Path(runs), args.timeout)
        if args.stage in ("train", "all"):
            rows.append(train(folder, Path(runs), args.set, args.timeout))
    rows = [{**r, "rows": args.rows, "cols": args.cols, **({"set": label} if label else {}),
             **({"timeout_s": args.timeout} if r["timed_out"] else {})} for r in rows]
    print("\n".join(table(rows)))
    if not args.no_save:
        path = save("scale", rows, keys=("stage", "rows", "cols", "set"), command=command_line("bench/scale.py", argv))
        print(f"saved {path}")
    return 0


def _check_set(items: list[str]) -> str:
    """`--set` items checked as train checks a config's keys, before any data is written; their label."""
    from core.config import TrainConfig, format_overrides, override, parse_overrides
    overrides = parse_overrides(items)
    override(TrainConfig(task=NAME), overrides)
    return format_overrides(dict(sorted(overrides.items())))


if __name__ == "__main__":
    main_exit(main)
