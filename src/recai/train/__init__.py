"""The training layer: what every recai trainer shares, so each pillar writes only what is its own.

- :mod:`recai.train.arguments`: :class:`TrainingConfig`, the schedule fields every training config
  extends (checked and stored one way), :func:`trainer_arguments`, the one place trainer arguments are
  built from a config (for the Hugging Face, TRL and sentence-transformers trainers), and
  :func:`resolve_precision`;
- :mod:`recai.train.work`: the ``OUTPUT.work/`` folder of a resumable run (:class:`WorkFolder`), its
  marker and the data fingerprint it records;
- :mod:`recai.train.sft`: supervised fine-tuning of a causal LM (:class:`SFTConfig`, loading the base,
  LoRA), used by gen's recommender, explain's explainer and the agent's distilled planner;
- :mod:`recai.train.chat`: chats as token ids with loss on the assistant's turns only;
- :mod:`recai.train.collate`: dynamic padding (:class:`PadCollator`);
- :mod:`recai.train.label_logits`: a training step that computes logits at the trained positions only;
- :mod:`recai.train.models`: base-model folders (GGUF converted once), special tokens;
- :mod:`recai.train.tasks` and :mod:`recai.train.example_sets`: the task extension point and the
  train/test example folders that embed, gen and explain build their training data with.

It sits above ``data``, ``llm`` and ``rec`` and below the pillars that train (embed, gen, explain,
agent). Modules import torch, transformers and peft only when they need them.

A name is imported when first used: a command module that reads :class:`SFTConfig` for its
defaults imports nothing else from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recai._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".arguments": ["TrainingConfig", "resolve_precision", "trainer_arguments"],
        ".chat": ["IGNORE_INDEX", "Encoded", "TemplateError", "encode_chat", "prompt_ids"],
        ".collate": ["PadCollator"],
        ".example_sets": ["ExampleSet"],
        ".models": ["add_special_tokens", "convert_gguf", "resolve_base", "save_model_folder"],
        ".sft": ["SFTConfig"],
        ".tasks": ["Task", "TaskRegistry"],
        ".work": ["WORK_SUFFIX", "WorkFolder", "data_fingerprint", "examples_fingerprint"],
    },
)

__all__ = [
    "IGNORE_INDEX",
    "WORK_SUFFIX",
    "Encoded",
    "ExampleSet",
    "PadCollator",
    "SFTConfig",
    "Task",
    "TaskRegistry",
    "TemplateError",
    "TrainingConfig",
    "WorkFolder",
    "add_special_tokens",
    "convert_gguf",
    "data_fingerprint",
    "encode_chat",
    "examples_fingerprint",
    "prompt_ids",
    "resolve_base",
    "resolve_precision",
    "save_model_folder",
    "trainer_arguments",
]

if TYPE_CHECKING:
    from recai.train.arguments import TrainingConfig, resolve_precision, trainer_arguments
    from recai.train.chat import IGNORE_INDEX, Encoded, TemplateError, encode_chat, prompt_ids
    from recai.train.collate import PadCollator
    from recai.train.example_sets import ExampleSet
    from recai.train.models import add_special_tokens, convert_gguf, resolve_base, save_model_folder
    from recai.train.sft import SFTConfig
    from recai.train.tasks import Task, TaskRegistry
    from recai.train.work import WORK_SUFFIX, WorkFolder, data_fingerprint, examples_fingerprint
