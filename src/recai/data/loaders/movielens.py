"""Loaders for the MovieLens files exactly as GroupLens distributes them.

- 100K: ``u.data`` (tab: user, item, rating, timestamp), ``u.item`` ('|', latin-1: id, title, release
  date, video release date, IMDb URL, 19 genre flags named in ``u.genre``), ``u.user``.
- 1M: ``ratings.dat``, ``movies.dat``, ``users.dat`` with ``::`` separators, latin-1.
- latest / latest-small / 20M / 25M / 32M: ``ratings.csv``, ``movies.csv`` (genres joined by '|',
  "(no genres listed)" for none), optional ``tags.csv`` (folded into a multi-valued ``tags`` column).

Titles keep the year as published ("Toy Story (1995)"); the year also becomes a numeric ``year``
column, and genres a multi-valued ``genres`` column.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from recai.data.catalog import Catalog
from recai.data.dataset import Dataset
from recai.data.errors import DataError, first_flagged
from recai.data.interactions import Interactions
from recai.data.loaders.reading import read_delimited
from recai.data.schema import CatalogSchema, ColumnRole, ColumnSpec

ML100K_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]
_YEAR = re.compile(r"\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_NO_GENRES = "(no genres listed)"


def year_from_title(title: str) -> float:
    """The year in a trailing "(1995)", or NaN."""
    m = _YEAR.search(str(title).strip())
    return float(m.group(1)) if m else float("nan")


def _movie_schema(extra: list[ColumnSpec] | None = None) -> CatalogSchema:
    columns = [
        ColumnSpec(name="item_id", role=ColumnRole.ID),
        ColumnSpec(name="title", role=ColumnRole.TITLE),
        ColumnSpec(name="year", role=ColumnRole.NUMERIC, description="release year"),
        ColumnSpec(name="genres", role=ColumnRole.MULTI_CATEGORICAL),
        *(extra or []),
    ]
    return CatalogSchema(columns=columns, noun="films")


def _ratings(
    file: Path,
    catalog: Catalog,
    *,
    sep: str,
    ids: tuple[str, str] = ("user", "item"),
    header: bool = False,
    encoding: str = "utf-8",
) -> Interactions:
    """A ratings file as the dataset's interactions: every MovieLens release lays it out as user id,
    item id (named ``ids`` in the file), rating and timestamp."""
    user, item = ids
    ratings = read_delimited(
        file,
        sep=sep,
        names=[user, item, "rating", "timestamp"],
        header=header,
        encoding=encoding,
        dtype={user: "int64", item: "int64", "rating": "float64", "timestamp": "int64"},
    ).rename(columns={user: "user_id", item: "item_id"})
    return Interactions(ratings[["user_id", "item_id", "timestamp", "rating"]], catalog.ids, source=str(file))


def _users(file: Path, *, sep: str, names: list[str], dtype: dict[str, object]) -> pd.DataFrame | None:
    """The optional users file (latin-1 in every release that has one), or None when it is absent."""
    if not file.exists():
        return None
    return read_delimited(file, sep=sep, names=names, encoding="latin-1", dtype=dtype)


def load_ml100k(path: str | Path) -> Dataset:
    """MovieLens 100K from the folder holding ``u.data`` and ``u.item``."""
    path = Path(path)
    genres = ML100K_GENRES
    genre_file = path / "u.genre"
    if genre_file.exists():
        g = read_delimited(genre_file, sep="|", names=["genre", "index"], encoding="latin-1")
        genres = g.sort_values("index")["genre"].astype(str).tolist()
    item_cols = ["item_id", "title", "release_date", "video_release_date", "imdb_url", *genres]
    items = read_delimited(
        path / "u.item",
        sep="|",
        names=item_cols,
        encoding="latin-1",
        dtype={"item_id": "int64"},
        required=["item_id"],
    )
    flags = items[genres].fillna(0).to_numpy(dtype=np.int8)
    names = np.array(genres, dtype=object)
    released = pd.to_datetime(items["release_date"], format="%d-%b-%Y", errors="coerce")
    year = items["title"].map(year_from_title)
    year = year.fillna(released.dt.year.astype(float))
    catalog_frame = pd.DataFrame(
        {
            "item_id": items["item_id"],
            "title": items["title"].fillna("").astype(str).str.strip(),
            "year": year,
            "genres": [list(names[row.astype(bool)]) for row in flags],
            "release_date": released,
            "imdb_url": items["imdb_url"],
        }
    )
    schema = _movie_schema(
        [
            ColumnSpec(name="release_date", role=ColumnRole.DATE),
            ColumnSpec(name="imdb_url", role=ColumnRole.IGNORE),
        ]
    )
    catalog = Catalog(catalog_frame, schema, source=path / "u.item")
    return Dataset(
        name="ml-100k",
        catalog=catalog,
        interactions=_ratings(path / "u.data", catalog, sep="\t"),
        users=_users(
            path / "u.user",
            sep="|",
            names=["user_id", "age", "gender", "occupation", "zip_code"],
            dtype={"user_id": "int64", "age": "int64", "zip_code": "str"},
        ),
        meta={
            "source": str(path),
            "format": "movielens-100k",
            "license": "MovieLens 100K: research use only",
        },
    )


def load_ml1m(path: str | Path) -> Dataset:
    """MovieLens 1M from the folder holding ``ratings.dat`` and ``movies.dat``."""
    path = Path(path)
    movies = read_delimited(
        path / "movies.dat",
        sep="::",
        names=["item_id", "title", "genres"],
        encoding="latin-1",
        dtype={"item_id": "int64"},
    )
    catalog = _catalog_from_movies(movies, path / "movies.dat")
    return Dataset(
        name="ml-1m",
        catalog=catalog,
        interactions=_ratings(path / "ratings.dat", catalog, sep="::", encoding="latin-1"),
        users=_users(
            path / "users.dat",
            sep="::",
            names=["user_id", "gender", "age", "occupation", "zip_code"],
            dtype={"user_id": "int64", "zip_code": "str"},
        ),
        meta={"source": str(path), "format": "movielens-1m", "license": "MovieLens 1M: research use only"},
    )


def load_movielens_csv(path: str | Path, *, name: str | None = None, max_tags: int = 10) -> Dataset:
    """MovieLens latest / latest-small / 20M / 25M / 32M from ``ratings.csv`` and ``movies.csv``."""
    path = Path(path)
    movies = read_delimited(
        path / "movies.csv",
        sep=",",
        header=True,
        names=["movieId", "title", "genres"],
        dtype={"movieId": "int64"},
    ).rename(columns={"movieId": "item_id"})
    tags = None
    if (path / "tags.csv").exists():
        tags = read_delimited(
            path / "tags.csv",
            sep=",",
            header=True,
            names=["userId", "movieId", "tag", "timestamp"],
            dtype={"userId": "int64", "movieId": "int64", "tag": "str", "timestamp": "int64"},
        )
    catalog = _catalog_from_movies(movies, path / "movies.csv", tags=tags, max_tags=max_tags)
    return Dataset(
        name=name or path.name,
        catalog=catalog,
        interactions=_ratings(path / "ratings.csv", catalog, sep=",", ids=("userId", "movieId"), header=True),
        meta={
            "source": str(path),
            "format": "movielens-csv",
            "license": "MovieLens: research use, see README",
        },
    )


def _catalog_from_movies(
    movies: pd.DataFrame, source: Path, *, tags: pd.DataFrame | None = None, max_tags: int = 10
) -> Catalog:
    genres = movies["genres"].fillna("").astype(str)
    frame = pd.DataFrame(
        {
            "item_id": movies["item_id"],
            "title": movies["title"].astype(str).str.strip(),
            "year": movies["title"].map(year_from_title),
            "genres": [[g for g in s.split("|") if g and g != _NO_GENRES] for s in genres],
        }
    )
    extra: list[ColumnSpec] = []
    if tags is not None:
        t = tags.assign(tag=tags["tag"].astype(str).str.strip().str.lower())
        t = t[t["tag"] != ""]
        counts = t.groupby(["movieId", "tag"]).size().rename("n").reset_index()
        counts = counts.sort_values(["movieId", "n", "tag"], ascending=[True, False, True])
        top = counts.groupby("movieId").head(max_tags).groupby("movieId")["tag"].agg(list)
        frame["tags"] = frame["item_id"].map(top).map(lambda v: v if isinstance(v, list) else [])
        extra.append(
            ColumnSpec(
                name="tags",
                role=ColumnRole.MULTI_CATEGORICAL,
                description="user tags",
                from_interactions=True,  # written by users, with timestamps: can come from held-out events
            )
        )
    row = first_flagged(frame["item_id"].duplicated())
    if row is not None:
        raise DataError(
            f"duplicate movie id {frame['item_id'].iloc[row]}", path=source, line=row + 2, field="movieId"
        )
    return Catalog(frame, _movie_schema(extra), source=source)


def detect_movielens(path: Path) -> str | None:
    """Which MovieLens layout a folder holds, or None."""
    if (path / "u.data").exists() and (path / "u.item").exists():
        return "ml-100k"
    if (path / "ratings.dat").exists() and (path / "movies.dat").exists():
        return "ml-1m"
    if (path / "ratings.csv").exists() and (path / "movies.csv").exists():
        return "movielens-csv"
    return None
