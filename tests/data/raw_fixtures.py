"""Tiny files written by the tests themselves: the publishers' exact raw formats, and a shop's own
tables with their import spec for ``recai data import``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from recai.data.loaders.movielens import ML100K_GENRES


def _flags(*names: str) -> str:
    return "|".join("1" if g in names else "0" for g in ML100K_GENRES)


def write_ml100k(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    toy = _flags("Animation", "Children's", "Comedy")
    items = [
        f"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|{toy}",
        f"2|GoldenEye (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?GoldenEye%20(1995)|{_flags('Action', 'Adventure', 'Thriller')}",
        f"3|Cité des enfants perdus, La (1995)|01-Jan-1995||http://x|{_flags('Adventure', 'Sci-Fi')}",
        f"4|unknown||||{_flags('unknown')}",
    ]
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(ML100K_GENRES)) + "\n")
    (folder / "u.data").write_text(
        "1\t1\t5\t881250949\n1\t2\t3\t881250950\n2\t1\t4\t881250949\n2\t3\t1\t881250951\n"
    )
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    return folder


def write_ml1m(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Jumanji (1995)::Adventure|Children's|Fantasy\n"
        "3::Misérables, Les (1995)::Drama|Musical\n".encode("latin-1")
    )
    (folder / "ratings.dat").write_text("1::1::5::978300760\n1::3::3::978302109\n2::2::4::978300275\n")
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    return folder


def write_ml_csv(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        '2,"American President, The (1995)",Comedy|Drama|Romance\n3,Some Film,(no genres listed)\n'
    )
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n2,3,5.0,964982224\n"
    )
    (folder / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\n2,1,pixar,1445714994\n3,1,Pixar,1445714995\n2,1,fun,1445714996\n"
    )
    return folder


def write_amazon_2014(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ratings = folder / "ratings_Beauty.csv"
    ratings.write_text(
        "A1,B001,5.0,1370304000\nA1,B002,4.0,1370390400\nA2,B001,3.0,1370476800\nA2,B003,2.0,1370563200\n"
    )
    meta = folder / "meta_Beauty.json.gz"
    lines = [
        {
            "asin": "B001",
            "title": "Rose Lip Balm",
            "price": 4.5,
            "brand": "Glow",
            "categories": [["Beauty", "Skin Care", "Lips"]],
            "description": "A <b>soft</b> balm.",
        },
        {"asin": "B002", "title": "Night Cream", "categories": [["Beauty", "Skin Care", "Face"]]},
        {"asin": "B003", "categories": [["Beauty"]]},  # no title: dropped by default
    ]
    with gzip.open(meta, "wt", encoding="utf-8") as fh:
        for obj in lines:
            fh.write(repr(obj) + "\n")  # the 2014 files are Python literals, not JSON
    return ratings, meta


def write_amazon_2018(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ratings = folder / "Beauty.csv"
    ratings.write_text("B001,A1,5.0,1370304000\nB002,A1,4.0,1370390400\nB001,A2,3.0,1370476800\n")
    meta = folder / "meta_Beauty.json"
    with meta.open("w", encoding="utf-8") as fh:
        fh.write(
            json.dumps(
                {
                    "asin": "B001",
                    "title": "Rose Lip Balm",
                    "price": "$4.50",
                    "category": ["Beauty", "Skin Care"],
                    "description": ["Soft.", "Red."],
                }
            )
            + "\n"
        )
        fh.write(json.dumps({"asin": "B002", "title": "Night Cream", "brand": "Glow"}) + "\n")
    return ratings, meta


SHOP_SPEC = """
name: shop
items:
  path: items.csv
  columns:
    - {name: sku, role: id}
    - {name: name, role: title}
    - {name: tags, role: multi_categorical, separator: ";"}
    - {name: price, role: numeric, unit: EUR}
    - {name: blurb, role: text}
    - {name: internal_code, role: ignore}
interactions:
  path: events.csv
  user: customer
  item: sku
  timestamp: when
  rating: stars
"""


def write_shop(folder: Path) -> Path:
    """A shop's items.csv and events.csv in ``folder``; returns the path of its import spec."""
    (folder / "items.csv").write_text(
        "sku,name,tags,price,blurb,internal_code\n"
        "A-1,Red Kettle,kitchen;red,29.9,A loud red kettle.,x1\n"
        "B-2,Blue Mug,kitchen;blue,7.5,A mug.,x2\n"
        "C-3,Garden Hose,garden,19,Twenty metres.,x3\n"
    )
    (folder / "events.csv").write_text(
        "customer,sku,when,stars\n"
        "u1,A-1,2024-01-01T10:00:00Z,5\n"
        "u1,B-2,2024-01-02T10:00:00Z,3\n"
        "u2,C-3,2024-01-01T09:00:00Z,4\n"
    )
    spec = folder / "schema.yaml"
    spec.write_text(SHOP_SPEC)
    return spec
