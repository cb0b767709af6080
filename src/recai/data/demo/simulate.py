"""A seeded simulator of a film-viewing log, so the demo has meaningful collaborative signals.

Each simulated user has latent tastes:
- a genre preference drawn from a sparse Dirichlet (most users love a few genres),
- a preferred era (a centre year and a tolerance),
- an attitude to non-English films,
- zero to two favourite directors,
- a sensitivity to popularity, and an activity level (how many films they watch).
Each film has a hidden popularity drawn once (log-normal, higher for English-language and recent
films and for a fixed list of blockbusters and canon classics, which mimics the skew of real logs).

Users watch in sessions. A session has a mood (one of the user's genres). Each next film is drawn
without replacement from a softmax over the unseen films: taste + era + language + director bonus +
popularity + mood bonus + a sequential bonus for the same director, shared genres and the same decade
as the previous film. Sessions are days apart, films within a session hours apart. The rating is the
film's utility for the user, standardised, plus noise, mapped to 1-5 stars.

So co-watching (item-CF), popularity, sequences (SASRec) and attributes (content models) all carry
signal, and nothing in the log is a copy of a real user's behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

START = pd.Timestamp("2019-01-01").timestamp()
END = pd.Timestamp("2024-06-30").timestamp()
HOUR = 3600.0
DAY = 24 * HOUR


# Films that everyone has heard of get a popularity boost, so "popular" looks plausible in the demo.
FAMOUS = frozenset(
    {
        "The Godfather",
        "Star Wars",
        "Pulp Fiction",
        "The Shawshank Redemption",
        "The Dark Knight",
        "Titanic",
        "Jurassic Park",
        "Forrest Gump",
        "The Matrix",
        "Inception",
        "Fight Club",
        "Back to the Future",
        "The Lord of the Rings: The Fellowship of the Ring",
        "The Lord of the Rings: The Return of the King",
        "Toy Story",
        "The Lion King",
        "Avatar",
        "Avengers: Endgame",
        "Interstellar",
        "Gladiator",
        "Raiders of the Lost Ark",
        "The Silence of the Lambs",
        "Se7en",
        "Goodfellas",
        "Casablanca",
        "Psycho",
        "Jaws",
        "E.T. the Extra-Terrestrial",
        "The Empire Strikes Back",
        "Terminator 2: Judgment Day",
        "Schindler's List",
        "Saving Private Ryan",
        "Spirited Away",
        "Parasite",
        "Joker",
        "Die Hard",
        "The Shining",
        "Alien",
        "Finding Nemo",
        "Up",
        "Shrek",
        "The Wizard of Oz",
        "Oppenheimer",
        "Barbie",
        "La La Land",
        "The Departed",
        "Django Unchained",
        "Inglourious Basterds",
        "Kill Bill: Vol. 1",
        "The Sixth Sense",
        "Good Will Hunting",
        "The Truman Show",
        "Groundhog Day",
        "Home Alone",
        "Mad Max: Fury Road",
        "Dune",
        "Top Gun: Maverick",
        "Get Out",
        "Coco",
        "WALL-E",
    }
)


@dataclass(frozen=True)
class SimulationConfig:
    """Knobs of the simulator (see the module); the defaults build the shipped demo log.

    Attributes:
        n_users: Users simulated.
        mean_length: Mean films a user watches (log-normal).
        min_length: Fewest films a user watches.
        max_length: Most films a user watches.
        genre_concentration: Dirichlet concentration of genre tastes (smaller: fewer loved genres).
        taste_weight: Weight of genre taste in a film's utility.
        era_weight: Weight of the preferred era.
        director_bonus: Utility of a favourite director's film.
        mood_bonus: Utility of a film in the session's mood genre.
        same_director_bonus: Sequential bonus for the previous film's director.
        shared_genre_bonus: Sequential bonus per genre shared with the previous film (up to two).
        same_decade_bonus: Sequential bonus for the previous film's decade.
        mean_session_size: Mean films per session.
        seed: Random seed: the same config gives the same log.
    """

    n_users: int = 2000
    mean_length: float = 30.0
    min_length: int = 5
    max_length: int = 150
    genre_concentration: float = 0.35
    taste_weight: float = 2.2
    era_weight: float = 1.0
    director_bonus: float = 1.5
    mood_bonus: float = 1.0
    same_director_bonus: float = 1.2
    shared_genre_bonus: float = 0.35
    same_decade_bonus: float = 0.3
    mean_session_size: float = 3.0
    seed: int = 20240601


def simulate_interactions(films: pd.DataFrame, config: SimulationConfig | None = None) -> pd.DataFrame:
    """Return (user_id, item_id, timestamp, rating) events for the films table, deterministically.

    ``films`` needs item_id, year, genres (lists), director (lists) and language columns.
    """
    cfg = config or SimulationConfig()
    rng = np.random.default_rng(cfg.seed)
    n_items = len(films)
    genres = sorted({g for gs in films["genres"] for g in gs})
    g_index = {g: k for k, g in enumerate(genres)}
    genre_matrix = np.zeros((n_items, len(genres)))
    for i, gs in enumerate(films["genres"]):
        for g in gs:
            genre_matrix[i, g_index[g]] = 1.0
    genre_matrix /= np.maximum(genre_matrix.sum(1, keepdims=True), 1.0)
    years = films["year"].to_numpy(dtype=float)
    decades = (years // 10).astype(int)
    foreign = (films["language"].to_numpy() != "English").astype(float)
    directors = [set(d) for d in films["director"]]

    # Hidden popularity: heavy-tailed, tilted towards English-language and recent films.
    recency = (years - years.min()) / max(np.ptp(years), 1.0)
    famous = films["title"].isin(FAMOUS).to_numpy(dtype=float)
    log_pop = rng.normal(0.0, 0.8, n_items) + 0.6 * recency - 0.5 * foreign + 1.2 * famous
    log_pop -= log_pop.mean()

    same_director = np.array(
        [[bool(directors[i] & directors[j]) for j in range(n_items)] for i in range(n_items)]
    )
    shared_genres = (genre_matrix > 0).astype(float) @ (genre_matrix > 0).astype(float).T
    same_decade = decades[:, None] == decades[None, :]
    transition = (
        cfg.same_director_bonus * same_director
        + cfg.shared_genre_bonus * np.minimum(shared_genres, 2.0)
        + cfg.same_decade_bonus * same_decade
    )
    np.fill_diagonal(transition, 0.0)

    multi_film_directors = sorted({d for ds in directors for d in ds if sum(d in x for x in directors) >= 2})
    genre_share = genre_matrix.sum(0) / genre_matrix.sum()

    lengths = np.clip(
        np.round(rng.lognormal(np.log(cfg.mean_length) - 0.5 * 0.8**2, 0.8, cfg.n_users)),
        cfg.min_length,
        min(cfg.max_length, n_items - 1),
    ).astype(int)

    users, items, times, ratings = [], [], [], []
    for u in range(cfg.n_users):
        theta = rng.dirichlet(cfg.genre_concentration * len(genres) * genre_share + 1e-3)
        taste = cfg.taste_weight * (genre_matrix @ np.log(theta + 1e-3)) / 3.0
        centre, width = rng.normal(1995.0, 18.0), rng.uniform(10.0, 30.0)
        era = -cfg.era_weight * ((years - centre) / width) ** 2 / 2.0
        language = rng.normal(-0.6, 0.8) * foreign
        favourites = set(rng.choice(multi_film_directors, size=rng.integers(0, 3), replace=False).tolist())
        director = np.array(
            [cfg.director_bonus if directors[i] & favourites else 0.0 for i in range(n_items)]
        )
        beta = rng.uniform(0.5, 1.2)
        utility = taste + era + language + director + beta * log_pop
        spread = utility.std() + 1e-9

        t = rng.uniform(START, END - 200 * DAY)
        seen = np.zeros(n_items, dtype=bool)
        previous = -1
        remaining_in_session = 0
        mood = np.zeros(n_items)
        for step in range(lengths[u]):
            if remaining_in_session == 0:
                remaining_in_session = 1 + rng.poisson(cfg.mean_session_size - 1)
                mood_genre = rng.choice(len(genres), p=theta)
                mood = cfg.mood_bonus * (genre_matrix[:, mood_genre] > 0)
                t += rng.exponential(4.0 * DAY) if step else 0.0
                previous = -1
            else:
                t += rng.uniform(1.5 * HOUR, 3.5 * HOUR)
            logits = utility + mood + (transition[previous] if previous >= 0 else 0.0)
            logits = np.where(seen, -np.inf, logits)
            p = np.exp(logits - logits[~seen].max())
            p /= p.sum()
            i = int(rng.choice(n_items, p=p))
            seen[i] = True
            previous = i
            remaining_in_session -= 1
            z = (utility[i] - utility.mean()) / spread
            stars = int(np.clip(np.round(2.9 + 0.9 * z + rng.normal(0.0, 0.6)), 1, 5))
            users.append(u + 1)
            items.append(int(films["item_id"].iat[i]))
            times.append(int(min(t, END)))
            ratings.append(float(stars))
    return pd.DataFrame(
        {
            "user_id": np.asarray(users, dtype=np.int64),
            "item_id": np.asarray(items, dtype=np.int64),
            "timestamp": np.asarray(times, dtype=np.int64),
            "rating": np.asarray(ratings, dtype=np.float32),
        }
    )
