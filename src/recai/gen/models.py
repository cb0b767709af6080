"""Model folders of the generative recommender: trained models, loading, merging.

- Base models (local folders, or known GGUF models converted once) come from :mod:`recai.train.models`.
- A trained model is a folder written by :func:`recai.gen.training.train_sft`: a LoRA adapter (with the
  rows of the item-span tokens) or a full model, plus the tokenizer (which has the span tokens) and
  ``recai_gen.json`` (what it was trained from and how).
- :func:`merge_adapter` folds an adapter into its base and writes a plain model folder that vLLM or
  ``transformers`` loads without PEFT.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recai.train.models import save_model_folder

GEN_FILE = "recai_gen.json"


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
    return save_model_folder(model, tokenizer, output, overwrite=overwrite, info={GEN_FILE: merged_info})
