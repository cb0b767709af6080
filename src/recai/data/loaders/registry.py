"""Known public datasets and the dispatch from a name or a path to the right loader."""

from __future__ import annotations

from pathlib import Path

from recai.data.dataset import Dataset
from recai.data.errors import DataError
from recai.data.home import is_dataset_folder
from recai.data.loaders.amazon import load_sequence_file
from recai.data.loaders.download import DownloadSpec
from recai.data.loaders.movielens import detect_movielens, load_ml1m, load_ml100k, load_movielens_csv

_ML = "https://files.grouplens.org/datasets/movielens/"

# Checksums: GroupLens publishes an .md5 beside each stable archive; latest-small has been unchanged
# since its 2018 release and is pinned by sha256. A changed archive fails loudly instead of loading.
KNOWN: dict[str, DownloadSpec] = {
    "ml-100k": DownloadSpec(
        "ml-100k",
        _ML + "ml-100k.zip",
        "md5:0e33842e24a9c977be4e0107933c0723",
        "ml-100k",
        load_ml100k,
        "MovieLens 100K: 100,000 ratings by 943 users on 1,682 movies (1998)",
        "research use only; no redistribution; cite Harper & Konstan 2015",
    ),
    "ml-1m": DownloadSpec(
        "ml-1m",
        _ML + "ml-1m.zip",
        "md5:c4d9eecfca2ab87c1945afe126590906",
        "ml-1m",
        load_ml1m,
        "MovieLens 1M: 1,000,209 ratings by 6,040 users on 3,706 movies (2003)",
        "research use only; no redistribution; cite Harper & Konstan 2015",
    ),
    "ml-latest-small": DownloadSpec(
        "ml-latest-small",
        _ML + "ml-latest-small.zip",
        "sha256:696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
        "ml-latest-small",
        lambda p: load_movielens_csv(p, name="ml-latest-small"),
        "MovieLens latest-small: 100,836 ratings and 3,683 tags by 610 users on 9,742 movies (2018)",
        "research use; redistribution under the same license; cite Harper & Konstan 2015",
    ),
    "ml-20m": DownloadSpec(
        "ml-20m",
        _ML + "ml-20m.zip",
        "md5:cd245b17a1ae2cc31bb14903e1204af3",
        "ml-20m",
        lambda p: load_movielens_csv(p, name="ml-20m"),
        "MovieLens 20M: 20 million ratings by 138,493 users on 27,278 movies (2015)",
        "research use; cite Harper & Konstan 2015",
    ),
    "ml-25m": DownloadSpec(
        "ml-25m",
        _ML + "ml-25m.zip",
        "md5:6b51fb2759a8657d3bfcbfc42b592ada",
        "ml-25m",
        lambda p: load_movielens_csv(p, name="ml-25m"),
        "MovieLens 25M: 25 million ratings by 162,541 users on 62,423 movies (2019)",
        "research use; cite Harper & Konstan 2015",
    ),
}


def load_path(path: Path) -> Dataset:
    """Load a dataset folder or a raw publisher layout found at ``path``."""
    if is_dataset_folder(path):
        return Dataset.load(path)
    if path.is_dir():
        kind = detect_movielens(path)
        if kind == "ml-100k":
            return load_ml100k(path)
        if kind == "ml-1m":
            return load_ml1m(path)
        if kind == "movielens-csv":
            return load_movielens_csv(path)
        raise DataError(
            "no dataset recognised here: expected a recai dataset folder (schema.yaml, items.parquet, ...), "
            "or MovieLens files (u.data + u.item, ratings.dat + movies.dat, ratings.csv + movies.csv); "
            "use `recai data import` for other tables",
            path=path,
        )
    if path.is_file() and path.suffix == ".txt":
        return load_sequence_file(path)
    raise DataError("not a dataset folder or a known raw file", path=path)
