"""Learners trained side by side on each fold and averaged with equal weights: `--model mlp+lightgbm`.

Any `A+B[+C...]` of registered learners of one kind of data is itself a learner: the registry
builds it the first time the name is looked up (`combination`), so it trains, resumes, predicts,
reports, blends and tunes like any other. Per fold and bag the members train one after another
on the same training rows, each reading the config as it would alone (the net its width, lr and
epochs; the trees their own settings), each with the bag's seed, each early-stopped on its own
(on the rows config `stopping` names); the fold's prediction is their plain mean.

Why equal weights: weights fit on the out-of-fold rows would be chosen by the labels of the rows
they then score, and the CV would flatter the ensemble (`blend` and `stack` cross-fit theirs).
A tree ensemble and a net err in different ways, so their mean beats both on ordinary mixed
tables (BENCHMARKS.md: the inferred competitions' default, `bench/generic.py`).

The mean is taken where the metric measures: probabilities for classification; for regression
the values, except that rmsle averages log1p(values) (a geometric mean, as the metric compares
logs). Encodings: members that encode a fold the same way (`Learner.encoding`: every learner but
a tree learner with native categories) share one; otherwise each kind is made once, kept
together in the fold's encoder.joblib (`Parts`).

Files: model<b>.json names the members; each member's model is model<b>-<member><its suffix>
beside it (and a regression member's target<b>-<member>.joblib). History: every member's rows
in turn, each with a `member` column; the best step is written "12+340" (each member's own).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from core.config import TrainConfig
from core.errors import UsageError
from pipelines import runs
from pipelines.learner_base import LEARNERS, Learner
from pipelines.learners_gbdt import BoostedTrees
from pipelines.target import expm1_at_least_0
from tasks.task import Encoded, TaskBase

SEP = "+"


def _reads_trees(name: str) -> bool:
    """Whether member `name` reads config key `trees` (gradient-boosted trees' settings)."""
    return issubclass(LEARNERS.get(name), BoostedTrees)


def _own_cfg(cfg: TrainConfig, name: str) -> TrainConfig:
    """The config as member `name` reads it alone: its own model name; `trees` for tree members only."""
    return replace(cfg, model=name, trees=cfg.trees if _reads_trees(name) else {})


@dataclass
class Parts:
    """A fold's encoders when members encode it differently: one per member (members that encode
    alike hold the same object, which pickles once), and the member names."""
    members: tuple[str, ...]
    encoders: tuple


class EnsembleLearner(Learner):
    """Members (`members`, set per combination) trained on the same fold, predictions averaged."""
    members: tuple[str, ...] = ()
    suffix = ".json"
    progress_unit = "step"       # each member's own (epochs, then rounds): rows carry `member`

    @classmethod
    def check(cls, cfg: TrainConfig) -> None:
        """Each member's own check; config key `trees` goes to the tree members (all of them)."""
        if cfg.trees and not any(_reads_trees(m) for m in cls.members):
            raise UsageError(f"config key trees holds gradient-boosted trees' settings; no learner of {cfg.model!r} reads it")
        for m in cls.members:
            LEARNERS.get(m).check(_own_cfg(cfg, m))

    @classmethod
    def encode_fold(cls, task: TaskBase, cfg: TrainConfig, inp, tr, va, test) -> Encoded:
        """The members' fold encoding: one, shared, where they all encode alike (the usual case);
        else one per kind of encoding, as tuples indexed by member."""
        kinds = [LEARNERS.get(m).encoding(task, _own_cfg(cfg, m)) for m in cls.members]
        if len(set(kinds)) == 1:
            return LEARNERS.get(cls.members[0]).encode_fold(task, _own_cfg(cfg, cls.members[0]), inp, tr, va, test)
        made: dict[str, Encoded] = {}
        for m, kind in zip(cls.members, kinds):
            if kind not in made:
                made[kind] = LEARNERS.get(m).encode_fold(task, _own_cfg(cfg, m), inp, tr, va, test)
        parts = [made[k] for k in kinds]
        return Encoded(Parts(cls.members, tuple(p.encoder for p in parts)), tuple(p.x_train for p in parts),
                       tuple(p.x_val for p in parts), None if test is None else tuple(p.x_test for p in parts),
                       {"parts": [p.shape for p in parts]}, [p.columns for p in parts], None)

    @classmethod
    def fold_input(cls, task: TaskBase, encoder, columns, data, device, fold_dir: Path):
        if not isinstance(encoder, Parts):
            return LEARNERS.get(cls.members[0]).fold_input(task, encoder, columns, data, device, fold_dir)
        done: dict[int, object] = {}
        for m, enc, cols in zip(encoder.members, encoder.encoders, columns):
            if id(enc) not in done:
                done[id(enc)] = LEARNERS.get(m).fold_input(task, enc, cols, data, device, fold_dir)[0]
        return tuple(done[id(enc)] for enc in encoder.encoders), None

    @staticmethod
    def _view(enc: Encoded, i: int) -> Encoded:
        """Member i's encoding of the fold."""
        if not isinstance(enc.encoder, Parts):
            return enc
        return Encoded(enc.encoder.encoders[i], enc.x_train[i], enc.x_val[i], None if enc.x_test is None else enc.x_test[i],
                       enc.shape["parts"][i], enc.columns[i], None)

    @staticmethod
    def _x(x, i: int):
        return x[i] if isinstance(x, tuple) else x

    def fit(self, enc: Encoded, y_train: np.ndarray, y_val: np.ndarray, on_step=None,
            checkpoint: Path | None = None, steps: str | None = None, grow: float = 1.0) -> "EnsembleLearner":
        """Each member in turn; `steps` (a refit's fixed counts) is the earlier fit's "12+340",
        each member's own."""
        counts = str(steps).split(SEP) if steps else [None] * len(self.members)
        if len(counts) != len(self.members):
            raise ValueError(f"steps {steps!r} name {len(counts)} counts for {len(self.members)} members")
        self.members_, history, kept, before = [], [], [], 0.0
        for i, name in enumerate(self.members):
            member = LEARNERS.create(name, task=self.task, cfg=_own_cfg(self.cfg, name), device=self.device,
                                     random_state=self.random_state)
            hook = (lambda row, name=name: on_step({**row, "member": name})) if on_step is not None else None
            own = checkpoint.with_name(f"{checkpoint.stem}-{name}{checkpoint.suffix}") if checkpoint is not None else None
            member.fit(self._view(enc, i), y_train, y_val, on_step=hook, checkpoint=own, steps=counts[i], grow=grow)
            if own is not None:
                own.unlink(missing_ok=True)
            self.members_.append(member)
            history += [{**row, "member": name} for row in member.history_]
            kept.append(str(member.best_step_))
            before += member.seconds_before_
        self.history_, self.best_step_, self.seconds_before_ = history, SEP.join(kept), before
        self.best_score_ = float("nan")      # the fold's score is the mean's (cv.py scores it)
        return self

    def predict_proba(self, x, batch_fn=None) -> np.ndarray:
        preds = [m.predict_proba(self._x(x, i), batch_fn) for i, m in enumerate(self.members_)]
        if self.task.problem == "regression" and self.task.metric == "rmsle":
            return expm1_at_least_0(np.mean([np.log1p(np.maximum(p, 0.0)) for p in preds], axis=0))
        return np.mean(preds, axis=0)

    def save(self, path: Path) -> None:
        for name, member in zip(self.members, self.members_):
            member.save(self._member_path(path, name))
        runs.write_json(path, {"members": list(self.members)})     # each member's file follows from its name

    @staticmethod
    def _member_path(path: Path, name: str) -> Path:
        return path.with_name(f"{path.stem}-{name}{LEARNERS.get(name).suffix}")

    @classmethod
    def load(cls, path: Path, task: TaskBase, device: torch.device, precision: str = "fp32",
             trained_by: str | None = None) -> "EnsembleLearner":
        try:
            names = list(runs.read_json(path)["members"])
        except (ValueError, KeyError, TypeError) as e:
            raise UsageError(f"{path}: missing or corrupted ({type(e).__name__})") from None
        if tuple(names) != cls.members:
            raise UsageError(f"{path}: holds {SEP.join(names)}, not {SEP.join(cls.members)}")
        learner = cls(task, None, device)
        learner.members_ = [LEARNERS.get(n).load(cls._member_path(path, n), task, device, precision, trained_by)
                            for n in names]
        return learner


def combination(name: str):
    """The registry's resolver: `A+B` of registered learners -> (its factory, its tags), or None
    for a name that is no combination (the registry then says it is unknown)."""
    if SEP not in name:
        return None
    members = tuple(name.split(SEP))
    if len(set(members)) != len(members) or "" in members:
        raise UsageError(f"model {name!r}: name each learner once, joined by '{SEP}' (e.g. mlp{SEP}lightgbm)")
    for m in members:
        LEARNERS.get(m)               # an unknown member: one line listing the known ones
    kinds = {LEARNERS.tags[m].get("kind") for m in members}
    if len(kinds) != 1:
        raise UsageError(f"model {name!r}: its learners are for different data ({', '.join(sorted(map(str, kinds)))})")
    problems = [set(LEARNERS.tags[m]["problems"]) for m in members if "problems" in LEARNERS.tags[m]]
    tags = {"kind": kinds.pop()} | ({"problems": tuple(sorted(set.intersection(*problems)))} if problems else {})
    cls = type("EnsembleLearner", (EnsembleLearner,), {"members": members, "__doc__": EnsembleLearner.__doc__,
                                                       "seeded": any(LEARNERS.get(m).seeded for m in members)})
    return cls, tags

