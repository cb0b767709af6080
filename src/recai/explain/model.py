"""The explainer: a causal LM (with a LoRA adapter) plus two projectors that put the target model's user
and item vectors into the LLM's input space at placeholder tokens.

- The placeholder tokens (``<|user_emb|>``, ``<|item_emb|>``) are added to the tokenizer with
  :func:`recai.train.models.add_special_tokens`; their embedding rows are set to the mean embedding
  (deterministically, so a reload rebuilds them exactly) and are never trained or saved: at the input
  they are always overwritten by a projector's output, and generation suppresses them.
- Each projector standardises its input (per-dimension shift and scale fitted on the target's vectors)
  and applies a two-layer MLP (recommender dimension -> hidden -> LLM hidden size).
- A saved explainer folder holds the adapter (``save_embedding_layers=False``: never the embedding matrix
  or the head), ``projectors.safetensors``, the tokenizer, ``recai_explain.json`` and the target model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from recai.explain.render import ITEM_TOKEN, USER_TOKEN, uses_embeddings
from recai.train.label_logits import accepts_logits_to_keep
from recai.train.models import add_special_tokens

EXPLAIN_FILE = "recai_explain.json"
PROJECTORS_FILE = "projectors.safetensors"
TARGET_DIR = "target"


def add_placeholder_tokens(tokenizer: Any, model: Any | None = None) -> tuple[int, int]:
    """Add the two placeholder tokens; grow the model's embeddings with rows set to the mean row.

    Mean rows (not random ones) make a reloaded model identical to the trained one without saving the
    resized matrix.
    """
    import torch

    user_id, item_id = add_special_tokens(tokenizer, (USER_TOKEN, ITEM_TOKEN))
    ids = (user_id, item_id)
    if model is not None:
        embed = model.get_input_embeddings()
        old = embed.weight.shape[0]
        if old <= max(ids):
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
            with torch.no_grad():
                new = model.get_input_embeddings().weight
                new[old:] = new[:old].mean(dim=0, keepdim=True)
                head = model.get_output_embeddings()
                if head is not None and head.weight.data_ptr() != new.data_ptr():
                    head.weight[old:] = head.weight[:old].mean(dim=0, keepdim=True)
    return ids


class Projector(nn.Sequential):
    """Standardise -> Linear -> GELU -> Linear: maps a recommender vector to one LLM input embedding.

    Recommender vectors are small (a SASRec item row has norm about 0.4 over 64 dimensions), so in a freshly
    initialised MLP the biases swamp them and every item projects to nearly the same embedding: an
    intention explainer trained that way could not tell items apart (projected items' mean cosine 0.98,
    title accuracy 0). A per-dimension shift and scale, fitted once on the target's vectors
    (:meth:`fit_scale`) and saved with the weights as buffers, put the inputs on unit scale first. The
    defaults (0 and 1) leave inputs as they are, which is what explainers saved before the buffers
    existed were trained with.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        import torch

        super().__init__(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))
        self.register_buffer("shift", torch.zeros(in_dim))
        self.register_buffer("scale", torch.ones(in_dim))

    def fit_scale(self, vectors: Any) -> None:
        """Mean and standard deviation per dimension of ``vectors`` (n, in_dim), for the inputs."""
        import torch

        x = torch.as_tensor(np.asarray(vectors), dtype=torch.float32)
        if x.ndim != 2 or x.shape[1] != self.shift.shape[0] or x.shape[0] < 2:
            raise ValueError(
                f"fit_scale needs at least 2 vectors of size {self.shift.shape[0]}, got {tuple(x.shape)}"
            )
        with torch.no_grad():
            self.shift.copy_(x.mean(dim=0))
            self.scale.copy_(x.std(dim=0).clamp(min=1e-6))

    def forward(self, vectors: Any) -> Any:
        return super().forward((vectors - self.shift) / self.scale)


def make_projector(in_dim: int, hidden: int, out_dim: int) -> Projector:
    """A :class:`Projector` (recommender dimension -> hidden -> LLM hidden size)."""
    return Projector(in_dim, hidden, out_dim)


class ExplainerModel(nn.Module):
    """The LM with projectors; ``forward`` takes ids plus the vectors for the batch's placeholders."""

    def __init__(
        self,
        lm: Any,
        *,
        user_token_id: int,
        item_token_id: int,
        user_dim: int | None = None,
        item_dim: int | None = None,
        projector_hidden: int | None = None,
    ) -> None:
        super().__init__()
        self.lm = lm
        self._lm_keeps_logits = accepts_logits_to_keep(lm)
        self.user_token_id = int(user_token_id)
        self.item_token_id = int(item_token_id)
        size = int(lm.get_input_embeddings().weight.shape[1])
        hidden = projector_hidden or size
        self.user_proj = make_projector(user_dim, hidden, size) if user_dim else None
        self.item_proj = make_projector(item_dim, hidden, size) if item_dim else None

    @property
    def config(self) -> Any:  # what the Trainer and generation look up
        return self.lm.config

    def embed(self, input_ids: Any, user_vectors: Any = None, item_vectors: Any = None) -> Any:
        """Input embeddings with every placeholder replaced by its projected vector (row-major order)."""
        embeds = self.lm.get_input_embeddings()(input_ids)
        for token, proj, vectors, what in (
            (self.user_token_id, self.user_proj, user_vectors, "user"),
            (self.item_token_id, self.item_proj, item_vectors, "item"),
        ):
            mask = input_ids == token
            n = int(mask.sum())
            given = 0 if vectors is None else int(vectors.shape[0])
            if n != given:
                raise ValueError(f"{n} {what} placeholder(s) in the batch but {given} {what} vector(s)")
            if n == 0:
                continue
            if proj is None:
                raise ValueError(f"this explainer has no {what} projector (behaviour mode)")
            projected = proj(vectors.to(next(proj.parameters()).dtype)).to(embeds.dtype)
            embeds = embeds.clone()
            embeds[mask] = projected
        return embeds

    def forward(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        labels: Any = None,
        user_vectors: Any = None,
        item_vectors: Any = None,
        logits_to_keep: Any = 0,
    ) -> Any:
        """``logits_to_keep`` (positions, or the last n; 0: all) reaches the LM where it takes it; the
        training loss (:mod:`recai.train.label_logits`) slices full logits from one that does not."""
        embeds = self.embed(input_ids, user_vectors, item_vectors)
        kept = {"logits_to_keep": logits_to_keep} if self._lm_keeps_logits else {}
        return self.lm(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels, **kept)

    def projector_state(self) -> dict[str, Any]:
        return {
            f"{name}.{k}": v.detach().cpu().contiguous()
            for name in ("user_proj", "item_proj")
            if getattr(self, name) is not None
            for k, v in getattr(self, name).state_dict().items()
        }

    def trainable_state(self) -> dict[str, Any]:
        """Only what training changes (LoRA and projector weights), for checkpoints."""
        return {n: p.detach().cpu().contiguous() for n, p in self.named_parameters() if p.requires_grad}


@dataclass(eq=False)
class Explainer:
    """A trained explainer ready to generate: the model, its tokenizer, the target model and the catalog.

    Attributes:
        model: The LM with its user and item projectors.
        tokenizer: The LM's tokenizer, placeholder tokens included.
        target: The frozen recommender whose vectors fill the placeholders.
        catalog: The catalog the explained items come from.
        info: The folder's ``explainer.json`` (mode, name, dimensions, base model).
    """

    model: ExplainerModel
    tokenizer: Any
    target: Any
    catalog: Any
    info: dict[str, Any]
    _items: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def mode(self) -> str:
        """The input mode it was trained on: behaviour, intention or hybrid."""
        return str(self.info["mode"])

    @property
    def name(self) -> str:
        return str(self.info.get("name") or f"explainer-{self.mode}")

    @classmethod
    def load(cls, folder: str | Path, *, device: str = "cpu", dtype: str = "float32") -> Explainer:
        """An explainer folder written by :func:`recai.explain.training.train_explainer`."""
        import torch
        from peft import PeftModel
        from safetensors.torch import load_file
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from recai.explain.examples import CATALOG_DIR, load_catalog
        from recai.explain.target import TargetModel

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        folder = Path(folder)
        info_path = folder / EXPLAIN_FILE
        if not info_path.exists():
            raise FileNotFoundError(f"{folder} is not an explainer trained by recai ({EXPLAIN_FILE} missing)")
        info = json.loads(info_path.read_text(encoding="utf-8"))
        tokenizer = AutoTokenizer.from_pretrained(folder)
        base = AutoModelForCausalLM.from_pretrained(info["base_model_path"], dtype=getattr(torch, dtype))
        user_id, item_id = add_placeholder_tokens(tokenizer, base)
        lm = (
            PeftModel.from_pretrained(base, str(folder))
            if (folder / "adapter_config.json").exists()
            else base
        )
        target = TargetModel.load(folder / TARGET_DIR)
        dims = info["dims"]
        model = ExplainerModel(
            lm,
            user_token_id=user_id,
            item_token_id=item_id,
            user_dim=dims["user"],
            item_dim=dims["item"],
            projector_hidden=dims["projector_hidden"],
        )
        if (folder / PROJECTORS_FILE).exists():
            state = load_file(str(folder / PROJECTORS_FILE))
            for name in ("user_proj", "item_proj"):
                module = getattr(model, name)
                if module is not None:
                    prefix = f"{name}."
                    loaded = module.load_state_dict(
                        {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, strict=False
                    )
                    # files written before the input scaling existed lack only its buffers
                    missing = set(loaded.missing_keys) - {"shift", "scale"}
                    if missing or loaded.unexpected_keys:
                        raise ValueError(
                            f"{folder / PROJECTORS_FILE}: {name} weights do not match "
                            f"(missing {sorted(missing)}, unexpected {sorted(loaded.unexpected_keys)})"
                        )
        model.to(device)
        model.eval()
        return cls(model, tokenizer, target, load_catalog(folder / CATALOG_DIR), info)

    @classmethod
    def base(
        cls, base_model: str | Path, target: Any, catalog: Any, *, device: str = "cpu", dtype: str = "float32"
    ) -> Explainer:
        """The un-aligned base LLM as a text-only (behaviour-mode) system: the baseline of every metric."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from recai.train.models import resolve_base

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        path = resolve_base(base_model)
        tokenizer = AutoTokenizer.from_pretrained(path)
        lm = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
        user_id, item_id = add_placeholder_tokens(tokenizer, lm)
        model = ExplainerModel(lm, user_token_id=user_id, item_token_id=item_id)
        model.to(device)
        model.eval()
        info = {
            "name": "base",
            "mode": "behaviour",
            "base_model": str(base_model),
            "base_model_path": str(path),
        }
        return cls(model, tokenizer, target, catalog, info)

    def vectors(self, rendered: Sequence[Any]) -> tuple[Any, Any]:
        """The user and item vectors of a batch of rendered examples, in placeholder order."""
        return batch_vectors(self.target, rendered, self._item_table())

    def _item_table(self) -> np.ndarray:
        if self._items is None:
            self._items = self.target.item_vectors()
        return self._items

    def generate(
        self, rendered: Sequence[Any], *, max_new_tokens: int = 96, batch_size: int = 8
    ) -> list[str]:
        """Greedy replies to rendered prompts (messages without the answer)."""
        import torch

        from recai.train.chat import prompt_ids

        tok = self.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        device = next(self.model.parameters()).device
        replies: list[str] = []
        for lo in range(0, len(rendered), batch_size):
            batch = list(rendered[lo : lo + batch_size])
            ids = [prompt_ids(tok, r.messages) for r in batch]
            width = max(len(i) for i in ids)
            input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
            mask = torch.zeros((len(ids), width), dtype=torch.long)
            for r, row in enumerate(ids):
                input_ids[r, width - len(row) :] = torch.tensor(row)
                mask[r, width - len(row) :] = 1
            users, items = self.vectors(batch)
            with torch.no_grad():
                embeds = self.model.embed(
                    input_ids.to(device),
                    None if users is None else users.to(device),
                    None if items is None else items.to(device),
                )
                out = self.model.lm.generate(
                    inputs_embeds=embeds,
                    attention_mask=mask.to(device),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=pad,
                    suppress_tokens=[self.model.user_token_id, self.model.item_token_id],
                )
            replies += [tok.decode(row, skip_special_tokens=True).strip() for row in out]
        return replies


def batch_vectors(target: Any, rendered: Sequence[Any], item_table: np.ndarray) -> tuple[Any, Any]:
    """(user vectors, item vectors) as float tensors, or None where a batch has no placeholder of a kind.

    A user's vector is always computed from the history in the example, never looked up by user id: the
    labels were made by running the target on that history (an MF model's stored factors for a known
    user also reflect items after the cut, so they would describe a different user from the label's).
    """
    import torch

    users = [u for r in rendered for u in r.users]
    items = [p for r in rendered for p in r.items]
    user_t = None
    if users:
        vectors = target.user_vectors([h for _, h in users])
        user_t = torch.from_numpy(np.asarray(vectors, dtype=np.float32))
    item_t = (
        torch.from_numpy(item_table[np.asarray(items, dtype=np.int64)].astype(np.float32)) if items else None
    )
    return user_t, item_t


def projector_dims(target: Any, mode: str, projector_hidden: int | None) -> dict[str, int | None]:
    """Input sizes of the two projectors (None in behaviour mode)."""
    if not uses_embeddings(mode):
        return {"user": None, "item": None, "projector_hidden": projector_hidden}
    user_dim = int(target.user_vectors([[0]]).shape[1])
    return {
        "user": user_dim,
        "item": int(target.item_vectors().shape[1]),
        "projector_hidden": projector_hidden,
    }
