"""`recai ...`: assembles each pillar's command app; the commands live in their own modules.

- ``recai data`` :mod:`recai.data.commands`, ``recai rec`` :mod:`recai.rec.commands`,
  ``recai models`` and ``recai llm`` :mod:`recai.llm.commands`, ``recai index`` and ``recai embed``
  :mod:`recai.embed.commands`, ``recai eval`` :mod:`recai.evaluate.commands`;
- ``recai gen``, ``recai explain``, ``recai agent`` and ``recai chat``, ``recai knowledge``, ``recai serve``:
  their packages' ``commands.py`` (``recai --help`` imports every command module, so the packages of the
  heavy pillars resolve their names lazily);
- what they share (consoles, the error handler, option types): :mod:`recai.cli_options`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from recai import __version__
from recai.agent.commands import agent_app, chat
from recai.cli_options import CommandGroup, console
from recai.data.commands import data_app
from recai.embed.commands import embed_app, index_app
from recai.evaluate.commands import eval_app
from recai.explain.commands import explain_app
from recai.gen.commands import gen_app
from recai.knowledge.commands import knowledge_app
from recai.llm.commands import llm_app, models_app
from recai.rec.commands import rec_app
from recai.serve.commands import serve

app = typer.Typer(
    cls=CommandGroup, help="recai: large language models for recommender systems.", no_args_is_help=True
)
app.command("chat")(chat)
app.command("serve")(serve)
app.add_typer(data_app, name="data")
app.add_typer(rec_app, name="rec")
app.add_typer(models_app, name="models")
app.add_typer(llm_app, name="llm")
app.add_typer(index_app, name="index")
app.add_typer(eval_app, name="eval")
app.add_typer(embed_app, name="embed")
app.add_typer(gen_app, name="gen")
app.add_typer(explain_app, name="explain")
app.add_typer(agent_app, name="agent")
app.add_typer(knowledge_app, name="knowledge")


def _version(value: bool) -> None:
    if value:
        console.print(f"recai {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """recai: large language models for recommender systems."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
