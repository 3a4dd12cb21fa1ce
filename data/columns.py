"""What one column of a competition's table holds, judged from its values: its feature type, the
missing-value tokens hiding in a numeric column, whether numbers are whole. data/infer.py asks these
of the training file; each works on whole pandas columns (their distinct values where it can),
so a 1M-row file costs a fraction of a second per column.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

# Spellings of "missing" found in numeric columns; pandas reads some of them as NaN already
# (NA, N/A, n/a, null, NULL, None, the empty cell), the rest ("?", "-", "na", "none", ".") it does not.
NA_TOKENS = frozenset({"?", "-", "NA", "N/A", "na", "n/a", "null", "NULL", "None", "none", "", "."})
# A string column is categorical up to this many distinct values, or up to this share of its
# non-missing rows; past both it is text (names, tickets, free text). 50, not 20: House Prices'
# Neighborhood has 25 values in 1,460 rows and is plainly a category.
MAX_CATEGORIES = 50
CATEGORY_SHARE = 0.05
_PROBE = 1000        # distinct values tried before the whole column: one that is a word settles it


def missing_tokens(frame: pd.DataFrame, columns) -> dict[str, set[str]]:
    """{column: the NA_TOKENS in it} for each text column that is numbers except for those tokens."""
    found = {}
    for col in columns:
        values = frame[col]
        if not holds_text(values):
            continue
        distinct = pd.unique(values.dropna())
        if not all(isinstance(v, str) for v in distinct[:_PROBE]):
            continue                     # pandas' True/False with gaps: a boolean column
        tokens = set()
        for chunk in (distinct[:_PROBE], distinct[_PROBE:]):
            words = chunk[pd.to_numeric(pd.Series(chunk, dtype=object), errors="coerce").isna().to_numpy()]
            tokens |= set(words)
            if not tokens <= NA_TOKENS:
                break
        if tokens and tokens <= NA_TOKENS and len(tokens) < len(distinct):
            found[col] = tokens
    return found


def holds_text(values: pd.Series) -> bool:
    """Strings (pandas 3's str dtype, or objects: pandas 2's strings, True/False with gaps)."""
    return not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values))


def integer_valued(values: pd.Series) -> bool:
    """Numbers that are all whole (1.0 as a spreadsheet writes 1 counts)."""
    if pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
        return True
    array = values.to_numpy(dtype=float)
    return bool(np.isfinite(array).all() and (array == np.round(array)).all())


def python_value(value, whole: bool):
    """A class value as JSON keeps it: bool, int (a whole float too) or str; never a numpy scalar."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return int(value) if whole else float(value)
    return str(value)


def column_type(values: pd.Series) -> str:
    """"boolean", "numeric", "categorical" or "text", by the rules in this module's constants."""
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    if pd.api.types.is_numeric_dtype(values):
        return "numeric"
    present = values.dropna()
    distinct = pd.unique(present)
    if len(distinct) and {str(v).lower() for v in distinct[:3]} <= {"true", "false"} \
            and {str(v).lower() for v in distinct} <= {"true", "false"}:
        return "boolean"             # True/False with gaps: pandas leaves it as objects
    return "categorical" if len(distinct) <= max(MAX_CATEGORIES, CATEGORY_SHARE * len(present)) else "text"
