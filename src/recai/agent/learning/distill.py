"""Distil the teacher's planning into a small model with the shared SFT recipe, and make it a planner.

``distill_planner`` trains on (planner prompt -> plan JSON) examples with
:func:`recai.gen.training.train_sft` (the :mod:`recai.train.sft` recipe: LoRA by default, loss on the
plan tokens only, checkpoints in ``OUT/adapter.work/`` that a rerun resumes from) and folds the adapter
into its base with :func:`recai.gen.models.merge_adapter`. ``OUT/planner`` is then a plain
``transformers`` folder: the agent uses it by path
(``Agent.from_dataset(..., planner_llm="hf:OUT/planner")``), and vLLM or ``transformers`` load it like any
model folder.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recai.data.atomic import write_text_atomic
from recai.train.sft import SFTConfig

if TYPE_CHECKING:
    from recai.gen.examples import GenData

DEFAULT_STUDENT = "qwen2.5-0.5b-instruct"
PLANNER_FOLDER = "planner"
ADAPTER_FOLDER = "adapter"
DATA_FOLDER = "data"
INFO_FILE = "distill.json"

# Planner prompts are long (instructions, schema card, tool cards, demonstrations: ~1,100 tokens of
# Qwen's tokenizer) and the answers short, so the defaults favour a longer context and a few epochs.
DEFAULT_CONFIG = SFTConfig(base_model=DEFAULT_STUDENT, max_length=2048, epochs=3.0, batch_size=4)


def distill_planner(
    data: GenData,
    out: str | Path,
    config: SFTConfig | None = None,
    *,
    merge: bool = True,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Fine-tune ``config.base_model`` on ``data.train`` and write ``OUT/planner``; returns that folder.

    ``OUT/data`` keeps the training and held-out examples (``recai agent eval-planner`` reads the
    held-out ones), ``OUT/distill.json`` what was done. ``merge=False`` keeps the LoRA adapter only
    (load it with ``hf:BASE?adapter=OUT/adapter``)."""
    from recai.gen.examples import GenData  # imported on a run: `agent --help` reads DEFAULT_CONFIG only
    from recai.gen.training import finished_sft, train_sft

    config = config or DEFAULT_CONFIG
    out = Path(out)
    if not data.train:
        raise ValueError("no training examples survived filtering: record more, or relax the filter")
    out.mkdir(parents=True, exist_ok=True)
    data_dir = out / DATA_FOLDER
    if data_dir.exists():
        stored = GenData.load(data_dir)
        if [e.to_dict() for e in stored.train] != [e.to_dict() for e in data.train] and not overwrite:
            raise FileExistsError(f"{data_dir} holds other training data (pass overwrite=True to replace it)")
    data.save(data_dir, overwrite=True)
    adapter = out / ADAPTER_FOLDER
    if config.method == "full":
        adapter = out / PLANNER_FOLDER
    planner = out / PLANNER_FOLDER
    summary = None if overwrite else finished_sft(adapter, config, data)
    trained = summary is None
    if summary is None:  # a rerun of the same data and config reuses the finished adapter
        result = train_sft(data, adapter, config, overwrite=overwrite or adapter.exists(), progress=progress)
        summary = result.summary
    if config.method == "lora" and merge and (trained or not (planner / "config.json").exists()):
        from recai.gen.models import merge_adapter

        dtype = "float32" if summary["training"]["precision"] == "fp32" else "bfloat16"
        merge_adapter(adapter, planner, dtype=dtype, overwrite=True)
    info: dict[str, Any] = {
        "planner": str(planner if merge or config.method == "full" else adapter),
        "base_model": config.base_model,
        "method": config.method,
        "config": config.to_dict(),
        "data": data.meta,
        "counts": data.counts(),
        "training": summary["training"],
    }
    write_text_atomic(out / INFO_FILE, json.dumps(info, indent=2, default=str) + "\n")
    return Path(info["planner"])


def student_config(**overrides: Any) -> SFTConfig:
    """The default distillation config with some fields changed (None values are ignored)."""
    return replace(DEFAULT_CONFIG, **{k: v for k, v in overrides.items() if v is not None})
