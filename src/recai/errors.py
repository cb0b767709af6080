"""The one base class of every error recai raises on purpose, so callers (the CLI above all) can tell
"the input, a file or a model is wrong" from a bug with a single ``except RecaiError``."""

from __future__ import annotations


class RecaiError(Exception):
    """Base of every recai exception class: a problem the user can act on, with a message that says
    what and where.

    Each subclass keeps its builtin base too (``DataError`` is a ``ValueError``, ``ModelNotFoundError``
    a ``FileNotFoundError``), so code that catches the builtin keeps working.
    """
