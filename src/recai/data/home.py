"""Where recai keeps downloads and saved datasets: ``$RECAI_HOME`` or ``~/.cache/recai``."""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """The root folder for recai's caches (created on demand by the writers, not here)."""
    env = os.environ.get("RECAI_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "recai"


def datasets_dir() -> Path:
    return data_home() / "datasets"


def downloads_dir() -> Path:
    return data_home() / "downloads"
