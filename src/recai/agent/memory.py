"""Short-term memory (the dialogue within a token budget) and long-term memory (a per-user profile).

The profile keeps liked, disliked and seen items and the user's standing constraints; ranking uses it
(disliked, seen and liked items are excluded, liked ones condition the sequential model). It is persisted per
user id as JSON, written atomically, under a file name no other id can map to (see :class:`ProfileStore`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recai.data.atomic import remove_stale_temporaries, write_text_atomic
from recai.errors import RecaiError


def rough_tokens(text: str) -> int:
    """A tokenizer-free estimate (about four characters per token for English)."""
    return max(1, len(text) // 4)


@dataclass
class Profile:
    """What the agent remembers about a user: item ids (not positions: they survive catalog re-ordering)
    and free-text constraints, so ranking can leave out what the user knows and dislikes.

    Attributes:
        liked: items the user said they liked.
        disliked: items the user said they disliked (never recommended).
        seen: items the user already knows (not recommended again).
        constraints: standing conditions the user gave ("no horror").
        history: the user's logged interactions (oldest first), seeded from the dataset's log when a
            session starts for a known user id. It conditions preference ranking and counts as seen; it is
            not saved with the profile (the log is its source).
    """

    liked: list[Any] = field(default_factory=list)
    disliked: list[Any] = field(default_factory=list)
    seen: list[Any] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    history: list[Any] = field(default_factory=list)

    def add(self, kind: str, ids: list[Any]) -> None:
        target: list[Any] = getattr(self, kind)
        for item in ids:
            if item not in target:
                target.append(item)
        if kind == "liked":
            self.disliked = [i for i in self.disliked if i not in ids]
        elif kind == "disliked":
            self.liked = [i for i in self.liked if i not in ids]

    def excluded(self, *, liked: bool = True, seen: bool = True) -> list[Any]:
        """Items not to recommend: disliked ones, already seen ones (the logged history included) and by
        default liked ones too (the user knows those already). ``liked=False`` / ``seen=False`` give them
        back, for a re-purchase API or a user who asks for something they already know."""
        known = [*self.seen, *self.history] if seen else []
        return list(dict.fromkeys([*self.disliked, *known, *(self.liked if liked else [])]))

    def preference_history(self) -> list[Any]:
        """What preference ranking conditions on: the logged history, then what the user said they
        liked in conversation (most recent last), without what they said they disliked."""
        disliked = set(self.disliked)
        return [i for i in dict.fromkeys([*self.history, *self.liked]) if i not in disliked]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("history")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        return cls(**{k: list(data.get(k, [])) for k in ("liked", "disliked", "seen", "constraints")})


class ProfileError(ValueError, RecaiError):
    """A profile file that belongs to another user id (tampered with, or copied by hand)."""


class ProfileStore:
    """One JSON file per user id under ``root``; the file holds the id, and a load checks it.

    The file name must never let two ids share a file, whatever the id (slashes, NUL, 400 bytes of
    emoji), so:

    - a simple id (``[a-z0-9][a-z0-9_-]{0,63}``, not a Windows device name) is its own name:
      ``alice.json``. Lower case only, so case-insensitive file systems cannot merge two ids;
    - any other id is named by its SHA-256: ``@<64 hex digits>.json``. ``@`` never occurs in a simple
      id, nor in a name the earlier scheme wrote, so the two kinds of names never meet.

    Files written before the id was stored inside (the earlier scheme replaced every unsafe character
    with ``_``, so ``carol/x`` and ``carol_x`` shared ``carol_x.json``) are read only by the id that is
    exactly that file name, and only while the id has no file of its own; the next save writes the new
    file. An id the earlier scheme rewrote starts with an empty profile rather than read another's.

    ``load`` and ``save`` are the whole interface (a database-backed store needs nothing else). A store
    removes the leftovers of interrupted atomic writes (``.NAME.json.tmp-*``) when it starts.

    Args:
        root: the folder of the profile files.
    """

    _SIMPLE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
    _DEVICES = frozenset(
        {"con", "prn", "aux", "nul", *(f"com{n}" for n in range(10)), *(f"lpt{n}" for n in range(10))}
    )

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.remove_leftovers()

    def _path(self, user: str) -> Path:
        if self._SIMPLE.fullmatch(user) and user not in self._DEVICES:
            return self.root / f"{user}.json"
        digest = hashlib.sha256(user.encode("utf-8", "surrogatepass")).hexdigest()
        return self.root / f"@{digest}.json"

    def _legacy_path(self, user: str) -> Path | None:
        """The earlier scheme's file, when that name can only have been this id's."""
        if user and all(ch.isalnum() or ch in "-_." for ch in user) and len(user.encode()) <= 250:
            return self.root / f"{user}.json"
        return None

    def load(self, user: str) -> Profile:
        user = str(user)  # ids are text (a dataset's numeric user ids included)
        path, legacy = self._path(user), self._legacy_path(user)
        data = self._read(path)
        if data is not None:
            # no id inside: a file of the earlier scheme, which only this id's name can have written
            if data.get("user", user if path == legacy else None) != user:
                raise ProfileError(f"the profile file {path.name} belongs to another user id")
            return Profile.from_dict(data)
        data = self._read(legacy) if legacy is not None else None
        if data is None or "user" in data:  # none, or (case-insensitive file system) another id's file
            return Profile()
        return Profile.from_dict(data)

    def save(self, user: str, profile: Profile) -> None:
        user = str(user)
        data = {"user": user, **profile.to_dict()}
        write_text_atomic(self._path(user), json.dumps(data, indent=1, default=str))

    def remove_leftovers(self) -> int:
        """Delete what interrupted atomic writes left here (recai's own temporary names only, and only
        those no live process is writing); how many went."""
        return len(remove_stale_temporaries(self.root))

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ProfileError(f"the profile file {path.name} does not hold a JSON object")
        return data


@dataclass
class Turn:
    """One exchange of a dialogue: what the user said, the reply and its items, so a follow-up can refer
    to "those".

    Attributes:
        user: the user's message.
        reply: the agent's reply.
        items: display titles recommended in this turn.
        item_ids: the same items as catalog ids.
        candidate_ids: every candidate the turn ended with, best first (capped), so a follow-up can refine
            all of them.
    """

    user: str
    reply: str
    items: list[str] = field(default_factory=list)  # display titles recommended in this turn
    item_ids: list[Any] = field(default_factory=list)  # the same items as catalog ids
    #: every candidate the turn ended with, best first (capped), so a follow-up can refine all of them
    candidate_ids: list[Any] = field(default_factory=list)


@dataclass
class Dialogue:
    """The conversation so far as prompts read it: recent turns verbatim within ``budget`` tokens, older
    turns as one-line digests, so prompts stay short however long a conversation runs.

    Attributes:
        budget: tokens of recent dialogue kept verbatim.
        turns: every turn, oldest first.
    """

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
            # brief: the first three items say what the answer was; previous_results has all of them
            listed = (
                turn.items[:3] + (["..."] if brief and len(turn.items) > 3 else []) if brief else turn.items
            )
            shown = f"\n(recommended: {'; '.join(listed)})" if turn.items else ""
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

    @property
    def last_candidate_ids(self) -> list[Any]:
        """The previous answer's whole candidate set (its shown items when nothing more was kept)."""
        if not self.turns:
            return []
        return self.turns[-1].candidate_ids or self.turns[-1].item_ids


def first_sentence(text: str, max_chars: int = 160) -> str:
    """The reply's first sentence (bold markers dropped), cut at a word boundary."""
    text = " ".join(text.replace("**", "").split())
    match = re.search(r"(?<=[.!?])\s", text)
    sentence = text[: match.start()] if match else text
    if len(sentence) > max_chars:
        sentence = sentence[:max_chars].rsplit(" ", 1)[0] + "..."
    return sentence
