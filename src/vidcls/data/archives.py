"""Dataset archives (``.tar.gz``, ``.tgz``, ``.tar``), extracted once into ``<archive>.extracted/`` beside them.

Never into anything else: ``X.tar.gz`` next to a user's folder ``X/`` leaves ``X/`` alone. Every member is
checked before anything is written (no links or special files, nothing outside the folder, at most
``--max_archive_members`` members and ``--max_extract_gb`` of contents, room on the disk); then the archive is
extracted into a hidden sibling folder that is renamed into place once complete, so a failure leaves nothing
behind. A marker in the folder records the archive's size and mtime: a rerun reuses the folder, a changed
archive replaces it. A folder of that name that vidcls did not make is never touched.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from vidcls.errors import DatasetError

try:
    import fcntl
except ImportError:  # Windows: no lock, so concurrent processes each extract (still safely, into their own folder)
    fcntl = None

logger = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
EXTRACTED_SUFFIX = ".extracted"
MARKER = ".vidcls_extracted"
DEFAULT_MAX_EXTRACT_GB = 50.0  # UCF101 is 7 GB, Something-Something v2 about 20 GB
DEFAULT_MAX_ARCHIVE_MEMBERS = 200_000  # Kinetics-400's 300k clips come as many archives, not one
_DISK_MARGIN = 100 * 2**20  # bytes left free beyond the contents
_BLOCK = 4096  # on disk, every member takes at least a block
# What a damaged archive raises: tarfile's own errors, and those of the gzip/bz2/xz stream under it.
_READ_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def extraction_folder(archive: Path) -> Path:
    """``data/X.tar.gz`` -> ``data/X.tar.gz.extracted``: a name no user folder has by accident (even ``.tar.gz``)."""
    return archive.with_name(archive.name + EXTRACTED_SUFFIX)


def extracted_from(path: Path) -> tuple[Path, Path] | None:
    """(extraction folder, archive) when ``path`` lies in a folder that vidcls extracted, else None."""
    path = path.absolute()
    for folder in (path, *path.parents):
        if folder.name.endswith(EXTRACTED_SUFFIX) and (folder / MARKER).is_file():
            return folder, folder.with_name(folder.name.removesuffix(EXTRACTED_SUFFIX))
    return None


def extract_archive(
    archive: Path,
    *,
    max_extract_gb: float = DEFAULT_MAX_EXTRACT_GB,
    max_archive_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS,
) -> Path:
    """Extract ``archive`` into its extraction folder unless already there; return that folder.

    Raises:
        DatasetError: the archive is damaged, too big, has too many or unsafe members, or does not fit on the
            disk; or a folder of the extraction folder's name exists that vidcls did not make.
    """
    target = extraction_folder(archive)
    try:
        with _locked(archive):
            stat = archive.stat()
            stamp = {"archive": archive.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
            found = _read_marker(target)
            if found == stamp:
                return target
            if target.exists() and found is None:
                raise DatasetError(
                    f"{target} exists and was not made by vidcls, which extracts {archive.name} there; "
                    "move or rename it"
                )
            _extract(archive, target, stamp, max_extract_gb, max_archive_members)
    except _READ_ERRORS as err:
        raise DatasetError(
            f"{archive}: cannot extract archive to {target} ({err}); check that the archive is complete and "
            "its folder writable"
        ) from err
    return target


@contextmanager
def _locked(archive: Path) -> Iterator[None]:
    """One process extracts (torchrun starts several); the others wait, then find its folder."""
    with archive.open("rb") as file:
        if fcntl is not None:
            with suppress(OSError):  # a file system without locks: each process extracts, one folder wins
                fcntl.flock(file, fcntl.LOCK_EX)  # released when the file closes
        yield


def _read_marker(target: Path) -> dict | None:
    try:
        return json.loads((target / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _extract(archive: Path, target: Path, stamp: dict, max_gb: float, max_members: int) -> None:
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)  # left by a killed run whose pid this process now has
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = _scan(archive, tar, target, max_gb, max_members)
            total = sum(member.size for member in members)
            _check_free_space(archive, target.parent, total + _BLOCK * len(members) + _DISK_MARGIN)
            logger.info("extracting %s (%d members, %.2f GB) to %s", archive, len(members), total / 1e9, target)
            # tarfile writes exactly member.size bytes per (non-sparse) file and fails on a short stream, so
            # the scanned total bounds what lands on the disk: no need to count again here.
            tar.extractall(partial, members=members, filter="data")
        (partial / MARKER).write_text(json.dumps(stamp) + "\n")
        if target.exists():  # vidcls's own folder (its marker says so), from an older version of the archive
            stale = target.with_name(f".{target.name}.stale-{os.getpid()}")
            target.rename(stale)
            partial.rename(target)
            shutil.rmtree(stale, ignore_errors=True)
            logger.info("%s changed since it was extracted: replaced %s", archive, target)
        else:
            try:
                partial.rename(target)
            except OSError:
                if _read_marker(target) != stamp:
                    raise
                return  # another process extracted the same archive first: use its folder
    finally:  # after a failure (or Ctrl-C): no half-written folder
        shutil.rmtree(partial, ignore_errors=True)
    logger.info("extracted %s to %s", archive, target)


def _scan(archive: Path, tar: tarfile.TarFile, target: Path, max_gb: float, max_members: int) -> list:
    """The members, each checked, read header by header: a bomb is refused at its first oversized member."""
    members, total = [], 0
    for member in tar:
        members.append(member)
        if len(members) > max_members:
            raise DatasetError(
                f"{archive} holds more than {max_members} files and folders (limit --max_archive_members "
                f"{max_members}); pass a larger --max_archive_members if you trust it"
            )
        _check_member(archive, member, target)
        total += member.size
        if total > max_gb * 1e9:
            raise DatasetError(
                f"{archive} expands to more than {max_gb:g} GB (limit --max_extract_gb {max_gb:g}); "
                "pass a larger --max_extract_gb if you trust it"
            )
    return members


def _check_member(archive: Path, member: tarfile.TarInfo, target: Path) -> None:
    if member.issym() or member.islnk():
        raise DatasetError(f"{archive}: refusing link member {member.name!r} (links could point outside the dataset)")
    if not (member.isfile() or member.isdir()) or member.issparse():  # a sparse map could write past its size
        raise DatasetError(f"{archive}: refusing special member {member.name!r}")
    destination = (target / member.name).resolve()
    if not destination.is_relative_to(target.resolve()):
        raise DatasetError(f"{archive}: refusing member {member.name!r}, which would be written outside {target}")


def _check_free_space(archive: Path, folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise DatasetError(
            f"{archive}: extracting needs about {needed / 1e9:.2f} GB but {folder} has {free / 1e9:.2f} GB free; "
            "free some space, or move the archive to a disk with room"
        )
