"""The download path against a real HTTP server on 127.0.0.1 serving a small fixture archive."""

from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from recai.data import DataError, load
from recai.data.loaders.download import ChecksumError, DownloadSpec, download, safe_extract
from recai.data.loaders.movielens import load_ml100k
from recai.data.loaders.registry import KNOWN
from tests.data.raw_fixtures import write_ml100k

pytestmark = pytest.mark.network


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()


def _zip_ml100k(root: Path, tmp_path: Path) -> str:
    raw = write_ml100k(tmp_path / "raw" / "ml-100k")
    archive = root / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(raw.iterdir()):
            zf.write(f, f"ml-100k/{f.name}")
    return "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()


def _spec(url: str, checksum: str) -> DownloadSpec:
    return DownloadSpec("ml-100k", url, checksum, "ml-100k", load_ml100k, "fixture", "test")


def test_download_verifies_extracts_and_prepares(
    server: tuple[str, Path], tmp_path: Path, _private_home: Path
) -> None:
    base, root = server
    checksum = _zip_ml100k(root, tmp_path)
    target = download(_spec(f"{base}/ml-100k.zip", checksum), progress=False)
    assert target == _private_home / "datasets" / "ml-100k"
    ds = load("ml-100k")  # now loadable by name
    assert len(ds.catalog) == 4 and ds.meta["source"].endswith("/ml-100k.zip")
    assert (_private_home / "downloads" / "ml-100k.zip").exists()
    assert (_private_home / "downloads" / "raw" / "ml-100k" / "u.data").exists()
    assert download(_spec("http://127.0.0.1:9/unreachable.zip", checksum), progress=False) == target  # cached


def test_md5_checksums_work_too(server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    _zip_ml100k(root, tmp_path)
    md5 = "md5:" + hashlib.md5((root / "ml-100k.zip").read_bytes()).hexdigest()
    assert download(_spec(f"{base}/ml-100k.zip", md5), progress=False).exists()


def test_checksum_mismatch_leaves_nothing_behind(
    server: tuple[str, Path], tmp_path: Path, _private_home: Path
) -> None:
    base, root = server
    _zip_ml100k(root, tmp_path)
    with pytest.raises(ChecksumError, match=r"expected 0000.*deleted"):
        download(_spec(f"{base}/ml-100k.zip", "sha256:" + "0" * 64), progress=False)
    downloads = _private_home / "downloads"
    assert not downloads.exists() or not any(downloads.iterdir())
    assert not (_private_home / "datasets").exists()


def test_missing_archive_is_an_http_error(server: tuple[str, Path]) -> None:
    base, _ = server
    with pytest.raises(OSError, match="404"):
        download(_spec(f"{base}/missing.zip", "sha256:" + "0" * 64), progress=False)


def test_zip_slip_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escaped.txt", "gotcha")
    with pytest.raises(DataError, match="escapes the target folder"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path.parent / "escaped.txt").exists()
    (tmp_path / "not.zip").write_text("plain text")
    with pytest.raises(DataError, match="not a valid zip archive"):
        safe_extract(tmp_path / "not.zip", tmp_path / "out")


def test_known_datasets_pin_official_archives() -> None:
    for name, spec in KNOWN.items():
        assert spec.url.startswith("https://files.grouplens.org/datasets/movielens/"), name
        algorithm, _, digest = spec.checksum.partition(":")
        assert len(digest) == {"md5": 32, "sha256": 64}[algorithm], name
