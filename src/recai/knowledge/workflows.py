"""What ``recai knowledge build|rank`` do, as library functions (the CLI only parses and prints).

``build_knowledge`` fits a knowledge base on the training part of a dataset's leave-one-out split and
saves it with its data options; ``rank_user`` loads such a base and ranks one user's candidates (the
evaluation's sample for that user, or candidates given by id), returning everything the command shows.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from recai.data import portable_spec
from recai.data.dataset import Dataset
from recai.evaluate.generative import ListSample, ListSampling, build_samples
from recai.evaluate.prepare import DataOptions, cached_llm, fit_classic, item_noun
from recai.knowledge.ranker import KnowledgeRanker, RankResult
from recai.knowledge.similar_users import SimilarUsers
from recai.knowledge.store import EXTRACTORS, KnowledgeBase, parse_kinds


def parse_params(pairs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``kind.key=value`` pairs (``graph.hops=3``) as ``{kind: {key: value}}``.

    Each value is typed by the extractor's own signature, so that a list parameter takes a
    comma-separated list (``attributes.exclude=genres,year``), an optional one takes ``none``, and a
    value of the wrong type is an error naming the parameter rather than a failure inside fitting.
    """
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        kind, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise ValueError(f"--param takes kind.key=value (e.g. graph.hops=3), got '{pair}'")
        if kind not in EXTRACTORS:
            raise ValueError(
                f"--param '{pair}': unknown knowledge kind '{kind}' (use {', '.join(EXTRACTORS)})"
            )
        name = name.replace("-", "_")
        hints = _parameter_types(EXTRACTORS[kind])
        if name not in hints:
            raise ValueError(
                f"--param '{pair}': '{kind}' has no parameter '{name}' (it has {', '.join(hints)})"
            )
        try:
            out.setdefault(kind, {})[name] = _typed(value, hints[name])
        except ValueError as exc:
            raise ValueError(f"--param '{pair}': {exc}") from None
    return out


def _parameter_types(cls: type) -> dict[str, Any]:
    """The constructor's named parameters and their annotated types (``None``: not annotated)."""
    signature = inspect.signature(cls.__init__)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except (NameError, TypeError):  # a name only importable for type checkers: read values untyped
        hints = {}
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {
        name: hints.get(name)
        for name, p in signature.parameters.items()
        if name != "self" and p.kind in named
    }


def _typed(text: str, annotation: Any) -> Any:
    """``text`` as a value of ``annotation``: int, float, bool, str, a Literal, a list or tuple of those,
    or a union (``X | None`` takes ``none``); an unannotated parameter is typed as in model specs."""
    from recai.llm.factory import parse_value

    value = text.strip()
    if annotation is None or annotation is Any:
        return parse_value(value)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and value.lower() in ("none", "null"):
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _typed(value, option)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors))
    if origin is typing.Literal:
        for option in args:
            if str(option) == value:
                return option
        raise ValueError(f"expected one of {', '.join(map(str, args))}, got '{value}'")
    if origin in (list, tuple):
        item = args[0] if args else None
        parts = [part.strip() for part in value.split(",")]
        if not value or not all(parts):
            raise ValueError(f"expected a comma-separated list without empty entries, got '{value}'")
        items = [_typed(part, item) for part in parts]
        return items if origin is list else tuple(items)
    if annotation is bool:
        flags = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
        if value.lower() not in flags:
            raise ValueError(f"expected true or false, got '{value}'")
        return flags[value.lower()]
    if annotation in (int, float):
        try:
            return annotation(value)
        except ValueError:
            kind = "an integer" if annotation is int else "a number"
            raise ValueError(f"expected {kind}, got '{value}'") from None
    if annotation is str:
        if not value:
            raise ValueError("expected a value, got nothing")
        return value
    return parse_value(value)


def with_models(
    params: Mapping[str, Mapping[str, Any]] | None, *, recommender: str | None, embedding: str | None
) -> dict[str, dict[str, Any]]:
    """``params`` with the recommender names of the recommender and embedding extractors filled in."""
    out = {kind: dict(values) for kind, values in (params or {}).items()}
    if recommender is not None:
        out.setdefault("recommender", {}).setdefault("model", recommender)
    if embedding is not None:
        out.setdefault("embedding", {}).setdefault("model", embedding)
    return out


def build_knowledge(
    data: DataOptions,
    out: str | Path,
    *,
    kinds: str | Sequence[str] = "all",
    params: Mapping[str, Mapping[str, Any]] | None = None,
    sasrec_budget_s: float = 300.0,
    overwrite: bool = False,
    progress: bool = True,
) -> KnowledgeBase:
    """Fit the extractors on ``data``'s training part and save them in ``out``."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(
            f"{out} already exists; choose another folder or replace it (overwrite=True, --fresh)"
        )
    dataset, split = data.load()
    chosen = parse_kinds(kinds) if isinstance(kinds, str) else parse_kinds(list(kinds))
    if not chosen:
        raise ValueError("nothing to build: name at least one knowledge kind (or all)")
    kb = KnowledgeBase.build(
        dataset.catalog,
        split,
        kinds=chosen,
        params=params,
        fit_model=lambda name: fit_classic(name, split, sasrec_budget_s=sasrec_budget_s, seed=data.seed),
        meta={
            "data": {**data.as_config(), "data": portable_spec(data.data)},
            "dataset": dataset.name,
            "sasrec_budget_s": sasrec_budget_s,
        },
        progress=progress,
    )
    kb.save(out, overwrite=overwrite)
    return kb


def load_knowledge(path: str | Path) -> tuple[KnowledgeBase, Dataset, Any, DataOptions]:
    """A saved base with the dataset and split it was built on (from its recorded data options)."""
    document = KnowledgeBase.read_meta(path)
    options = document.get("meta", {}).get("data")
    if not isinstance(options, dict) or "data" not in options:
        raise ValueError(
            f"{Path(path) / 'knowledge.json'} does not record its data (meta.data); build it with "
            "`recai knowledge build`"
        )
    data = DataOptions(**options)
    dataset, split = data.load()
    return KnowledgeBase.load(path, dataset.catalog), dataset, split, data


def evaluation_ranker(
    llm: str,
    dataset: Dataset,
    split: Any,
    data: DataOptions,
    knowledge: KnowledgeBase | None,
    kinds: Sequence[str],
    *,
    options: Mapping[str, Any] | None = None,
    cache: bool = True,
) -> KnowledgeRanker:
    """The ranker ``recai knowledge eval`` runs for the model ``llm`` with the ``kinds`` of ``knowledge``.

    ``options`` are :class:`KnowledgeRanker` keyword arguments; unset, the item noun is the dataset's, the
    seed the data's, the token counter ``llm``'s own tokenizer, for ``candidate_order="popularity"``
    the popularity the training counts and, for ``n_examples``, the similar users of the training part.
    """
    options = dict(options or {})
    options.setdefault("item_noun", item_noun(dataset))
    options.setdefault("seed", data.seed)
    options.setdefault("counter", llm)
    if options.get("candidate_order") == "popularity":
        options.setdefault("popularity", split.train.item_counts())
    if options.get("n_examples"):  # similar users come from training only: no held-out event leaks
        options.setdefault("similar_users", SimilarUsers(split.train))
    chosen = knowledge.subset(list(kinds)) if knowledge is not None and kinds else None
    return KnowledgeRanker(cached_llm(llm, cache=cache), dataset.catalog, chosen, **options)


@dataclass
class UserRanking:
    """One user's ranking and what produced it.

    Attributes:
        dataset: The dataset the knowledge base was built from.
        sample: The user's history and candidates.
        ranker: The ranker that ranked them.
        result: The ranking and every call that made it.
        target_known: Whether the user's held-out item is among the candidates (the evaluation's sample).
    """

    dataset: Dataset
    sample: ListSample
    ranker: KnowledgeRanker
    result: RankResult
    target_known: bool


def rank_user(
    base: str | Path,
    user: str,
    *,
    llm: str,
    kinds: str | Sequence[str] = "all",
    candidates: Sequence[str] | None = None,
    sampling: ListSampling = ListSampling(),
    ranker: Mapping[str, Any] | None = None,
    cache: bool = True,
) -> UserRanking:
    """Rank ``user``'s candidates with the knowledge of the base in ``base`` (``kinds='all'``: every
    kind it holds).

    Without ``candidates`` (item ids), they are the evaluation's: the user's held-out item plus
    negatives, drawn with the ``sampling`` of a ``recai knowledge eval`` run and seeded exactly as it
    draws them (a user's sample depends on neither ``n_users`` nor the other users, and ``k`` and
    ``orders`` play no part here). The history is the user's training and validation events (the
    most recent ``sampling.history_len``).
    """
    kb, dataset, split, data = load_knowledge(base)
    if isinstance(kinds, str) and kinds.strip() == "all":
        chosen = list(kb.kinds)  # 'all' of a saved base: every kind it holds
    else:
        chosen = parse_kinds(kinds) if isinstance(kinds, str) else parse_kinds(list(kinds))
    catalog = dataset.catalog
    log = split.train_and_valid()
    try:
        user_index = log.user_index(user)
    except KeyError:
        raise ValueError(f"user {user!r} has no training events in {data.data}") from None
    user_id = log.user_ids[user_index]
    if candidates:
        try:
            positions = [int(p) for p in catalog.index_of(candidates)]
        except KeyError as exc:
            raise ValueError(f"--candidates: {exc.args[0]}") from None
        full = log.sequence(user_id)
        sample = ListSample(
            id=str(user_id),
            user=user_id,
            history=[int(p) for p in full[-sampling.history_len :]] if sampling.history_len > 0 else [],
            target=-1,
            candidates=positions,
            seen=[int(p) for p in full],
        )
        target_known = False
    else:
        samples = build_samples(split, replace(sampling, n_users=None), seed=data.seed)
        found = [s for s in samples if s.id == str(user_id)]
        if not found:
            raise ValueError(
                f"user {user!r} has no held-out test event, so no evaluation sample; pass candidates"
            )
        sample = found[0]
        target_known = True
    knowledge_ranker = evaluation_ranker(llm, dataset, split, data, kb, chosen, options=ranker, cache=cache)
    assert sample.candidates is not None
    result = knowledge_ranker.rank(sample.history, sample.candidates, user=sample.user, key=sample.id)
    return UserRanking(dataset, sample, knowledge_ranker, result, target_known)
