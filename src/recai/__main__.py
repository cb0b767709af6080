"""``python -m recai``: the same as the ``recai`` command."""

from recai.cli import main

main()
