"""Tiny randomly initialised causal LMs with a real byte-level BPE tokenizer and a ChatML template that,
like Qwen's and SmolLM2's, injects a default system prompt. Built in the test process, never downloaded."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

CHATML = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_CORPUS = [
    "Pulp Fiction (1994) Reservoir Dogs (1992) Heat (1995) Amélie (2001) Beauty and the Beast (1946)",
    "The Godfather (1972) The Godfather Part II (1974) Recommend 3 films I might like next.",
    "Here are films you may like: 1. 2. 3. history watched genres Crime Drama Comedy Romance",
    "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ {}[]:,\"' .!?-_()\n",
] * 20


@cache
def _trained() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500,
        special_tokens=["<|im_end|>", "<|im_start|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS, trainer)
    return tok


def tiny_tokenizer() -> Any:
    """A fresh tokenizer each call (tests add tokens to it)."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=_trained().__class__.from_str(_trained().to_str()),
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
    )
    fast.chat_template = CHATML
    return fast


def tiny_model(tokenizer: Any, seed: int = 0, *, tie: bool = True) -> Any:
    """A 2-layer Llama with hidden size 32 over ``tokenizer``'s vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=tie,
    )
    return LlamaForCausalLM(config)


def biased_head(model: Any, token_ids: list[int], bias: float = 6.0) -> Any:
    """Give the LM head a bias that favours ``token_ids``, so a random model opens and closes item spans
    often (tests of constrained decoding need spans, not random bytes)."""
    import torch

    head = model.lm_head
    biased = torch.nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        biased.weight.copy_(head.weight)
        biased.bias.zero_()
        biased.bias[token_ids] = bias
    model.lm_head = biased
    return model


def write_tiny_gguf(model: Any, tokenizer: Any, path: Any) -> None:
    """Write a Llama model and its byte-level BPE tokenizer as an F32 GGUF file, the way llama.cpp's
    converter lays it out (Q and K rows permuted for its rotary layout)."""
    import json

    import gguf
    import numpy as np

    cfg = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    writer.add_vocab_size(cfg.vocab_size)
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    added = {a["content"]: a["id"] for a in spec["added_tokens"]}
    tokens: list[str] = [""] * len(tokenizer)
    for token, i in {**spec["model"]["vocab"], **added}.items():
        tokens[i] = token
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in added else 1 for t in tokens])
    writer.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in spec["model"]["merges"]])
    writer.add_bos_token_id(tokenizer.eos_token_id)  # GGUF files carry one; transformers < 5.24 needs it
    writer.add_add_bos_token(False)  # ... but, like Qwen's, the tokenizer does not prepend it
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_chat_template(tokenizer.chat_template)

    def permute(x: Any, n_head: int, n_kv: int) -> Any:
        n = n_kv if n_kv != n_head else n_head
        return x.reshape(n, 2, x.shape[0] // n // 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)

    sd = {k: v.detach().float().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads
    writer.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        writer.add_tensor(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"])
        writer.add_tensor(f"blk.{i}.attn_q.weight", permute(sd[p + "self_attn.q_proj.weight"], heads, heads))
        writer.add_tensor(f"blk.{i}.attn_k.weight", permute(sd[p + "self_attn.k_proj.weight"], heads, kv))
        writer.add_tensor(f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        writer.add_tensor(f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        writer.add_tensor(f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        writer.add_tensor(f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    writer.add_tensor("output_norm.weight", sd["model.norm.weight"])
    if not cfg.tie_word_embeddings:
        writer.add_tensor("output.weight", sd["lm_head.weight"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# Random models of the offline students' shape, for timing runs on a GPU (no weights travel there), and a
# small stand-in of the same family for CPU smoke runs of the same scripts.
QWEN_05B_SHAPE = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
}
SMOKE_SHAPE = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
}


def save_shaped_qwen(folder: Path, *, smoke: bool = False) -> dict[str, int]:
    """A randomly initialised Qwen2 model of ``QWEN_05B_SHAPE`` (``SMOKE_SHAPE`` when ``smoke``) over the
    tiny tokenizer, saved with it to ``folder``; returns the shape. Seeded, so every check times one model."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    shape = dict(SMOKE_SHAPE if smoke else QWEN_05B_SHAPE)
    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    config = Qwen2Config(
        **shape,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return shape
