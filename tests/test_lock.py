"""The locks agree with the human-edited inputs they are generated from (`bash tools/lock.sh`).

requirements.txt / requirements-dev.txt name the direct dependencies with the ranges meant;
requirements.lock / requirements-dev.lock pin every package, transitive ones included, with ==
and hashes; requirements-cpu.lock is requirements.lock less the Linux CUDA libraries. Editing an input without refreshing the locks fails here, offline, in milliseconds.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

# lock -> the input it is generated from
LOCKS = {"requirements.lock": "requirements.txt", "requirements-cpu.lock": "requirements.txt",
         "requirements-dev.lock": "requirements-dev.txt"}
CUDA_STACK = ("nvidia-", "cuda-", "triton")    # what PyPI's Linux torch wheel pulls in for CUDA
REFRESH = "bash tools/lock.sh"


def logical_lines(path: Path) -> list[str]:
    """Lines with `\\` continuations joined and comments dropped (pip's own rules)."""
    out, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.split(" #")[0].strip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            out.append(line)
    return out


def inputs(name: str) -> list[Requirement]:
    """The requirements an input names, following its `-r other.txt` includes."""
    reqs = []
    for line in logical_lines(ROOT / name):
        if line.startswith(("-r ", "--requirement ")):
            reqs += inputs(line.split(maxsplit=1)[1])
        else:
            assert not line.startswith("-"), f"{name}: option {line!r} is not handled by tools/lock.sh's inputs"
            reqs.append(Requirement(line))
    return reqs


def lock_entries(name: str) -> list[tuple[Requirement, list[str]]]:
    """Each lock line as (requirement, its --hash options)."""
    entries = []
    for line in logical_lines(ROOT / name):
        spec, *hashes = line.split(" --hash=")
        entries.append((Requirement(spec), hashes))
    return entries


def pinned(req: Requirement) -> str:
    (spec,) = req.specifier          # exactly one specifier...
    assert spec.operator == "==" and "*" not in spec.version, req  # ...and it is an exact pin
    return spec.version


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_lock_line_is_an_exact_pin_with_hashes(lock):
    for req, hashes in lock_entries(lock):
        assert len(req.specifier) == 1 and next(iter(req.specifier)).operator == "==", \
            f"{lock}: {req} is not pinned with =="
        pinned(req)
        assert not req.extras and not req.url, f"{lock}: {req}"
        assert hashes and all(h.startswith("sha256:") for h in hashes), f"{lock}: {req.name} has no sha256 hashes"


@pytest.mark.parametrize("lock,source", sorted(LOCKS.items()))
def test_every_input_is_locked_within_its_range(lock, source):
    locked: dict[str, list[str]] = {}
    for req, _ in lock_entries(lock):
        locked.setdefault(canonicalize_name(req.name), []).append(pinned(req))
    for want in inputs(source):
        versions = locked.get(canonicalize_name(want.name))
        assert versions, f"{source} names {want.name} but {lock} lacks it: run `{REFRESH}`"
        for version in versions:      # a universal lock may pin a package per Python version
            assert want.specifier.contains(version, prereleases=True), \
                f"{lock} pins {want.name}=={version}, outside {source}'s {want}: run `{REFRESH}`"


def pins(lock: str) -> dict[tuple[str, str], str]:
    return {(canonicalize_name(r.name), str(r.marker)): pinned(r) for r, _ in lock_entries(lock)}


def test_dev_lock_installs_the_versions_users_get():
    """The tests run on exactly the runtime pins of requirements.lock (tools/lock.sh constrains it)."""
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert len(runtime) > 50 and len(dev) > len(runtime), "a lock looks truncated"
    differ = {k: (v, dev.get(k)) for k, v in runtime.items() if dev.get(k) != v}
    assert not differ, f"requirements-dev.lock disagrees with requirements.lock: {differ}; run `{REFRESH}`"


def test_cpu_lock_is_the_runtime_lock_less_the_cuda_libraries():
    runtime, cpu = pins("requirements.lock"), pins("requirements-cpu.lock")
    assert not [name for name, _ in cpu if name.startswith(CUDA_STACK)], "requirements-cpu.lock carries CUDA libraries"
    expected = {k: v for k, v in runtime.items() if not k[0].startswith(CUDA_STACK)}
    assert cpu == expected, f"requirements-cpu.lock disagrees with requirements.lock: run `{REFRESH}`"


def test_kaggle_comes_with_six():
    """kaggle>=1.8 imports six without declaring it (issue 23): the lock must carry six itself."""
    names = {canonicalize_name(r.name) for r, _ in lock_entries("requirements.lock")}
    assert {"kaggle", "six"} <= names


def test_the_parser_catches_drift(tmp_path, monkeypatch):
    """The checks above fail on a stale lock: a missing package and a pin outside its range."""
    (tmp_path / "in.txt").write_text("numpy>=2  # a comment\nnewpkg>=1\n")
    (tmp_path / "in.lock").write_text("numpy==1.26.4 \\\n    --hash=sha256:00\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    with pytest.raises(AssertionError, match="outside"):
        test_every_input_is_locked_within_its_range("in.lock", "in.txt")
    (tmp_path / "in.lock").write_text("numpy==2.0.0 \\\n    --hash=sha256:00\n")
    with pytest.raises(AssertionError, match="names newpkg but in.lock lacks it"):
        test_every_input_is_locked_within_its_range("in.lock", "in.txt")
    (tmp_path / "in.lock").write_text("numpy>=2.0.0\n")
    with pytest.raises(AssertionError, match="not pinned with =="):
        test_every_lock_line_is_an_exact_pin_with_hashes("in.lock")
