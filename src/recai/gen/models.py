"""Model folders for the generative recommender: base models, GGUF conversion, trained models, merging.

- A base model is any local causal-LM folder ``transformers`` loads. The offline GGUF models recai knows
  (``qwen2.5-0.5b-instruct``, ``qwen2.5-1.5b-instruct``, ``smollm2-135m-instruct``) are converted once into
  a safetensors folder under ``$RECAI_MODELS_DIR/<name>-hf`` (loading GGUF dequantises, which takes
  seconds to minutes each time). ``transformers`` refuses ``save_pretrained`` on a GGUF-loaded model, so
  the state dict is written with safetensors by hand, next to the config, generation config and tokenizer.
- A trained model is a folder written by :func:`recai.gen.training.train_sft`: a LoRA adapter (with the
  rows of the item-span tokens) or a full model, plus the tokenizer (which has the span tokens) and
  ``recai_gen.json`` (what it was trained from and how).
- :func:`merge_adapter` folds an adapter into its base and writes a plain model folder that vLLM or
  ``transformers`` loads without PEFT.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from recai.data.atomic import atomic_directory

GEN_FILE = "recai_gen.json"
HF_SUFFIX = "-hf"


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
    extra: dict[str, Any] | None = None,
    extra_file: str = GEN_FILE,
) -> Path:
    """Write config, generation config, tokenizer and ``model.safetensors`` atomically, by hand.

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
        if extra is not None:
            (tmp / extra_file).write_text(json.dumps(extra, indent=2, default=str) + "\n", encoding="utf-8")
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
    extra = {"converted_from": str(path), "dtype": dtype}
    return save_model_folder(
        model, tokenizer, output, overwrite=overwrite, extra=extra, extra_file="recai_converted.json"
    )


def read_gen_info(folder: str | Path) -> dict[str, Any]:
    """The ``recai_gen.json`` of a trained or merged model folder."""
    path = Path(folder) / GEN_FILE
    if not path.exists():
        raise FileNotFoundError(f"{folder} is not a model trained by recai gen ({GEN_FILE} missing)")
    return json.loads(path.read_text(encoding="utf-8"))


def load_gen_model(
    folder: str | Path, *, dtype: str = "float32", device: str = "cpu", merge: bool = False
) -> tuple[Any, Any]:
    """(model, tokenizer) of a trained folder: a LoRA adapter on its base (``merge`` folds it in) or a
    full / merged model. The tokenizer is the folder's own, with the item-span tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    torch_dtype = getattr(torch, dtype)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if (folder / "adapter_config.json").exists():
        from peft import PeftModel

        info = read_gen_info(folder)
        base = AutoModelForCausalLM.from_pretrained(info["base_model_path"], dtype=torch_dtype)
        if base.get_input_embeddings().weight.shape[0] < len(tokenizer):
            base.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # rows come from the adapter
        model: Any = PeftModel.from_pretrained(base, str(folder))
        if merge:
            model = model.merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype)
    model.to(device)
    model.eval()
    return model, tokenizer


def merge_adapter(
    folder: str | Path, output: str | Path, *, dtype: str = "bfloat16", overwrite: bool = False
) -> Path:
    """Fold a LoRA adapter into its base model and write a plain safetensors model folder."""
    folder = Path(folder)
    if not (folder / "adapter_config.json").exists():
        raise ValueError(
            f"{folder} holds no adapter (adapter_config.json missing): it is already a full model"
        )
    info = read_gen_info(folder)
    model, tokenizer = load_gen_model(folder, dtype=dtype, merge=True)
    merged_info = {**info, "method": "merged", "merged_from": str(folder)}
    return save_model_folder(model, tokenizer, output, overwrite=overwrite, extra=merged_info)
