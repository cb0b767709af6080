"""Systems answering a prompt set, for judged comparisons (``recai eval explanation|chitchat``).

Two kinds of answerer: a chat model answering the prompt as it stands (``llm:SPEC``), and a
conversational system (the agent, a plain chat recommender, Chat-Rec) answering it as the first message
of a new conversation, so the comparison is between what each system would really say. Answers are
recorded as they arrive, in prompt order, and a rerun answers only the prompts not yet answered, so an
interrupted or budget-stopped run loses nothing it paid for.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

from recai.evaluate.conversation import ConversationalSystem, ConversationSample
from recai.evaluate.prompt_sets import PromptItem
from recai.evaluate.runs import RunFolder
from recai.llm.base import ChatModel
from recai.llm.batch import BatchSettings, run_batch
from recai.llm.usage import track


class Answerer(ABC):
    """Answers one prompt at a time; :meth:`fork` gives an instance for another prompt in flight.

    Args:
        name: the system's spec, as reports name it.
        llm: the chat model behind it (sets the concurrency and is cached).
    """

    def __init__(self, name: str, llm: ChatModel) -> None:
        self.name = name
        self.llm = llm

    def fork(self) -> Answerer:
        """An instance for one more prompt in flight (the default holds no per-prompt state)."""
        return self

    @abstractmethod
    def answer(self, item: PromptItem) -> str:
        """The system's answer to the prompt."""


class ChatModelAnswerer(Answerer):
    """The chat model answers the prompt directly (temperature 0).

    Args:
        name: the system's spec.
        llm: the chat model.
        max_tokens: the answer's budget; explanations and chit-chat need a paragraph.
    """

    def __init__(self, name: str, llm: ChatModel, *, max_tokens: int = 400) -> None:
        super().__init__(name, llm)
        self.max_tokens = max_tokens

    def answer(self, item: PromptItem) -> str:
        with track("system"):
            out = self.llm.complete(
                [{"role": "user", "content": item.prompt}], max_tokens=self.max_tokens, temperature=0.0
            )
        return out.text.strip()


class ConversationAnswerer(Answerer):
    """A conversational system answering the prompt as the first message of a fresh conversation.

    Args:
        name: the system's spec.
        system: the conversational system; each prompt gets its own fork.
        llm: the chat model behind the system.
    """

    def __init__(self, name: str, system: ConversationalSystem, llm: ChatModel) -> None:
        super().__init__(name, llm)
        self.system = system

    def fork(self) -> ConversationAnswerer:
        return ConversationAnswerer(self.name, self.system.fork(), self.llm)

    def answer(self, item: PromptItem) -> str:
        sample = ConversationSample(
            id=item.id, user=item.user, history=[], target=-1, intent="", target_facts=""
        )
        self.system.reset(sample)
        return self.system.respond(item.prompt).reply.strip()


def answer_prompts(
    answerer: Answerer,
    items: Sequence[PromptItem],
    folder: Path,
    *,
    prompts_sha256: str,
    batch: BatchSettings | None = None,
    progress: bool = True,
) -> dict[str, str]:
    """Every prompt's answer by ``answerer``, by prompt id. The answers are a run folder of their own
    (task ``answers``, one record per prompt), so resuming, a torn last line and a changed prompt set
    (``prompts_sha256``) are handled as for every run."""
    run = RunFolder.open(folder, task="answers", config={"system": answerer.name, "prompts": prompts_sha256})
    try:
        done = run.done_ids()
        batch = batch or BatchSettings()
        run_batch(
            [item for item in items if item.id not in done],
            lambda item: {"id": item.id, "answer": answerer.fork().answer(item)},
            concurrency=batch.concurrency_for(answerer.llm),
            on_result=run.append,
            budget=batch.budget,
            desc=f"answering with {answerer.name}",
            unit="prompt",
            progress=progress,
        )
        return {str(r["id"]): str(r["answer"]) for r in run.records()}
    finally:
        run.close()
