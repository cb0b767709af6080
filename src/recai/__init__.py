"""recai: large language models for recommender systems.

The package is organised by layer (see docs/architecture.md): ``recai.data`` holds the catalog and the
interaction log every pillar shares, ``recai.evaluate`` the metrics, ``recai.rec`` the classic
recommenders, and the LLM pillars build on them.
"""

__version__ = "0.1.0"
