"""A tiny randomly initialised sentence-transformers model, built from a config, for training tests."""

from __future__ import annotations

from pathlib import Path


def tiny_sentence_transformer(folder: Path, *, seed: int = 0) -> Path:
    """A 2-layer, 32-wide BERT with the packaged MiniLM tokenizer, mean pooling and normalisation."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    from recai.llm.resolve import resolve_model

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(resolve_model("all-minilm-l6-v2")))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    raw = folder / "raw"
    BertModel(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(32, "mean"), Normalize()], device="cpu")
    target = folder / "tiny-st"
    model.save(str(target), create_model_card=False)
    return target
