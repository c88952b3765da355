"""Files that appear whole or not at all, and what a failed write says about its folder."""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

# A write that fails with one of these fails every later write to the same folder as well.
FOLDER_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


@contextmanager
def written_whole(path: str | Path, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """A binary file to write `path` through: it is written under a temporary name in the same folder,
    flushed to the disk and renamed, so a reader sees no file or the whole one. On any error nothing is
    left, neither `path` nor the temporary file. overwrite=False: FileExistsError if `path` exists."""
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it.")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as to any new file
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()


def folder_problem(folder: Path, error: OSError) -> str | None:
    """One sentence when `error` (from writing into `folder`) stops every write there, else None."""
    if error.errno not in FOLDER_ERRNOS:
        return None
    reason = error.strerror or os.strerror(error.errno or 0)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"The disk holding {folder} is full ({reason}); free some space and run the same command again."
    return f"Files cannot be written in {folder} ({reason}); fix that and run the same command again."
