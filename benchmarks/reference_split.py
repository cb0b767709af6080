"""Shared by the benchmarks: does recai's split equal the reference split file exactly?"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recai.data import Split


def split_agreement(split: Split, reference: Path) -> dict[str, object]:
    """Per part, how many (user, item) pairs each side has and how many differ; ``identical`` overall."""
    ref = pd.read_csv(reference, sep="\t")
    out: dict[str, object] = {}
    for part in ("train", "valid", "test"):
        mine = set(map(tuple, getattr(split, part).frame[["user_id", "item_id"]].to_numpy().tolist()))
        theirs = set(map(tuple, ref.loc[ref["split"] == part, ["user_id", "item_id"]].to_numpy().tolist()))
        out[part] = {"recai": len(mine), "reference": len(theirs), "differing_pairs": len(mine ^ theirs)}
    out["identical"] = all(v["differing_pairs"] == 0 for v in out.values() if isinstance(v, dict))
    return out
