import pandas as pd
import pytest

from core.errors import UsageError
from submissions.format import check_submission, write_atomic


@pytest.fixture
def sample():
    return pd.DataFrame({"PassengerId": [892, 893, 894], "Survived": [0, 1, 0]})


def test_matching_submission_passes(sample):
    check_submission(sample.assign(Survived=[1, 1, 0]), sample, "PassengerId")


@pytest.mark.parametrize("mutate, msg", [
    (lambda s: s.rename(columns={"Survived": "survived"}), "columns"),
    (lambda s: s.iloc[:2], "rows"),
    (lambda s: s.assign(PassengerId=[892, 894, 893]), "ids differ .* row 2"),
    (lambda s: s.assign(Survived=[0.5, float("nan"), 0.1]), "missing or non-finite"),
])
def test_bad_submissions_are_rejected(sample, mutate, msg):
    with pytest.raises(UsageError, match=msg):
        check_submission(mutate(sample), sample, "PassengerId")


def test_write_atomic_leaves_no_temp_file(tmp_path, sample):
    path = write_atomic(sample, tmp_path / "sub" / "s.csv")
    assert path.read_text().splitlines()[0] == "PassengerId,Survived"
    assert [p.name for p in path.parent.iterdir()] == ["s.csv"]


def test_write_atomic_gives_the_file_the_umask_mode_not_mkstemps_0600(tmp_path, sample):
    import os
    old = os.umask(0o022)
    try:
        path = write_atomic(sample, tmp_path / "s.csv")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_write_atomic_unwritable_folder_is_a_usage_error(tmp_path, sample):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="cannot write"):
        write_atomic(sample, tmp_path / "file" / "s.csv")
