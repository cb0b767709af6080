"""transformers backend: local model folders or GGUF files, optional PEFT adapter; bf16 where the
device computes it natively (a GPU, a CPU with AVX512-BF16 or AMX), else fp32 (``recai.llm.devices``).

This is the backend fine-tuned recai models run on. The prompt is built with the tokenizer's own chat
template. JSON schemas are enforced during decoding by an xgrammar logits processor when xgrammar is
installed (and by validated retry otherwise); callers may add their own logits processors, which is how
catalog-constrained decoding plugs in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from recai.llm.base import ChatModel, Decoding, Generation, Message
from recai.llm.devices import default_dtype

#: Extra logits processors for one call, from its messages and decoding settings (a constraint that must
#: close what it opens needs the call's token budget).
LogitsProcessorFactory = Callable[[list[Message], Decoding], Sequence[Any]]


class HFChatModel(ChatModel):
    """A causal LM run with transformers' ``model.generate``: the backend fine-tuned recai models run on.

    Args:
        model: A model folder, a GGUF file, or an already built model (then pass ``tokenizer``).
        tokenizer: The tokenizer (default: loaded from the model folder).
        gguf_file: The GGUF file inside the model folder, when it holds one.
        adapter: A PEFT adapter folder to load on top.
        dtype: A torch dtype name, or "auto" (bf16 where the device computes it natively, else fp32).
        device: Where the model runs ("cpu", "cuda", ...).
        name: The name in usage reports (default: the folder's or file's name).
        logits_processors: A function of a call's messages and :class:`Decoding` giving extra logits
            processors for it (catalog-constrained decoding plugs in here).
        use_grammar: Enforce JSON schemas during decoding with xgrammar when it is installed.
    """

    def __init__(
        self,
        model: str | Path | Any,
        *,
        tokenizer: Any | None = None,
        gguf_file: str | None = None,
        adapter: str | Path | None = None,
        dtype: str = "auto",
        device: str = "cpu",
        name: str | None = None,
        logits_processors: LogitsProcessorFactory | None = None,
        use_grammar: bool = True,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch_dtype = getattr(torch, default_dtype(device) if dtype == "auto" else dtype)
        if isinstance(model, (str, Path)):
            path = Path(model)
            if path.is_file() and path.suffix == ".gguf":
                gguf_file, path = path.name, path.parent
            self.name = name or (gguf_file or path.name)
            self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(path, gguf_file=gguf_file)
            self.model = AutoModelForCausalLM.from_pretrained(path, gguf_file=gguf_file, dtype=torch_dtype)
        else:  # an already built model (tests build tiny random ones from a config)
            if tokenizer is None:
                raise ValueError("pass the tokenizer together with a model object")
            self.model, self.tokenizer, self.name = model, tokenizer, name or type(model).__name__
        if adapter is not None:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, str(adapter))
        self.model.to(device)
        self.model.eval()
        self.device = device
        self.extra_processors = logits_processors
        self._grammar_compiler: Any | None = None
        self.native_schema = False
        if use_grammar:
            try:
                import xgrammar

                vocab_size = self.model.get_output_embeddings().weight.shape[0]
                info = xgrammar.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=vocab_size)
                self._grammar_compiler = xgrammar.GrammarCompiler(info)
                self.native_schema = True
            except ImportError:
                pass
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- helpers
    def _inputs(self, messages: list[Message]) -> Any:
        encoded = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return {k: v.to(self.device) for k, v in encoded.items()}

    def _processors(
        self, messages: list[Message], schema: dict[str, Any] | None, decoding: Decoding
    ) -> list[Any]:
        extra = self.extra_processors(messages, decoding) if self.extra_processors else []
        processors: list[Any] = list(extra)
        if schema is not None and self._grammar_compiler is not None:
            import json

            from xgrammar.contrib.hf import LogitsProcessor as GrammarProcessor

            compiled = self._grammar_compiler.compile_json_schema(json.dumps(schema), any_whitespace=False)
            processors.append(GrammarProcessor(compiled))
        return processors

    def _generate_kwargs(self, decoding: Decoding) -> dict[str, Any]:
        import torch

        if decoding.seed is not None:
            torch.manual_seed(decoding.seed)
        kwargs: dict[str, Any] = {
            "max_new_tokens": decoding.max_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if decoding.temperature > 0:
            kwargs.update(do_sample=True, temperature=decoding.temperature)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if decoding.stop:
            kwargs.update(stop_strings=list(decoding.stop), tokenizer=self.tokenizer)
        return kwargs

    def _generate(
        self, messages: list[Message], *, schema: dict[str, Any] | None, decoding: Decoding
    ) -> Generation:
        import torch
        from transformers import LogitsProcessorList

        inputs = self._inputs(messages)
        prompt_len = inputs["input_ids"].shape[1]
        kwargs = self._generate_kwargs(decoding)
        with self._lock, torch.no_grad():
            output = self.model.generate(
                **inputs,
                logits_processor=LogitsProcessorList(self._processors(messages, schema, decoding)),
                **kwargs,
            )
        new_tokens = output[0, prompt_len:]
        text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
        ended = len(new_tokens) < decoding.max_tokens or int(new_tokens[-1]) == self.tokenizer.eos_token_id
        return Generation(text, prompt_len, len(new_tokens), "stop" if ended else "length")

    def _stream(self, messages: list[Message], *, decoding: Decoding, usage: dict[str, int]) -> Iterator[str]:
        import torch
        from transformers import (
            LogitsProcessorList,
            StoppingCriteria,
            StoppingCriteriaList,
            TextIteratorStreamer,
        )

        inputs = self._inputs(messages)
        prompt_len = inputs["input_ids"].shape[1]
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = self._generate_kwargs(decoding)
        result: dict[str, Any] = {}
        cancelled = threading.Event()

        class Cancel(StoppingCriteria):
            """Stops generation when the consumer of the stream goes away."""

            def __call__(self, input_ids: Any, scores: Any, **_: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancelled.is_set(), dtype=torch.bool)

        def run() -> None:
            try:
                with torch.no_grad():
                    result["output"] = self.model.generate(
                        **inputs,
                        streamer=streamer,
                        logits_processor=LogitsProcessorList(self._processors(messages, None, decoding)),
                        stopping_criteria=StoppingCriteriaList([Cancel()]),
                        **kwargs,
                    )
            except BaseException as exc:  # re-raised in the consumer's thread below
                result["error"] = exc
            finally:
                streamer.end()  # never leave the consumer waiting on a dead generator

        with self._lock:
            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            try:
                yield from streamer
            finally:
                cancelled.set()
                worker.join()
                usage["prompt_tokens"] = prompt_len
                if "output" in result:
                    usage["completion_tokens"] = int(result["output"].shape[1] - prompt_len)
        if "error" in result:
            raise result["error"]
