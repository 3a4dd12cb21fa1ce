"""Opening a competition's CSV files byte for byte as pandas reads them (gzip, bz2, xz, a member of
the Kaggle zip), for the checks pandas cannot make: the physical line of a byte that is not UTF-8,
and the first row with too few fields (pandas pads it with NaN). data/ingest.py reads with pandas
and calls these when it must say where a file went wrong.
"""
from __future__ import annotations

import contextlib
import csv
import gzip
import importlib
import io
import zipfile
import zlib
from pathlib import Path

from core.errors import first_line

# The compressed files the short-row check opens, by suffix, as pandas does: bz2 and lzma are
# stdlib but missing from a Python built without libbz2 / liblzma, where pandas still reads
# everything else, so they are optional here too.
_OPENERS = {".gz": gzip.open}
DECOMPRESS_ERRORS: tuple[type[Exception], ...] = (zlib.error, EOFError)   # EOFError: a truncated .gz/.bz2/.xz
for _suffix, _name in ((".bz2", "bz2"), (".xz", "lzma")):
    try:
        _module = importlib.import_module(_name)
    except ImportError:
        continue
    _OPENERS[_suffix] = _module.open
    if _name == "lzma":
        DECOMPRESS_ERRORS += (_module.LZMAError,)     # not an OSError, unlike bz2's and gzip's


def raw_opener(source: Path | str):
    """A function opening `source` as pandas reads it (decompressed, binary), or None for what only
    pandas opens: zstd (which needs a package), tar, a zip inside the Kaggle zip."""
    if isinstance(source, str) and "::" in source:      # archive::member
        archive, member = source.split("::", 1)
        return None if member.lower().endswith(".zip") else lambda: open_member(archive, member)
    source = Path(source)
    suffixes = [x.lower() for x in source.suffixes]
    unopened = {".zst", ".tgz", ".bz2", ".xz"} - set(_OPENERS)     # zstd needs a package; see _OPENERS
    if ".tar" in suffixes or (suffixes and suffixes[-1] in unopened):
        return None
    if suffixes and suffixes[-1] in _OPENERS:
        return lambda: _OPENERS[suffixes[-1]](source, "rb")
    if suffixes[-1:] == [".zip"]:
        with zipfile.ZipFile(source) as zf:
            names = zf.namelist()
        return lambda: open_member(source, names[0])
    return lambda: open(source, "rb")


def not_utf8(source: Path | str, error: UnicodeDecodeError) -> str:
    """The error line for a file that is not UTF-8 (a spreadsheet's Latin-1 or Windows-1252 export):
    the physical line and byte, where pandas' own message gives a position in its read buffer."""
    hint = "re-save it as UTF-8 (a spreadsheet's 'CSV UTF-8', or iconv -f cp1252 -t utf-8)"
    try:
        opener = raw_opener(source)
        with opener() if opener else contextlib.nullcontext([]) as raw:
            for line_no, line in enumerate(raw, 1):     # b"\n" never occurs inside a UTF-8 character
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as e:
                    return (f"{source}: line {line_no} is not UTF-8 (byte 0x{line[e.start]:02x} at position "
                            f"{e.start + 1} of the line); {hint}")
    except (OSError, zipfile.BadZipFile, *DECOMPRESS_ERRORS):
        pass
    return f"{source}: not UTF-8 text ({first_line(error)}); {hint}"


def short_row(source: Path | str, width: int) -> tuple[int, int] | None:
    """(line, fields) of the first row with fewer fields than `width`, or None. pandas pads a
    short row with NaN, which the encoders would then impute: a truncated row scored as if whole.
    Files this cannot open as pandas does (zstd, which needs a package; tar) are left to pandas' parse."""
    opener = raw_opener(source)
    if opener is None:
        return None
    limit = csv.field_size_limit(2 ** 31 - 1)        # pandas reads cells past csv's 131,072 characters
    try:
        with opener() as raw:
            rows = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline=""))
            for row in rows:
                # pandas skips blank and whitespace-only lines
                if len(row) < width and any(field.strip() for field in row):
                    return rows.line_num, len(row)
    except csv.Error:
        return None
    finally:
        csv.field_size_limit(limit)
    return None


@contextlib.contextmanager
def open_member(archive, member: str):
    """One member of a zip archive (a `archive::member` source), binary, closed with its archive."""
    with zipfile.ZipFile(archive) as zf, zf.open(member) as fh:
        yield fh
