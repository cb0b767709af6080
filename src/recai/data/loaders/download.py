"""Fetch a public dataset's official archive, verify its pinned checksum, and prepare it once.

The archive is streamed to ``<name>.part`` and renamed only after the checksum matches, so a broken or
tampered download never reaches the loaders. Extraction refuses members that would escape the target
folder. The prepared dataset is saved under ``$RECAI_HOME/datasets/<name>``.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from recai.data.atomic import atomic_directory
from recai.data.dataset import Dataset
from recai.data.errors import DataError
from recai.data.home import datasets_dir, downloads_dir


@dataclass(frozen=True)
class DownloadSpec:
    """An official archive recai can fetch by name, checked before it is loaded.

    Attributes:
        name: The dataset's name.
        url: Where the archive is.
        checksum: "md5:..." or "sha256:..." of the archive.
        folder: The folder the archive unpacks to.
        loader: Loads the unpacked folder.
        description: One line for listings.
        license: The data's license.
    """

    name: str
    url: str
    checksum: str
    folder: str
    loader: Callable[[Path], Dataset]
    description: str
    license: str


class ChecksumError(DataError):
    """The downloaded bytes are not the ones the checksum was pinned for."""


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _split_checksum(checksum: str) -> tuple[str, str]:
    algorithm, _, digest = checksum.partition(":")
    if algorithm not in ("md5", "sha256") or not digest:
        raise ValueError(f"checksum must look like 'sha256:<hex>' or 'md5:<hex>', got {checksum!r}")
    return algorithm, digest.lower()


def fetch_archive(
    url: str, checksum: str, target: Path, *, timeout: float = 60.0, progress: bool = True
) -> Path:
    """Download ``url`` to ``target`` unless a verified copy is already there."""
    algorithm, expected = _split_checksum(checksum)
    if target.exists() and file_digest(target, algorithm) == expected:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, part.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=target.name, disable=not progress) as bar:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
        actual = file_digest(part, algorithm)
        if actual != expected:
            raise ChecksumError(
                f"{algorithm} of the download is {actual}, expected {expected}: the file is corrupt or "
                "not the published archive, so it was deleted",
                path=url,
            )
        part.replace(target)
    finally:
        part.unlink(missing_ok=True)
    return target


def safe_extract(archive: Path, destination: Path) -> None:
    """Extract a zip, refusing absolute paths and members that climb out with '..'."""
    root = destination.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                out = (destination / member.filename).resolve()
                if not out.is_relative_to(root):
                    raise DataError(
                        f"archive member escapes the target folder: {member.filename}", path=archive
                    )
            zf.extractall(destination)
    except zipfile.BadZipFile as exc:
        raise DataError(f"not a valid zip archive: {exc}", path=archive) from None


def download(
    spec: DownloadSpec,
    *,
    url: str | None = None,
    checksum: str | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Download, verify, extract and prepare ``spec``; returns the saved dataset folder.

    ``url`` selects a mirror; ``checksum`` overrides the pinned one (for a mirror of another release).
    """
    target = datasets_dir() / spec.name
    if target.exists() and not force:
        return target
    filename = Path(spec.url).name
    archive = fetch_archive(
        url or spec.url, checksum or spec.checksum, downloads_dir() / filename, progress=progress
    )
    with tempfile.TemporaryDirectory(prefix=f"recai-{spec.name}-") as tmp:
        safe_extract(archive, Path(tmp))
        raw = Path(tmp) / spec.folder
        if not raw.is_dir():
            found = [p.name for p in Path(tmp).iterdir()]
            raise DataError(f"the archive has no folder '{spec.folder}' (found {found})", path=archive)
        dataset = spec.loader(raw)
        dataset.name = spec.name
        dataset.meta = {**dataset.meta, "source": url or spec.url, "license": spec.license}
        raw_copy = downloads_dir() / "raw" / spec.name
        with atomic_directory(raw_copy, overwrite=True) as tmp_raw:
            for item in raw.iterdir():
                shutil.move(str(item), tmp_raw / item.name)
    dataset.save(target, overwrite=True)
    return target
