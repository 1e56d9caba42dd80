"""The files an ingest reads: each path given, or every file under a folder (hidden files
and folders left out, symbolic links followed only when they stay inside the folder)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from remem.ingest.detect import MAX_FILE_BYTES
from remem.ingest.records import Source, UnreadableFileError


@dataclass(frozen=True)
class Found:
    """A file to read (`path` on disk), named as provenance by `name`: its path relative
    to the folder given, or its own name when it was given itself."""

    name: str
    path: Path | None
    problem: str | None = None


def find_files(paths: list[Path]) -> Iterator[Found]:
    """Each file once (a file reached twice, through a link or two paths given, is read
    the first time)."""
    seen: dict[Path, str] = {}
    for found in _every_file(paths):
        if found.path is None:
            yield found
            continue
        real = found.path.resolve()
        if real in seen:
            yield Found(found.name, None, f"the same file as {seen[real]}")
        else:
            seen[real] = found.name
            yield found


def _every_file(paths: list[Path]) -> Iterator[Found]:
    for given in paths:
        if given.is_symlink() and not given.exists():
            yield Found(given.name, None, "a broken symbolic link")
        elif given.is_dir():
            yield from _folder(given)
        elif given.exists():
            yield Found(given.name, given)
        else:
            yield Found(str(given), None, "no such file or folder")


def _folder(root: Path) -> Iterator[Found]:
    inside = root.resolve()
    for folder, folders, names in os.walk(root):  # links to folders are not entered
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink() and not path.resolve().is_relative_to(inside):
                yield Found(relative, None, "a symbolic link out of the folder")
            else:
                yield Found(relative, path)


def read_source(found: Found) -> Source:
    """The file's bytes, unless it is not a regular file or too large to read."""
    assert found.path is not None
    try:
        status = found.path.stat()
        if not found.path.is_file():
            raise UnreadableFileError("not a regular file")
        if status.st_size > MAX_FILE_BYTES:
            raise UnreadableFileError(f"larger than {MAX_FILE_BYTES // 2**20} MiB")
        data = found.path.read_bytes()
    except OSError as error:
        raise UnreadableFileError(f"cannot read it: {error.strerror or error}") from None
    modified = datetime.fromtimestamp(status.st_mtime, UTC)
    return Source(data, found.name, modified, str(found.path.resolve()))
