"""`recai models ...` (model weights) and `recai llm ...` (talk to a chat model).

Registered in :mod:`recai.cli`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from recai.cli_options import (
    CommandError,
    JsonOpt,
    console,
    err,
    user_input,
)

models_app = typer.Typer(
    help="Model weights: list, pull (assemble offline copies), verify.", no_args_is_help=True
)
llm_app = typer.Typer(help="Talk to a chat model.", no_args_is_help=True)


@models_app.command("list")
def models_list(
    as_json: JsonOpt = False,
) -> None:
    """Known models: role, size, whether present, and where the offline copy comes from."""
    from recai.llm.resolve import model_table

    if as_json:
        console.print_json(json.dumps(model_table()))
        return
    table = Table("name", "role", "size", "present", "source", "offline copy")
    for row in model_table():
        size = f"{row['size_mb']} MB" if row["size_mb"] else "-"
        table.add_row(
            escape(row["name"]),
            row["role"],
            size,
            "yes" if row["present"] else "no",
            row["source"],
            row["offline_copy"],
        )
    console.print(table)


@models_app.command("pull")
def models_pull(
    name: Annotated[str, typer.Argument(help="A known model name, see `recai models list`.")],
) -> None:
    """Make a model present: assemble its offline copy (verified) or download it when online."""
    from recai.llm.resolve import resolve_model

    path = resolve_model(name)
    console.print(f"ready: {path}")


@models_app.command("verify")
def models_verify(name: Annotated[str, typer.Argument(help="A known model name.")]) -> None:
    """Re-hash a present model against its pinned sha256."""
    from recai.llm.resolve import find_spec, locate, verify_file

    spec = find_spec(name)
    if spec is None:
        raise CommandError(f"unknown model '{name}'")
    path, source = locate(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not present ({source}); run `recai models pull {name}`")
    if spec.sha256 is None:
        console.print(f"{name}: no pinned checksum (a folder model); present at {path}")
        return
    verify_file(path, spec.sha256, progress=True, force=True)
    console.print(f"{name}: sha256 ok ({path})")


@llm_app.command("chat")
def llm_chat(
    prompt: Annotated[str, typer.Argument(help="What to say.")],
    model: Annotated[
        str | None,
        typer.Option(
            help="Model spec, e.g. local:qwen2.5-1.5b-instruct, "
            "openai:gpt-4o-mini, openai:http://host:8000/v1#name."
        ),
    ] = None,
    system: Annotated[str | None, typer.Option(help="A system message.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Reply length limit in tokens.")] = 256,
    temperature: Annotated[float, typer.Option(help="0 for greedy decoding.")] = 0.0,
    schema: Annotated[
        Path | None, typer.Option(help="A JSON schema file: reply with a valid object.")
    ] = None,
) -> None:
    """Send one message to a chat model and stream the reply."""
    import openai

    from recai.llm import load_chat_model, meter

    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    try:
        with user_input(RuntimeError):  # a model that fails to load or to run (a backend's own error)
            with console.status("loading model ..."):
                chat = load_chat_model(model)
            if schema is not None:
                result = chat.complete(
                    messages,
                    response_format=json.loads(schema.read_text()),
                    max_tokens=max_tokens,
                    temperature=temperature,
                )
                console.print_json(json.dumps(result.parsed))
            else:
                for chunk in chat.stream(messages, max_tokens=max_tokens, temperature=temperature):
                    console.print(chunk, end="", markup=False, highlight=False)
                console.print()
    except openai.APIError as exc:
        raise CommandError(f"the server refused: {exc}") from None
    total = meter.totals()
    err.print(
        f"[dim]{chat.name}: {total.prompt_tokens} prompt + {total.completion_tokens} completion tokens "
        f"in {total.latency_s:.2f} s[/]"
    )
