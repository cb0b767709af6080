"""Parsing LLM item lists in the shapes models produce, and sorting every name into one bucket."""

from __future__ import annotations

import pytest

from recai.data import Catalog
from recai.evaluate.parsing import ListGrounder, parse_item_list


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('["Heat", "Pulp Fiction"]', ["Heat", "Pulp Fiction"]),
        ('Sure! ```json\n["Heat (1995)", "Amélie (2001)"]\n```', ["Heat (1995)", "Amélie (2001)"]),
        (
            '{"recommendations": [{"title": "Heat", "reason": "tense"}, {"title": "Amélie"}]}',
            ["Heat", "Amélie"],
        ),
        (
            "1. Heat (1995) - a tense heist film\n2. Amélie: whimsical\n3) The Godfather",
            ["Heat (1995)", "Amélie: whimsical", "The Godfather"],
        ),
        ("- **Heat** because you like crime\n- **Amélie**", ["Heat", "Amélie"]),
        ("I think you would enjoy **Heat** and also **Reservoir Dogs**.", ["Heat", "Reservoir Dogs"]),
        ('You might like "Heat" or "Amélie".', ["Heat", "Amélie"]),
        ("Here are my recommendations: Heat, Amélie; The Godfather", ["Heat", "Amélie", "The Godfather"]),
    ],
)
def test_shapes_models_produce(text: str, expected: list[str]) -> None:
    assert parse_item_list(text) == expected


def test_max_items_keeps_the_order() -> None:
    assert parse_item_list('["a1", "b2", "c3"]', max_items=2) == ["a1", "b2"]


def test_broken_json_falls_back_to_lines() -> None:
    assert parse_item_list('["Heat",\n1. Heat\n2. Fargo') == ["Heat", "Fargo"]


def test_buckets_every_name_once(catalog: Catalog) -> None:
    grounder = ListGrounder(catalog)
    names = ["Heat", "heat (1995)", "Toy Story 5", "Pulp Fiction", "The Godfather", "Amelie"]
    out = grounder.ground(names, candidates=[12, 13, 11], seen=[10])
    assert out.items == [12, 13]  # Heat, Amélie (accent folded)
    assert out.duplicate == ["heat (1995)"]
    assert out.invalid == ["Toy Story 5"]
    assert out.out_of_candidates == ["Pulp Fiction", "The Godfather"]  # real items, not offered
    assert out.already_seen == []
    assert sum(v for k, v in out.counts().items() if k != "named") == len(names)


def test_explanations_after_a_colon_are_cut_only_when_needed(catalog: Catalog) -> None:
    out = ListGrounder(catalog).ground(["Amélie: whimsical and warm", "The Godfather Part II: the sequel"])
    assert out.items == [13, 17]


def test_seen_items_are_counted_in_retrieval(catalog: Catalog) -> None:
    out = ListGrounder(catalog).ground(["Pulp Fiction", "Heat"], seen=[10])
    assert out.already_seen == ["Pulp Fiction"]
    assert out.items == [12]


def test_candidates_win_over_a_better_catalog_match(catalog: Catalog) -> None:
    # "Beauty and the Beast" exists twice; only the 1991 one is a candidate, so that is the match.
    out = ListGrounder(catalog).ground(["Beauty and the Beast"], candidates=[15, 12])
    assert out.items == [15]


def test_unrecognised_json_elements_are_kept_to_be_counted() -> None:
    assert parse_item_list('[{"Title": "Heat"}, ["Up", 2009], {"score": 3}]') == [
        "Heat",
        "Up (2009)",
        '{"score": 3}',
    ]
    assert parse_item_list('{"reasoning": ["x is tense"], "ranking": ["Heat", "Fargo"]}') == ["Heat", "Fargo"]


def test_subtitles_survive_parsing(catalog: Catalog) -> None:
    assert parse_item_list("1. Mission: Impossible - Fallout") == ["Mission: Impossible - Fallout"]
    out = ListGrounder(catalog).ground(
        parse_item_list("1. Heat - a tense heist film\n2. Amélie because it is warm")
    )
    assert out.items == [12, 13]
