"""`recai agent record | distill | eval-planner`: tool learning from the command line (thin: the work is
in :mod:`recai.agent.learning`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from recai.agent.learning.distill import DEFAULT_CONFIG
from recai.cli_options import (
    AgentLlmOpt,
    BatchRun,
    CommandError,
    DataArg,
    DataOpt,
    DataOrArgOpt,
    DemonstrationsOpt,
    EncoderOpt,
    PlannerOpt,
    SimulatedTurnsOpt,
    SimulatorOpt,
    agent_settings,
    batch_options,
    console,
    dataset_spec,
    err,
    training_options,
)

# `agent record` and `agent eval-planner` name the embedder's parameter encoder_spec (`encoder` is a function)
RetrievalEncoderOpt = Annotated[str | None, typer.Option("--encoder", help="Embedder spec for retrieval.")]
agent_app = typer.Typer(
    help="Tool learning: record a teacher's plans, distil them into a small planner, evaluate planners.",
    no_args_is_help=True,
)


def chat_model(spec: str) -> Any:
    """A ChatModel for a spec; a bare folder means a transformers model folder (a distilled planner)."""
    from recai.llm import load_chat_model

    if spec == "scripted:stand-in":
        from recai.serve.stand_in import stand_in_model

        return stand_in_model()
    if Path(spec).expanduser().is_dir():
        spec = f"hf:{Path(spec).expanduser()}?dtype=float32"
    return load_chat_model(spec)


def encoder(spec: str | None) -> Any:
    """The embedder the agent's retrieval tools use (None: the default one, loaded on first use)."""
    if spec is None:
        return None
    from recai.embed import load_encoder

    return load_encoder(spec)


def _agent(data: str, llm: Any, encoder_spec: str | None, *, split: bool = False) -> Any:
    """The agent over ``data``; with ``split`` its resources see only training and validation events,
    so simulated sessions cannot find the held-out target in the log."""
    from recai.agent import Agent
    from recai.data import load
    from recai.data.splits import leave_one_out

    dataset = load(data)
    held = None
    if split:
        held = leave_one_out(dataset.interactions, min_train=1)
        dataset = dataset.with_interactions(held.train_and_valid(), note="tool learning: train + valid only")
    agent = Agent.from_dataset(dataset, llm=llm, progress=False, encoder=encoder(encoder_spec))
    return agent, held


def _simulated_sessions(
    agent: Any, split: Any, simulator: str, *, turns: int, n: int, seed: int
) -> tuple[Any, list[Any]]:
    """The conversation evaluator with a simulated user, and the ``n`` held-out sessions it plays."""
    from recai.evaluate.conversation import ConversationEvaluator, UserSimulator, build_conversation_samples

    catalog = agent.dataset.catalog
    sim = UserSimulator(chat_model(simulator), catalog, item_noun=_noun(agent.dataset))
    evaluator = ConversationEvaluator(catalog, sim, max_turns=turns, k=agent.settings.k)
    return evaluator, build_conversation_samples(split, catalog, n=n, seed=seed)


def _noun(dataset: Any) -> str:
    from recai.evaluate.prepare import item_noun

    return item_noun(dataset)


@agent_app.command("record")
@batch_options(cache=False)
def record(
    data: DataArg = None,
    data_option: DataOrArgOpt = None,
    out: Annotated[Path, typer.Option(help="Run folder for the trajectories (resumable).")] = Path(
        "runs/planner-trajectories"
    ),
    teacher: Annotated[str, typer.Option(help="The teacher's model spec.")] = "local:qwen2.5-1.5b-instruct",
    per_shape: Annotated[int, typer.Option(help="Templated conversations per plan shape.")] = 20,
    sessions: Annotated[int, typer.Option(help="Simulated-user sessions (0: none).")] = 0,
    simulator: SimulatorOpt = "local:qwen2.5-1.5b-instruct",
    turns: SimulatedTurnsOpt = 3,
    seed: Annotated[int, typer.Option(help="Seed of the templates and the simulated users.")] = 0,
    encoder_spec: RetrievalEncoderOpt = None,
    attempts: Annotated[
        int, typer.Option(help="Tries per templated conversation: failed ones are retried sampling.")
    ] = 1,
    temperature: Annotated[float, typer.Option(help="The teacher's temperature on retries.")] = 0.7,
    *,
    run: BatchRun,
) -> None:
    """Record the teacher's planning trajectories on templated requests and simulated sessions."""
    data = dataset_spec(data_option, data)
    from recai.agent.learning import record_simulated, record_templates, template_requests
    from recai.evaluate.runs import RunFolder

    batch = run.batch

    config = {"data": data, "teacher": teacher, "simulator": simulator if sessions else None, "seed": seed}
    config.update(per_shape=per_shape, sessions=sessions, turns=turns, encoder=encoder_spec)
    config.update(attempts=attempts, retry_temperature=temperature)
    # more of these extends the run; each record keeps its own attempt number and temperature
    config["_volatile"] = ["per_shape", "sessions", "attempts", "retry_temperature"]
    with RunFolder.open(out, task="trajectories", config=config) as run:
        agent, split = _agent(data, chat_model(teacher), encoder_spec, split=sessions > 0)
        requests = template_requests(
            agent.dataset.catalog, per_shape=per_shape, item_noun=_noun(agent.dataset), seed=seed
        )
        n = record_templates(agent, requests, run, attempts=attempts, temperature=temperature, batch=batch)
        m = 0
        if sessions:
            evaluator, samples = _simulated_sessions(
                agent, split, simulator, turns=turns, n=sessions, seed=seed
            )
            m = record_simulated(agent, evaluator, samples, run, batch=batch)
    records = run.records()
    ok = sum(bool(r["success"]) for r in records)
    console.print(
        f"recorded {n} templated and {m} simulated conversations now; {len(records)} in {out}, "
        f"{ok} successful"
    )
    retried = [r for r in records if int(r.get("attempt") or 1) > 1]
    if retried:
        rescued = sum(bool(r["success"]) for r in retried)
        console.print(f"of them {len(retried)} sampled retries of failed conversations, {rescued} successful")


@agent_app.command("distill")
@training_options(
    DEFAULT_CONFIG, "method", "epochs", "max_steps", "batch_size", "lora_r", "max_length", "save_steps",
    "device", "precision", "grad_accum", "gradient_checkpointing",
)  # fmt: skip
def distill(
    runs: Annotated[list[Path], typer.Argument(help="Trajectory run folders from `recai agent record`.")],
    out: Annotated[Path, typer.Option(help="Folder for the data, the adapter and the planner.")] = Path(
        "runs/planner-distilled"
    ),
    base: Annotated[
        str, typer.Option(help="The student: a known model or a local folder.")
    ] = DEFAULT_CONFIG.base_model,
    *,
    training: dict[str, Any],
    learning_rate: Annotated[float, typer.Option(help="Peak learning rate.")] = DEFAULT_CONFIG.learning_rate,
    max_per_shape: Annotated[int | None, typer.Option(help="Cap per plan shape (default 2x median).")] = None,
    test_share: Annotated[float, typer.Option(help="Held-out share of conversations per shape.")] = 0.2,
    dedup: Annotated[
        float, typer.Option(help="Similarity (0-100) above which requests are duplicates.")
    ] = 95.0,
    repaired: Annotated[
        bool, typer.Option(help="Also learn from turns whose replan worked (the working plan).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of balancing, the split and training.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing result.")] = False,
) -> None:
    """Filter the trajectories, fine-tune the student on (planner prompt -> plan JSON), merge."""
    from recai.agent.learning import build_planner_data, distill_planner, student_config
    from recai.evaluate.runs import RunFolder

    records = [r for run in runs for r in RunFolder.load(run).records()]
    data = build_planner_data(
        records,
        repaired=repaired,
        dedup_threshold=dedup,
        max_per_shape=max_per_shape,
        test_share=test_share,
        seed=seed,
    )
    counts = Table("plan shape", "train", "held out")
    for shape, n in sorted(data.counts().items()):
        counts.add_row(shape, str(n["train"]), str(n["test"]))
    console.print(counts)
    console.print(f"filter: {json.dumps(data.meta['filter'])}")
    config = student_config(base_model=base, learning_rate=learning_rate, seed=seed, **training)
    planner = distill_planner(data, out, config, overwrite=overwrite)
    steps = json.loads((out / "distill.json").read_text())["training"]["steps"]
    console.print(f"trained {steps} steps; planner written to {planner} (use it as hf:{planner})")


@agent_app.command("eval-planner")
@batch_options(cache=False)
def eval_planner(
    distilled: Annotated[Path, typer.Argument(help="A folder from `recai agent distill` (held-out plans).")],
    model: Annotated[
        list[str],
        typer.Option(help="NAME=SPEC of a planner to evaluate (repeatable); a SPEC may be a model folder."),
    ],
    data: Annotated[str, typer.Option(help="Dataset name or folder the plans were recorded on.")] = "demo",
    out: Annotated[Path, typer.Option(help="Folder for per-model runs and the summary.")] = Path(
        "runs/planner-eval"
    ),
    limit: Annotated[int | None, typer.Option(help="Evaluate at most this many held-out plans.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Plan length limit in tokens.")] = 300,
    sessions: Annotated[int, typer.Option(help="Simulated sessions per planner (0: skip).")] = 0,
    simulator: SimulatorOpt = "local:qwen2.5-1.5b-instruct",
    llm: Annotated[
        str, typer.Option(help="The responder's model spec in simulated sessions.")
    ] = "local:qwen2.5-1.5b-instruct",
    turns: SimulatedTurnsOpt = 3,
    seed: Annotated[int, typer.Option(help="Seed of the simulated users.")] = 0,
    encoder_spec: RetrievalEncoderOpt = None,
    *,
    run: BatchRun,
) -> None:
    """Plan validity, exact and step match against held-out teacher plans, and simulated success."""
    from recai.agent.learning.evaluation import evaluate_planner, planner_system, summarize_plans
    from recai.data.atomic import write_text_atomic
    from recai.evaluate.conversation import summarize_conversations
    from recai.evaluate.runs import RunFolder
    from recai.gen.examples import GenData

    batch = run.batch
    specs = dict(m.split("=", 1) if "=" in m else (m, m) for m in model)
    held_out = GenData.load(distilled / "data").test[:limit]
    if not held_out:
        raise CommandError(f"{distilled / 'data'} has no held-out plans")
    responder = chat_model(llm) if sessions else None
    summary: dict[str, Any] = {"data": data, "held_out": len(held_out), "models": {}}
    agent, split = _agent(
        data, responder or chat_model("scripted:stand-in"), encoder_spec, split=sessions > 0
    )
    for name, spec in specs.items():
        planner_llm = chat_model(spec)
        config = {"model": spec, "data": str(distilled), "limit": limit, "max_tokens": max_tokens}
        with RunFolder.open(out / name / "plans", task="planner", config=config) as run:
            evaluate_planner(
                planner_llm,
                agent,
                held_out,
                max_tokens=max_tokens,
                on_record=run.append,
                skip_ids=run.done_ids(),
                batch=batch,
            )
        ids = {e.id for e in held_out}
        entry: dict[str, Any] = {
            "spec": spec,
            "plans": summarize_plans([r for r in run.records() if r["id"] in ids]),
        }
        if sessions:
            evaluator, samples = _simulated_sessions(
                agent, split, simulator, turns=turns, n=sessions, seed=seed
            )
            conf = {"model": spec, "simulator": simulator, "responder": llm, "turns": turns, "seed": seed}
            with (
                RunFolder.open(out / name / "sessions", task="conversation", config=conf) as conv,
                planner_system(agent, planner_llm) as system,
            ):
                evaluator.run(system, samples, on_record=conv.append, skip_ids=conv.done_ids(), batch=batch)
            sample_ids = {s.id for s in samples}
            records = [r for r in conv.records() if r["id"] in sample_ids]
            entry["simulated"] = summarize_conversations(records, turns, agent.settings.k)
        summary["models"][name] = entry
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    table = Table("planner", "schema valid", "executable", "exact", "tools", "step F1", "simulated success")
    for name, entry in summary["models"].items():
        p = entry["plans"]
        sim_rate = entry.get("simulated")
        rate = f"{sim_rate['successes']}/{sim_rate['sessions']}" if sim_rate else "-"
        table.add_row(
            name,
            f"{p['schema_valid']:.2f}",
            f"{p['executable']:.2f}",
            f"{p['exact']:.2f}",
            f"{p['tools']:.2f}",
            f"{p['step_f1']:.2f}",
            rate,
        )
    console.print(table)
    console.print(f"summary written to {out / 'summary.json'}")


def _item_card(catalog: Any, item_id: Any) -> Any:
    from rich.panel import Panel

    title = catalog.title_of(item_id)
    facts = catalog.render(
        item_id,
        max_chars=260,
        columns=[c for c in catalog.schema.rendered_columns() if c != catalog.title_column],
    )
    return Panel(escape(facts), title=escape(title), title_align="left", width=min(console.width, 100))


def _print_trace(trace: dict[str, Any]) -> None:
    table = Table("step", "tool", "arguments", "in", "out", "ms", title="how I got this")
    for step in trace["steps"]:
        args = json.dumps(step.get("args"), ensure_ascii=False)
        out = step.get("error") or step.get("output_size", "")
        table.add_row(
            str(step["step"]),
            str(step["tool"]),
            escape(args[:90]),
            str(step["input_size"]),
            escape(str(out)),
            f"{1000 * step.get('latency_s', 0):.0f}",
        )
    console.print(table)
    llm = ", ".join(
        f"{name}: {v['prompt_tokens']}+{v['completion_tokens']} tokens in {v['latency_s']:.1f} s"
        for name, v in trace.get("llm", {}).items()
    )
    console.print(
        f"[dim]intent {trace['plans'][-1]['intent']}, {trace['replans']} replan(s), "
        f"{trace['llm_calls']} LLM call(s) ({escape(llm)}), {trace['latency_s']:.1f} s in all[/]"
    )
    removed = trace.get("grounding", {}).get("removed")
    if removed:
        console.print(
            f"[dim]held back (named items the tools did not return): {escape(' | '.join(removed))}[/]"
        )


def chat(
    data: DataOpt = "demo",
    llm: AgentLlmOpt = None,
    user: Annotated[
        str | None, typer.Option(help="A user id: the profile is remembered across sessions.")
    ] = None,
    trace: Annotated[
        bool, typer.Option("--trace", help="Show the plan and every tool step after each reply.")
    ] = False,
    message: Annotated[
        list[str] | None, typer.Option(help="Send these messages and exit (repeatable).")
    ] = None,
    encoder: EncoderOpt = None,
    planner: PlannerOpt = None,
    demonstrations: DemonstrationsOpt = None,
) -> None:
    """Chat with the recommender agent: streaming replies, item cards, and (with --trace) how it got there."""
    from recai.agent import Agent

    err.print("[dim]loading the agent (the first use of a dataset builds and caches its indexes) ...[/]")
    agent = Agent.from_dataset(
        data,
        llm=chat_model(llm) if llm else None,
        progress=True,
        **agent_settings(encoder, planner, demonstrations),
    )
    agent.warm_up()
    session = agent.session(user)
    scripted = list(message or [])
    if not scripted:
        console.print(
            f"[bold]recai[/] on {escape(agent.dataset.name)}: ask for recommendations; Ctrl-D to quit."
        )
    while True:
        if scripted:
            text = scripted.pop(0)
            console.print(f"[bold cyan]you>[/] {escape(text)}")
        elif message:
            break
        else:
            try:
                text = console.input("[bold cyan]you>[/] ").strip()
            except (EOFError, KeyboardInterrupt):
                console.print()
                break
            if not text:
                continue
            if text.lower() in ("exit", "quit"):
                break
        started = [False]

        def show_items(ids: list[Any], started: list[bool] = started) -> None:
            # the cards as soon as the plan has run, then the reply as it is written
            for item_id in ids:
                console.print(_item_card(agent.dataset.catalog, item_id))
            console.print("[bold green]recai>[/] ", end="")
            started[0] = True

        stream = agent.chat_stream(session, text, on_items=show_items)
        for chunk in stream:
            if not started[0]:
                console.print("[bold green]recai>[/] ", end="")
                started[0] = True
            console.print(chunk, end="", markup=False, highlight=False)
        console.print()
        assert stream.result is not None
        if trace:
            _print_trace(stream.result.trace.to_dict())
