"""A decoder (causal) LM as a sentence embedder: the transformer, last-token or mean pooling, normalisation.

A causal LM's last position is the only one that has attended to the whole text, so last-token pooling
reads it there; the tokenizer is set to end every text with the EOS token (a tokenizer post-processor, so
it survives truncation and is saved with the folder), which makes that position the same token for every
text, one the model has learned to treat as "the text is over". Texts are padded on the right with the
EOS token when the tokenizer has no pad token. The result is a plain sentence-transformers folder once
saved: it loads with ``st:FOLDER`` or ``decoder:FOLDER``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recai.embed.encoder import DECODER_POOLINGS

# Read the transformer's hidden states as plain text input: a tokenizer with a chat template would
# otherwise make sentence-transformers wrap every text in a chat (system prompt included).
TEXT_ONLY = {"text": {"method": "forward", "method_output_name": "last_hidden_state"}}
EOS_PROBE = "a"


def is_sentence_transformer_folder(path: Path) -> bool:
    return (path / "modules.json").exists()


def prepare_tokenizer(tokenizer: Any, pooling: str | None) -> None:
    """Let a decoder's tokenizer pad (with EOS when it has no pad token) and, for last-token pooling, end
    every text with EOS (a no-op when it already does, as a saved decoder embedder's tokenizer does)."""
    if tokenizer.eos_token is None:
        raise ValueError(f"{type(tokenizer).__name__} has no EOS token to pad or pool with")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if pooling == "lasttoken" and not ends_with_eos(tokenizer):
        append_eos(tokenizer)


def append_eos(tokenizer: Any) -> None:
    """Install a post-processor that appends the EOS token to every encoded text."""
    from tokenizers import processors

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer; last-token pooling needs one")
    eos, eos_id = tokenizer.eos_token, tokenizer.eos_token_id
    appended = processors.TemplateProcessing(
        single=f"$A:0 {eos}:0", pair=f"$A:0 {eos}:0 $B:1 {eos}:1", special_tokens=[(eos, eos_id)]
    )
    current = backend.post_processor
    # Keep what the tokenizer already adds (a BOS token, byte-level offsets) and append EOS after it.
    backend.post_processor = appended if current is None else processors.Sequence([current, appended])
    if not ends_with_eos(tokenizer):
        raise ValueError(f"could not make {type(tokenizer).__name__} append its EOS token")


def ends_with_eos(tokenizer: Any) -> bool:
    return tokenizer(EOS_PROBE)["input_ids"][-1] == tokenizer.eos_token_id


def pooling_mode(model: Any) -> str | None:
    """The pooling mode of a sentence-transformers model's Pooling module, if it has one."""
    from sentence_transformers.sentence_transformer.modules import Pooling

    modes = [m.pooling_mode for m in model if isinstance(m, Pooling)]
    return modes[0] if modes else None


def decoder_sentence_transformer(
    name_or_path: str | Path,
    *,
    pooling: str | None = None,
    device: str | None = None,
    max_seq_length: int | None = None,
) -> Any:
    """A sentence-transformers model over a causal LM folder (or a known GGUF model, converted once).

    A folder that already is a sentence-transformers model (a trained decoder embedder) loads as saved;
    ``pooling`` then must agree with its Pooling module. ``pooling`` defaults to ``lasttoken``.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    from recai.train.models import resolve_base

    if pooling is not None and pooling not in DECODER_POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(DECODER_POOLINGS)}, got {pooling!r}")
    path = Path(name_or_path).expanduser()
    if is_sentence_transformer_folder(path):
        model = SentenceTransformer(str(path), device=device)
        saved = pooling_mode(model)
        if pooling is not None and saved != pooling:
            raise ValueError(f"{path} pools with {saved!r}, not {pooling!r}; drop the pooling option")
    else:
        folder = resolve_base(name_or_path)
        transformer = Transformer(
            str(folder),
            max_seq_length=max_seq_length,
            model_kwargs={"dtype": torch.float32},  # converted GGUF folders are bf16; train and pool in fp32
            modality_config=TEXT_ONLY,
            module_output_name="token_embeddings",
        )
        transformer.tokenizer.padding_side = "right"
        width = transformer.auto_model.config.hidden_size
        modules = [transformer, Pooling(width, pooling or "lasttoken"), Normalize()]
        model = SentenceTransformer(modules=modules, device=device)
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    prepare_tokenizer(model.tokenizer, pooling_mode(model))
    return model
