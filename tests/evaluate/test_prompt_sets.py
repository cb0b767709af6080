"""Prompt sets for judged generation: built from real users and the catalog, saved with provenance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recai.data import Catalog, Dataset, Interactions
from recai.data.errors import DataError
from recai.evaluate.prompt_sets import (
    PromptItem,
    PromptSet,
    build_chitchat_set,
    build_explanation_set,
    category_values,
)
from recai.rec.popularity import Popularity


def _dataset(catalog: Catalog) -> Dataset:
    rng = np.random.default_rng(5)
    rows = [
        (f"u{u}", int(item), t)
        for u in range(10)
        for t, item in enumerate(rng.choice(list(catalog.ids), size=5, replace=False))
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Dataset("tiny-log", catalog, Interactions(frame, catalog.ids))


def test_explanations_ask_about_the_recommenders_top_item(catalog: Catalog, tmp_path: Path) -> None:
    data = _dataset(catalog)
    split = data.split()
    model = Popularity().fit(split.train)
    built = build_explanation_set(
        data, split, model, recommender="popularity", n_users=6, history_len=3, seed=2
    )
    assert len(built.items) == 6 and built.kind == "explanation"
    for item in built.items:
        full = split.train_and_valid().sequence(item.user)
        top, _ = model.recommend(full, 1, exclude=full, user=item.user)
        title = catalog.display_title(int(top[0]))
        assert item.items == [catalog.ids[int(top[0])]]
        assert title in item.prompt and title in item.facts
        assert all(catalog.display_title(int(p)) in item.prompt for p in full[-3:])
        assert int(top[0]) not in set(full.tolist())  # never an item the user already has
    again = build_explanation_set(
        data, split, model, recommender="popularity", n_users=6, history_len=3, seed=2
    )
    assert again.lines() == built.lines()

    built.save(tmp_path / "expl")
    loaded = PromptSet.load(tmp_path / "expl", kind="explanation")
    assert loaded.lines() == built.lines()
    provenance = json.loads((tmp_path / "expl" / "provenance.json").read_text())
    assert provenance["recommender"] == "popularity" and provenance["dataset"] == "tiny-log"
    assert provenance["sha256"] == loaded.sha256() and "edited" not in loaded.provenance
    with pytest.raises(FileExistsError):
        built.save(tmp_path / "expl")
    with pytest.raises(DataError, match="not chitchat"):
        PromptSet.load(tmp_path / "expl", kind="chitchat")


def test_chitchat_uses_the_catalogs_items_and_categories(catalog: Catalog) -> None:
    data = _dataset(catalog)
    values = category_values(data, min_items=2)
    assert values  # the film fixture has genres
    built = build_chitchat_set(data, n=24, seed=0)
    assert len(built.items) == 24 and len({i.prompt for i in built.items}) == 24
    titles = {catalog.display_title(p) for p in range(len(catalog))}
    for item in built.items:
        assert any(t in item.prompt for t in titles) or any(v in item.prompt for v in values)
        assert "$" not in item.prompt
        if "good place to start" in item.prompt:  # the item named must carry the category named
            value = next(v for v in values if f"with {v} " in item.prompt)
            assert int(catalog.index_of(item.items)[0]) in values[value]
    assert build_chitchat_set(data, n=24, seed=0).lines() == built.lines()
    assert build_chitchat_set(data, n=24, seed=1).lines() != built.lines()


def test_hand_written_and_edited_sets_are_marked(tmp_path: Path) -> None:
    own = tmp_path / "mine.jsonl"
    own.write_text('{"id": "a", "kind": "chitchat", "prompt": "Hi there"}\n', encoding="utf-8")
    loaded = PromptSet.load(own)
    assert loaded.kind == "chitchat" and loaded.provenance["source"] == "written"

    saved = PromptSet("chitchat", [PromptItem("a", "chitchat", "Hi")], {"source": "templates"})
    saved.save(tmp_path / "set")
    (tmp_path / "set" / "prompts.jsonl").write_text(
        '{"id": "a", "kind": "chitchat", "prompt": "Hello"}\n', encoding="utf-8"
    )
    assert PromptSet.load(tmp_path / "set").provenance["edited"] is True


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 2: not valid JSON"),
        ('{"id": "b", "kind": "chitchat"}', "line 2, field 'prompt'"),
        ('{"id": "b", "kind": "explanation", "prompt": "x"}', "same kind"),
        ('{"id": "b", "kind": "chitchat", "prompt": "x", "items": 3}', "field 'items'"),
    ],
)
def test_bad_prompt_files_name_the_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"id": "a", "kind": "chitchat", "prompt": "Hi"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message):
        PromptSet.load(path)
