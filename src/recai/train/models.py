"""Base models for fine-tuning a causal LM: finding the folder, converting a GGUF model once, writing a
model folder by hand, and adding special tokens.

- A base model is any local causal-LM folder ``transformers`` loads. The offline GGUF models recai knows
  (``qwen2.5-0.5b-instruct``, ``qwen2.5-1.5b-instruct``, ``smollm2-135m-instruct``) are converted once into
  a safetensors folder under ``$RECAI_MODELS_DIR/<name>-hf`` (loading GGUF dequantises, which takes
  seconds to minutes each time). ``transformers`` refuses ``save_pretrained`` on a GGUF-loaded model, so
  the state dict is written with safetensors by hand, next to the config, generation config and tokenizer.
- Every fine-tuned LM adds special tokens of its own (gen's item-span markers, explain's user and item
  placeholders) with :func:`add_special_tokens`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recai.data.atomic import atomic_directory

HF_SUFFIX = "-hf"
CONVERTED_FILE = "recai_converted.json"


def _is_model_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").exists()


def converted_path(name: str) -> Path:
    """Where the safetensors copy of a known GGUF model lives."""
    from recai.llm.resolve import find_spec, models_dir

    spec = find_spec(name)
    if spec is None:
        raise ValueError(f"'{name}' is not a known model")
    return models_dir() / f"{spec.name}{HF_SUFFIX}"


def resolve_base(name_or_path: str | Path, *, convert: bool = True, progress: bool = True) -> Path:
    """A folder ``transformers`` loads for ``name_or_path``: the folder itself, or the converted copy of
    a known GGUF model (made now when ``convert`` is true and it does not exist yet)."""
    from recai.llm.resolve import find_spec

    path = Path(name_or_path).expanduser()
    if _is_model_folder(path):
        return path
    if path.is_file() and path.suffix == ".gguf":
        raise ValueError(
            f"{path} is a GGUF file: convert it once with `recai gen convert {path} --out FOLDER` "
            "and train from the folder"
        )
    spec = find_spec(str(name_or_path))
    if spec is None or spec.format != "gguf":
        raise FileNotFoundError(
            f"no model folder at {path} (a folder with config.json) and no known GGUF model"
        )
    target = converted_path(spec.name)
    if _is_model_folder(target):
        return target
    if not convert:
        raise FileNotFoundError(f"{spec.name} is not converted yet: run `recai gen convert {spec.name}`")
    return convert_gguf(spec.name, target, progress=progress)


def save_model_folder(
    model: Any,
    tokenizer: Any,
    output: str | Path,
    *,
    overwrite: bool = False,
    info: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Write config, generation config, tokenizer and ``model.safetensors`` atomically, by hand, and
    ``info`` (JSON documents by file name: what the folder was made from) beside them.

    Tied weights are stored once, under the input embedding's name, which is where ``transformers``
    looks when it ties them again on loading.
    """
    from safetensors.torch import save_file

    output = Path(output)
    state = model.state_dict()
    embed = model.get_input_embeddings().weight
    by_storage: dict[tuple[int, int], list[str]] = {}
    for name, tensor in state.items():
        by_storage.setdefault((tensor.data_ptr(), tensor.numel()), []).append(name)
    keep: dict[str, Any] = {}
    for names in by_storage.values():
        tensor = state[names[0]]
        if len(names) > 1 and tensor.data_ptr() == embed.data_ptr():
            chosen = next((n for n in names if "embed" in n), sorted(names)[0])
        else:
            chosen = sorted(names)[0]
        keep[chosen] = tensor.detach().contiguous().cpu()
    with atomic_directory(output, overwrite=overwrite) as tmp:
        config = model.config
        for attr in ("quantization_config",):  # a GGUF load may leave these behind; the weights are plain
            if hasattr(config, attr):
                delattr(config, attr)
        config.save_pretrained(tmp)
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        save_file(keep, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        for file_name, document in (info or {}).items():
            (tmp / file_name).write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    return output


def convert_gguf(
    source: str | Path,
    output: str | Path,
    *,
    dtype: str = "bfloat16",
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Dequantise a GGUF model (a file, or a known model name) into a safetensors model folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from recai.llm.resolve import resolve_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = Path(source).expanduser()
    if not path.is_file():
        path = resolve_model(str(source), progress=progress)
    if path.suffix != ".gguf":
        raise ValueError(f"{path} is not a .gguf file")
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=getattr(torch, dtype)
    )
    info = {CONVERTED_FILE: {"converted_from": str(path), "dtype": dtype}}
    return save_model_folder(model, tokenizer, output, overwrite=overwrite, info=info)


def add_special_tokens(tokenizer: Any, tokens: Sequence[str]) -> tuple[int, ...]:
    """Add ``tokens`` as special tokens (never split, never merged with neighbours); their ids, in order.

    Calling it again is harmless: present tokens are not added twice. The model's embeddings are the
    caller's to grow (each pillar initialises the new rows its own way).
    """
    from tokenizers import AddedToken

    vocab = tokenizer.get_vocab()
    missing = [t for t in tokens if t not in vocab]
    if missing:
        added = [AddedToken(t, special=True, normalized=False, lstrip=False, rstrip=False) for t in missing]
        tokenizer.add_special_tokens({"extra_special_tokens": added}, replace_extra_special_tokens=False)
    return tuple(tokenizer.convert_tokens_to_ids(t) for t in tokens)
