"""Knowledge extractors: each fact is right on hand-made data, and nothing comes from evaluated events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recai.data import Catalog, Dataset
from recai.knowledge import (
    AttributeExtractor,
    CooccurrenceExtractor,
    EmbeddingExtractor,
    Fact,
    GraphExtractor,
    KnowledgeBase,
    PatternsExtractor,
    Query,
    RecommenderExtractor,
)
from recai.knowledge.cooccurrence import cooccurrence_counts
from recai.rec import ALS, ItemKNN, NotFittedError, Popularity
from tests.knowledge.data import (
    ONLY_IN_TEST,
    X,
    Y,
    everything_as_train,
    leaky_dataset,
    position,
    train_only,
)


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return leaky_dataset()


def _als(train: object) -> ALS:
    return ALS(factors=8, iterations=4, seed=0).fit(train)  # type: ignore[arg-type]


def _links(facts: list[Fact], a: int, b: int) -> list[Fact]:
    """Facts that tie item a to item b: as candidate and anchor, as a pair, or anywhere on a path."""
    out = []
    for f in facts:
        ends = {f.candidate, f.anchor, f.values.get("partner")}
        on_path = {s.get("item") for s in f.values.get("steps", [])}
        if {a, b} <= ends | on_path:
            out.append(f)
    return out


def test_cooccurrence_counts_distinct_users_within_the_window(ds: Dataset) -> None:
    split = ds.split()
    counts = cooccurrence_counts(split.train, window=None)
    psycho, vertigo = position(ds.catalog, 11), position(ds.catalog, 12)
    assert counts[psycho, vertigo] == counts[vertigo, psycho] >= 6  # the six "d" users, at least
    assert counts.diagonal().sum() == 0
    # a window of 1 keeps only neighbours in the sequence: Psycho is right before Vertigo for "d" users
    near = cooccurrence_counts(split.train, window=1)
    assert near[psycho, vertigo] >= 6 and near.nnz < counts.nnz
    with pytest.raises(ValueError, match="window"):
        cooccurrence_counts(split.train, window=0)


def test_no_extractor_learns_from_validation_or_test_events(ds: Dataset) -> None:
    """X and Y co-occur only as validation + test events: fitted on training, nothing links them; the
    same extractors fitted on the whole log do link them (so this test can fail)."""
    catalog, split = ds.catalog, ds.split()
    x, y = position(catalog, X), position(catalog, Y)
    history = [position(catalog, i) for i in (2, 3, 5)] + [x]
    candidates = [y, position(catalog, 6), position(catalog, 7)]
    query = Query.of(history, candidates)
    kinds = ["cooccurrence", "patterns", "graph"]
    params = {"patterns": {"min_count": 2}, "graph": {"hops": 1}}
    # built from an object that has only the training part: valid and test cannot even be read
    clean = KnowledgeBase.build(catalog, train_only(split), kinds=kinds, params=params)
    assert _links(clean.facts(query), x, y) == []
    leaky = KnowledgeBase.build(catalog, everything_as_train(split), kinds=kinds, params=params)
    found = {f.kind for f in _links(leaky.facts(query), x, y)}
    assert found == {"cooccurrence", "patterns", "graph"}


def test_items_unseen_in_training_get_no_collaborative_facts(ds: Dataset) -> None:
    catalog, split = ds.catalog, ds.split()
    z = position(catalog, ONLY_IN_TEST)
    history = [position(catalog, i) for i in (2, 3, 5, 6)]
    query = Query.of(history, [z, position(catalog, 7)])
    model = _als(split.train)
    for extractor in (
        EmbeddingExtractor(model="als", min_percentile=0.0).fit(catalog, split.train, model=model),
        CooccurrenceExtractor(min_count=1).fit(catalog, split.train),
        PatternsExtractor(min_count=1).fit(catalog, split.train),
    ):
        about_z = [f for f in extractor.facts(query) if f.candidate == z and f.relation != "popularity"]
        assert about_z == [], type(extractor).__name__
    popularity = [f for f in PatternsExtractor().fit(catalog, split.train).facts(query) if f.candidate == z]
    assert popularity[0].values["users"] == 0 and popularity[0].strength == 0.0


def test_attribute_facts_share_values_with_recent_history() -> None:
    ds = leaky_dataset()
    catalog, split = ds.catalog, ds.split()
    psycho, vertigo, heat = (position(catalog, i) for i in (11, 12, 7))
    extractor = AttributeExtractor().fit(catalog, split.train)
    facts = extractor.facts(Query.of([heat, psycho], [vertigo, position(catalog, 6)]))
    profile = [f for f in facts if f.relation == "profile"]
    assert len(profile) == 1 and profile[0].values["of"] == 2
    vertigo_fact = next(f for f in facts if f.candidate == vertigo)
    shared = {(s["column"], s["value"]) for s in vertigo_fact.values["shared"]}
    assert ("director", "Alfred Hitchcock") in shared and ("genres", "Thriller") in shared
    assert vertigo_fact.anchor == psycho  # the strongest shared value is Hitchcock, only Psycho has him
    assert vertigo_fact.values["attributes"]["decade"] == ["1950s"]
    up_fact = next(f for f in facts if f.candidate == position(catalog, 6))
    assert up_fact.strength < vertigo_fact.strength
    with pytest.raises(ValueError, match="synopsis"):
        AttributeExtractor(columns=["synopsis"]).fit(catalog, split.train)


def test_cooccurrence_facts_are_calibrated_and_capped(ds: Dataset) -> None:
    catalog, split = ds.catalog, ds.split()
    psycho, vertigo = position(catalog, 11), position(catalog, 12)
    extractor = CooccurrenceExtractor(window=None, max_anchors=2).fit(catalog, split.train)
    history = [position(catalog, i) for i in (2, 3, 5, 6, 7)] + [psycho]
    facts = extractor.facts(Query.of(history, [vertigo, position(catalog, 8)]))
    assert all(0.0 <= f.strength <= 1.0 for f in facts)
    assert max(sum(f.candidate == c for f in facts) for c in (vertigo,)) <= 2
    best = max((f for f in facts if f.candidate == vertigo), key=lambda f: f.strength)
    assert best.anchor == psycho and best.values["count"] >= 6
    assert best.topic == ("cooccurrence", vertigo, psycho)
    count, score = extractor.pair(psycho, vertigo)
    assert count == best.values["count"] and score == pytest.approx(best.values["score"], abs=1e-4)


def test_embedding_needs_item_vectors_and_ranks_by_similarity(ds: Dataset) -> None:
    catalog, split = ds.catalog, ds.split()
    with pytest.raises(ValueError, match="no item embeddings"):
        EmbeddingExtractor(model="itemcf").fit(catalog, split.train, model=ItemKNN().fit(split.train))
    with pytest.raises(ValueError, match="model="):
        EmbeddingExtractor().fit(catalog, split.train)
    model = _als(split.train)
    extractor = EmbeddingExtractor(model="als", min_percentile=0.0, max_anchors=1).fit(
        catalog, split.train, model=model
    )
    history = [position(catalog, i) for i in (2, 3, 5)]
    candidates = [position(catalog, i) for i in (6, 7, 8)]
    facts = extractor.facts(Query.of(history, candidates))
    vectors = model.item_vectors()
    for f in facts:
        assert f.candidate is not None and f.anchor is not None
        sims = [
            float(
                vectors[f.candidate]
                @ vectors[h]
                / np.linalg.norm(vectors[f.candidate])
                / np.linalg.norm(vectors[h])
            )
            for h in history
        ]
        assert f.values["similarity"] == pytest.approx(max(sims), abs=1e-3)


def test_recommender_facts_follow_the_models_ranking(ds: Dataset) -> None:
    catalog, split = ds.catalog, ds.split()
    popularity = Popularity().fit(split.train)
    extractor = RecommenderExtractor(model="popularity", scope="catalog").fit(
        catalog, split.train, model=popularity
    )
    candidates = [position(catalog, i) for i in (21, 2, 3)]
    facts = extractor.facts(Query.of([position(catalog, 5)], candidates))
    scores = popularity.item_scores_[candidates]
    expected = np.argsort(-scores, kind="stable")
    by_rank = sorted(facts, key=lambda f: f.values["rank"])
    assert [f.candidate for f in by_rank] == [candidates[i] for i in expected]
    assert by_rank[0].strength == 1.0 > by_rank[1].strength > by_rank[2].strength
    assert by_rank[0].values["catalog_rank"] >= 1 and by_rank[0].values["catalog_size"] == len(catalog) - 1


def test_graph_finds_bounded_deterministic_paths(ds: Dataset) -> None:
    catalog, split = ds.catalog, ds.split()
    psycho, vertigo = position(catalog, 11), position(catalog, 12)
    graph = GraphExtractor(hops=2, cooccurrence=False).fit(catalog, split.train)
    history = [position(catalog, 7), psycho]
    query = Query.of(history, [vertigo, position(catalog, 6)])
    facts = graph.facts(query)
    paths = [f for f in facts if f.candidate == vertigo]
    assert paths and paths[0].anchor == psycho
    steps = paths[0].values["steps"]
    assert steps[0] == {"item": psycho} and steps[-1] == {"item": vertigo}
    assert {"column": "director", "value": "Alfred Hitchcock"} in steps
    assert len([s for s in steps if "relation" in s]) <= 2
    assert graph.facts(query) == facts  # the same sample gives the same paths
    one_hop = GraphExtractor(hops=1, cooccurrence=False).fit(catalog, split.train)
    assert one_hop.facts(query) == []  # item-value-item needs two edges
    with pytest.raises(ValueError, match="hops"):
        GraphExtractor(hops=7)


def test_extractors_refuse_to_work_unfitted(ds: Dataset) -> None:
    with pytest.raises(NotFittedError):
        CooccurrenceExtractor().facts(Query.of([0], [1]))


def test_every_extractor_saves_and_loads_to_the_same_facts(ds: Dataset, tmp_path: Path) -> None:
    catalog, split = ds.catalog, ds.split()
    kb = KnowledgeBase.build(
        catalog,
        train_only(split),
        kinds="all",
        params={"embedding": {"model": "als"}, "recommender": {"model": "als"}},
        fit_model=lambda name: _als(split.train),
        meta={"note": "test"},
    )
    assert kb.model("als") is not None and kb.model("sasrec") is None
    kb.save(tmp_path / "kb")
    again = KnowledgeBase.load(tmp_path / "kb", catalog)
    assert (
        again.kinds == kb.kinds and again.meta["note"] == "test" and again.fingerprint() == kb.fingerprint()
    )
    query = Query.of([position(catalog, i) for i in (2, 3, 11)], [position(catalog, i) for i in (12, 6, 7)])
    assert again.facts(query) == kb.facts(query)
    other = leaky_dataset().catalog
    bigger = type(other)(other.items.iloc[:20], other.schema)
    with pytest.raises(Exception, match="another catalog"):
        KnowledgeBase.load(tmp_path / "kb", bigger)
    with pytest.raises(FileExistsError):
        kb.save(tmp_path / "kb")


@pytest.mark.parametrize(
    ("kinds", "model"),
    [("recommender", "popularity"), ("embedding,recommender", "als"), ("embedding", "sasrec")],
)
def test_the_build_command_fits_models_on_the_training_part_only(
    kinds: str, model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`build_knowledge` (what `recai knowledge build` runs) must hand the recommenders behind the
    model-based extractors the training events only: validation may steer early stopping, never fitting."""
    from recai import rec
    from recai.evaluate.prepare import DataOptions
    from recai.knowledge.workflows import build_knowledge

    cls = {"popularity": rec.Popularity, "als": rec.ALS, "sasrec": rec.SASRec}[model]
    fitted_on: list[pd.DataFrame] = []
    original = cls.fit

    def spy(self: object, interactions: object, *args: object, **kwargs: object) -> object:
        fitted_on.append(interactions.frame.copy())  # type: ignore[attr-defined]
        return original(self, interactions, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cls, "fit", spy)
    options = DataOptions("demo")
    params = {kind: {"model": model} for kind in kinds.split(",")}
    kb = build_knowledge(
        options, tmp_path / "kb", kinds=kinds, params=params, sasrec_budget_s=1.0, progress=False
    )
    assert len(fitted_on) == 1  # extractors naming the same model share one fit
    _, split = options.load()
    key = ["user_id", "item_id", "timestamp"]
    seen = fitted_on[0][key].sort_values(key).reset_index(drop=True)
    assert seen.equals(split.train.frame[key].sort_values(key).reset_index(drop=True))
    held_out = split.test.frame[key].merge(seen, on=key)
    assert held_out.empty
    assert kb.kinds == kinds.split(",")


def test_columns_derived_from_interactions_are_left_out_unless_named() -> None:
    """User tags (MovieLens tags.csv) can come from held-out events: no extractor uses them by default."""
    from recai.data import CatalogSchema, ColumnSpec
    from recai.data.schema import ColumnRole
    from recai.knowledge.attributes import attribute_columns

    frame = pd.DataFrame(
        {
            "item_id": [1, 2],
            "title": ["A", "B"],
            "genres": [["Drama"], ["Comedy"]],
            "tags": [["twist ending"], ["twist ending"]],
        }
    )
    schema = CatalogSchema(
        columns=[
            ColumnSpec(name="item_id", role=ColumnRole.ID),
            ColumnSpec(name="title", role=ColumnRole.TITLE),
            ColumnSpec(name="genres", role=ColumnRole.MULTI_CATEGORICAL),
            ColumnSpec(name="tags", role=ColumnRole.MULTI_CATEGORICAL, from_interactions=True),
        ]
    )
    catalog = Catalog(frame, schema)
    assert attribute_columns(catalog) == ["genres"]
    assert attribute_columns(catalog, columns=["genres", "tags"]) == ["genres", "tags"]
    assert CatalogSchema.from_dict(schema.to_dict()).column("tags").from_interactions
    from recai.data import Interactions

    log = pd.DataFrame({"user_id": ["u", "u"], "item_id": [1, 2], "timestamp": [1, 2]})
    graph = GraphExtractor(hops=2, cooccurrence=False).fit(catalog, Interactions(log, catalog.ids))
    assert set(graph.table_.columns.tolist()) == {"genres"}  # "twist ending" would have linked A and B
    named = GraphExtractor(hops=2, cooccurrence=False, columns=["tags"]).fit(
        catalog, Interactions(log, catalog.ids)
    )
    assert set(named.table_.columns.tolist()) == {"tags"}


def test_cooccurrence_counts_and_measures_match_a_hand_computation() -> None:
    """Five users over four films, worked by hand: distinct users per pair (a repeat by one user counts
    once), within the window or anywhere, and the three normalised measures."""
    from recai.data import Interactions
    from tests.knowledge.data import film_catalog

    catalog = film_catalog()
    a, b, c, d = 2, 3, 5, 6  # item ids
    sequences = {"u1": [a, b, c, b], "u2": [a, c, b], "u3": [b, a], "u4": [a, d], "u5": [c, d]}
    rows = [
        (u, item, 1_600_000_000 + 60 * t) for u, items in sequences.items() for t, item in enumerate(items)
    ]
    train = Interactions(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]), catalog.ids)
    pa, pb, pc, pd_ = (position(catalog, i) for i in (a, b, c, d))
    anywhere = cooccurrence_counts(train, window=None)
    assert [anywhere[pa, pb], anywhere[pa, pc], anywhere[pb, pc], anywhere[pa, pd_], anywhere[pc, pd_]] == [
        3,
        2,
        2,
        1,
        1,
    ]
    adjacent = cooccurrence_counts(train, window=1)  # u2's a..b and u1's a..c are two steps apart
    assert [adjacent[pa, pb], adjacent[pa, pc], adjacent[pb, pc], adjacent[pb, pd_]] == [2, 1, 2, 0]
    assert (anywhere != anywhere.T).nnz == 0 and anywhere.diagonal().sum() == 0
    # users per item: a 4, b 3, c 3, d 2; 5 users in all
    expected = {"cosine": 3 / np.sqrt(4 * 3), "jaccard": 3 / (4 + 3 - 3), "lift": 3 * 5 / (4 * 3)}
    for measure, value in expected.items():
        extractor = CooccurrenceExtractor(window=None, measure=measure, min_count=1).fit(catalog, train)
        assert extractor.pair(pa, pb) == (3, pytest.approx(value))
        assert extractor.pair(pb, pa) == extractor.pair(pa, pb)
    assert CooccurrenceExtractor(window=None, measure="lift", min_count=1).fit(catalog, train).pair(
        pc, pd_
    ) == (1, pytest.approx(1 * 5 / (3 * 2)))
