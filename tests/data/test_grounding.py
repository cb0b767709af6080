from __future__ import annotations

import pytest

from recai.data import Catalog, TitleMatcher
from recai.data.grounding import parse_title


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Pulp Fiction", 10),
        ("pulp fiction", 10),
        ("Pulp Fictoin", 10),  # typo
        ("PULP FICTION (1994)", 10),
        ("Godfather", 16),  # leading article dropped
        ("Godfather, The (1972)", 16),  # MovieLens style
        ("Amelie", 13),  # accents folded
        ("The Godfather Part II", 17),
        ("Beauty and the Beast (1946)", 14),  # the year separates remakes
        ("beauty & the beast (1991)", 15),
    ],
)
def test_titles_resolve(catalog: Catalog, query: str, expected: int) -> None:
    g = catalog.ground(query)
    assert g.resolved and g.item_id == expected, g


@pytest.mark.parametrize("query", ["asdfgh", "the", "love", "Jurassic Park", "", "   ", "Heat wave in Paris"])
def test_garbage_never_resolves(catalog: Catalog, query: str) -> None:
    g = catalog.ground(query)
    assert not g.resolved and g.item_id is None
    assert g.score < catalog.grounding_threshold


def test_near_miss_offers_did_you_mean(catalog: Catalog) -> None:
    g = catalog.ground("Reservoir Cats")
    assert not g.resolved
    assert g.did_you_mean(1) == ["Reservoir Dogs (1992)"]


def test_same_title_without_year_is_ambiguous(catalog: Catalog) -> None:
    g = catalog.ground("Beauty and the Beast")
    assert g.resolved and g.ambiguous
    assert {m.item_id for m in g.alternatives[:2]} == {14, 15}


def test_threshold_is_configurable(catalog: Catalog) -> None:
    assert not catalog.ground("Pulp Fictoin", threshold=95).resolved
    assert catalog.ground("Pulp Fictoin", threshold=80).resolved


def test_main_title_before_subtitle_matches() -> None:
    m = TitleMatcher(["Star Wars: Episode IV - A New Hope (1977)", "Starship Troopers (1997)"], [1, 2])
    g = m.ground("Star Wars")
    assert g.item_id == 1 and g.score == 95.0


def test_alternative_titles_in_parentheses_match() -> None:
    m = TitleMatcher(["City of Lost Children, The (Cité des enfants perdus, La) (1995)"], ["x"])
    assert m.ground("La cité des enfants perdus").item_id == "x"
    assert m.ground("The City of Lost Children").item_id == "x"


def test_parse_title() -> None:
    assert parse_title("Matrix, The (1999)") == ("Matrix, The", [], 1999)
    assert parse_title("Seven (a.k.a. Se7en) (1995)") == ("Seven", ["Se7en"], 1995)
    assert parse_title("Heat") == ("Heat", [], None)


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="2 titles but 1 ids"):
        TitleMatcher(["a", "b"], [1])


@pytest.mark.parametrize(
    "query", ["Godfather Part III", "The Godfather Part 4", "Heat 2", "Pulp Fiction II", "Amelie 2 (2001)"]
)
def test_invented_sequels_do_not_resolve_to_real_ones(catalog: Catalog, query: str) -> None:
    g = catalog.ground(query)
    assert not g.resolved, g
    assert g.alternatives  # but the real titles are offered


def test_numbers_written_differently_still_match() -> None:
    m = TitleMatcher(["Rocky II (1979)", "Rocky III (1982)", "Toy Story 2 (1999)"], [2, 3, 22])
    assert m.ground("Rocky 2").item_id == 2
    assert m.ground("Toy Story II").item_id == 22
    assert m.ground("Rocky 4").item_id is None


def test_a_wrong_year_does_not_resolve_but_one_year_off_does(catalog: Catalog) -> None:
    assert not catalog.ground("Heat (2050)").resolved
    assert catalog.ground("Heat (2050)").did_you_mean(1) == ["Heat (1995)"]
    assert catalog.ground("Heat (1996)").item_id == 12  # festival vs release year


def test_empty_titles_are_refused(films, film_schema) -> None:
    from recai.data import DataError

    films = films.astype({"title": object})
    films.loc[2, "title"] = None
    with pytest.raises(DataError, match=r"line 4, field 'title': empty title"):
        Catalog(films, film_schema)


def test_subtitles_franchise_phrases_and_distinctive_words_match() -> None:
    titles = [
        "Lord of the Rings: The Fellowship of the Ring, The (2001)",
        "Lord of the Rings: The Two Towers, The (2002)",
        "Harry Potter and the Sorcerer's Stone (2001)",
        "Harry Potter and the Chamber of Secrets (2002)",
        "Star Wars: Episode V - The Empire Strikes Back (1980)",
        "Love Actually (2003)",
        "Crazy, Stupid, Love. (2011)",
    ]
    popularity = [50, 40, 10, 30, 60, 5, 5]
    m = TitleMatcher(titles, list(range(len(titles))), popularity=popularity)
    assert m.ground("The Fellowship of the Ring").item_id == 0  # the subtitle on its own
    assert m.ground("Fellowship").item_id == 0  # one distinctive word
    assert m.ground("Empire Strikes Back").item_id == 4  # words inside a title, whole and in order
    potter = m.ground("Harry Potter")  # a franchise: the most interacted of its titles, flagged
    assert potter.item_id == 3 and potter.ambiguous and potter.score == 90
    assert not m.ground("Love").resolved  # a short, common word is not distinctive
    assert not m.ground("Potter and the Goblet").resolved  # words that are not all in one title
    assert not m.ground("Towers Two").resolved  # order matters


def test_spoken_titles_move_the_article_back_and_keep_the_year() -> None:
    from recai.data.grounding import spoken_title

    assert spoken_title("Silence of the Lambs, The (1991)") == "The Silence of the Lambs (1991)"
    assert spoken_title("Matrix, The") == "The Matrix"
    assert spoken_title("Heat (1995)") == "Heat (1995)"
    assert spoken_title("Crouching Tiger, Hidden Dragon (2000)") == "Crouching Tiger, Hidden Dragon (2000)"
    assert spoken_title("Muse") == "Muse"
