"""Short-term memory (the dialogue within a token budget) and long-term memory (a per-user profile).

The profile keeps liked, disliked and seen items and the user's standing constraints; ranking uses it
(disliked, seen and liked items are excluded, liked ones condition the sequential model). It is persisted per
user id as JSON, written atomically.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recai.data.atomic import write_text_atomic


def rough_tokens(text: str) -> int:
    """A tokenizer-free estimate (about four characters per token for English)."""
    return max(1, len(text) // 4)


@dataclass
class Profile:
    """Item ids (not positions: they survive catalog re-ordering) and free-text constraints."""

    liked: list[Any] = field(default_factory=list)
    disliked: list[Any] = field(default_factory=list)
    seen: list[Any] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)

    def add(self, kind: str, ids: list[Any]) -> None:
        target: list[Any] = getattr(self, kind)
        for item in ids:
            if item not in target:
                target.append(item)
        if kind == "liked":
            self.disliked = [i for i in self.disliked if i not in ids]
        elif kind == "disliked":
            self.liked = [i for i in self.liked if i not in ids]

    def excluded(self, *, liked: bool = True) -> list[Any]:
        """Items not to recommend: disliked and already seen, and by default liked ones too (the user
        knows those already; a caller that wants them back, such as a re-purchase API, passes False)."""
        return list(dict.fromkeys([*self.disliked, *self.seen, *(self.liked if liked else [])]))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        return cls(**{k: list(data.get(k, [])) for k in ("liked", "disliked", "seen", "constraints")})


class ProfileStore:
    """One JSON file per user id under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, user: str) -> Path:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(user)) or "_"
        return self.root / f"{safe}.json"

    def load(self, user: str) -> Profile:
        path = self._path(user)
        if not path.exists():
            return Profile()
        return Profile.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def save(self, user: str, profile: Profile) -> None:
        write_text_atomic(self._path(user), json.dumps(profile.to_dict(), indent=1, default=str))


@dataclass
class Turn:
    user: str
    reply: str
    items: list[str] = field(default_factory=list)  # display titles recommended in this turn
    item_ids: list[Any] = field(default_factory=list)  # the same items as catalog ids


@dataclass
class Dialogue:
    """Recent turns verbatim within ``budget`` tokens; older turns as one-line digests."""

    budget: int = 600
    turns: list[Turn] = field(default_factory=list)

    def add(self, turn: Turn) -> None:
        self.turns.append(turn)

    def render(self, *, brief: bool = True) -> str:
        """The dialogue for a prompt.

        ``brief`` keeps only the first sentence of each assistant reply: the prompts need what was asked
        and what was recommended, not the prose, and a small model shown its own full earlier reply tends
        to repeat it instead of answering the new message. It also saves prompt tokens.
        """
        lines: list[str] = []
        used = 0
        for turn in reversed(self.turns):
            shown = f"\n(recommended: {'; '.join(turn.items)})" if turn.items else ""
            reply = first_sentence(turn.reply) if brief else turn.reply
            full = f"User: {turn.user}\nAssistant: {reply}{shown}"
            cost = rough_tokens(full)
            if used + cost <= self.budget:
                lines.append(full)
                used += cost
            else:
                shown = ", ".join(turn.items[:5]) or "no items"
                lines.append(f"(earlier) User asked: {turn.user[:120]} -> recommended {shown}")
                used += rough_tokens(lines[-1])
            if used > 2 * self.budget:
                break
        return "\n".join(reversed(lines))

    @property
    def last_item_ids(self) -> list[Any]:
        return self.turns[-1].item_ids if self.turns else []


def first_sentence(text: str, max_chars: int = 160) -> str:
    """The reply's first sentence (bold markers dropped), cut at a word boundary."""
    text = " ".join(text.replace("**", "").split())
    match = re.search(r"(?<=[.!?])\s", text)
    sentence = text[: match.start()] if match else text
    if len(sentence) > max_chars:
        sentence = sentence[:max_chars].rsplit(" ", 1)[0] + "..."
    return sentence
