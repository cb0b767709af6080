"""Verbalisers: every relation renders in every style, and the style is a setting, not a file name."""

from __future__ import annotations

import pytest

from recai.knowledge import STYLES, Fact, Verbaliser

NAMES = {1: "Psycho (1960)", 2: "Vertigo (1958) [3]", 3: "Heat (1995)", 4: "Up (2009) [1]"}

FACTS = [
    Fact(
        "attributes",
        "profile",
        1.0,
        values={"of": 5, "values": [{"column": "genres", "value": "Thriller", "count": 3}]},
    ),
    Fact(
        "attributes",
        "item_attributes",
        0.7,
        candidate=2,
        anchor=1,
        values={
            "attributes": {"genres": ["Mystery", "Thriller"], "director": ["Alfred Hitchcock"]},
            "shared": [{"column": "director", "value": "Alfred Hitchcock", "anchors": [1], "count": 1}],
        },
    ),
    Fact(
        "attributes",
        "item_attributes",
        0.02,
        candidate=4,
        values={"attributes": {"genres": ["Animation"]}, "shared": []},
    ),
    Fact(
        "cooccurrence",
        "co_occurs",
        0.9,
        candidate=2,
        anchor=1,
        values={"count": 6, "score": 0.5, "measure": "cosine"},
    ),
    Fact("embedding", "similar", 0.9, candidate=2, anchor=1, values={"similarity": 0.81, "model": "sasrec"}),
    Fact(
        "recommender", "recommender_score", 1.0, candidate=2, values={"rank": 1, "of": 20, "model": "sasrec"}
    ),
    Fact(
        "recommender",
        "recommender_score",
        0.8,
        candidate=4,
        values={"rank": 2, "of": 20, "model": "bpr", "catalog_rank": 40, "catalog_size": 900},
    ),
    Fact(
        "patterns",
        "popularity",
        0.6,
        candidate=4,
        values={"users": 12, "rank": 3, "of": 20, "percent_beaten": 60},
    ),
    Fact(
        "patterns",
        "associated_pair",
        0.9,
        candidate=2,
        anchor=1,
        values={"partner": 1, "pair_rank": 4, "count": 6, "score": 0.5, "measure": "cosine"},
    ),
    Fact(
        "graph",
        "path",
        0.8,
        candidate=2,
        anchor=1,
        values={
            "steps": [
                {"item": 1},
                {"relation": "director", "towards_value": True},
                {"column": "director", "value": "Alfred Hitchcock"},
                {"relation": "director", "towards_value": False},
                {"item": 2},
            ]
        },
    ),
]


@pytest.mark.parametrize("style", STYLES)
def test_every_relation_renders_in_every_style(style: str) -> None:
    verbaliser = Verbaliser(style, item_noun="films")
    for fact in FACTS:
        text = verbaliser.render(fact, NAMES.__getitem__)
        assert text and "$" not in text, (style, fact.relation, text)
        if fact.candidate is not None:
            assert NAMES[fact.candidate] in text  # the candidate's number travels with its name


def test_reasoning_paths_read_from_the_history_to_the_candidate() -> None:
    path = FACTS[-1]
    expected = "Psycho (1960) -> directed by -> Alfred Hitchcock -> directed -> Vertigo (1958) [3]"
    assert Verbaliser("paths").render(path, NAMES.__getitem__) == expected
    assert Verbaliser("natural").render(path, NAMES.__getitem__) == expected
    assert Verbaliser("statements").render(path, NAMES.__getitem__) == expected + "."


def test_styles_and_nouns_change_the_wording() -> None:
    cooc = FACTS[3]
    films = Verbaliser("statements", item_noun="films").render(cooc, NAMES.__getitem__)
    books = Verbaliser("statements", item_noun="books").render(cooc, NAMES.__getitem__)
    assert films == "People who watched Psycho (1960) often also watched Vertigo (1958) [3] (6 people)."
    assert "read" in books and "watched" not in books
    listed = Verbaliser("lists").render(FACTS[1], NAMES.__getitem__)
    assert listed.startswith("Vertigo (1958) [3] | genres: Mystery, Thriller; director: Alfred Hitchcock")
    shared = Verbaliser("statements").render(FACTS[1], NAMES.__getitem__)
    assert shared == "Vertigo (1958) [3] shares director Alfred Hitchcock with Psycho (1960)."
    unknown_column = Verbaliser("paths").label("studio", towards_value=True)
    assert unknown_column == "has studio"


def test_templates_are_configurable_and_checked() -> None:
    with pytest.raises(ValueError, match="unknown verbaliser style 'poetry'"):
        Verbaliser("poetry")
    custom = {"terse": {"co_occurs": "$anchor+$candidate"}, "relations": {}}
    assert (
        Verbaliser("terse", templates=custom).render(FACTS[3], NAMES.__getitem__)
        == "Psycho (1960)+Vertigo (1958) [3]"
    )
    with pytest.raises(KeyError, match="no template for 'similar'"):
        Verbaliser("terse", templates=custom).render(FACTS[4], NAMES.__getitem__)
