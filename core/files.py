"""One way to write a file so that a reader (or a resumed run) never sees half of it, and one way
to take back the folders a failed step made."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable


def replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """`write` a temp file beside `path`, then rename it over `path`: a kill mid-write leaves the
    previous file (or none), never a truncated one. The temp name is unique (two processes writing
    the same file never share one) and ends in .tmp; the file gets a plain file's mode."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())     # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)      # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def remove_empty_dirs(folders: Iterable[Path]) -> None:
    """Remove each folder in turn, deepest first, while it is empty; stop at the first that is not
    (or is gone): what a failed run, study or download made, and nothing anyone else put there."""
    for folder in folders:
        try:
            Path(folder).rmdir()
        except OSError:
            break
