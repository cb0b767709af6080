"""`recai gen ...`: build SFT data, convert a GGUF base, fine-tune, merge, generate and evaluate.

Thin: parse arguments, call :mod:`recai.gen`, print with rich. Registered in :mod:`recai.cli`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from recai.cli_options import (
    CommandError,
    DataArg,
    DataOrArgOpt,
    DeviceOpt,
    ExamplesOutOpt,
    JsonOpt,
    KCoreOpt,
    MinRatingOpt,
    NounOpt,
    OverwriteOpt,
    PerTaskOpt,
    SourceDataOpt,
    TrainTasksOpt,
    config_defaults,
    console,
    csv,
    csv_tuple,
    dataset_spec,
    key_values,
    load_dataset,
    save_examples,
    source_dataset,
    training_options,
    user_input,
)
from recai.gen.rl_config import RLConfig
from recai.train.sft import SFTConfig

gen_app = typer.Typer(
    help="Generative recommenders (RecLM-gen / cgen): SFT data, fine-tuning, constrained generation, eval.",
    no_args_is_help=True,
)
_SFT = SFTConfig()  # the defaults of `gen train`
_RL = config_defaults(RLConfig)  # the defaults of `gen rl`

GenDataArg = Annotated[Path, typer.Argument(help="A folder written by `recai gen data`.")]
ModelArg = Annotated[str, typer.Argument(help="A trained or merged model folder (or any causal LM).")]
DtypeOpt = Annotated[str, typer.Option(help="bfloat16, float16 or float32.")]
# the GRPO options of `gen rl` whose declarations do not fit beside their defaults
GenerationsOpt = Annotated[int, typer.Option(help="Replies per prompt (the group GRPO compares).")]
CompletionLengthOpt = Annotated[int, typer.Option(help="Reply length limit in tokens.")]
ItemWeightOpt = Annotated[
    float, typer.Option(help="Weight of each item's own reward on its tokens (0: list reward only).")
]
RolloutTemperatureOpt = Annotated[float, typer.Option(help="Sampling temperature of the rollouts.")]
# the decoding options `gen generate` and `gen eval` share
SampleOpt = Annotated[bool, typer.Option(help="Sample instead of greedy decoding.")]
TemperatureOpt = Annotated[float, typer.Option(help="Sampling temperature.")]
RepetitionPenaltyOpt = Annotated[
    float, typer.Option(help="Penalty on tokens already in the prompt or reply (1.0: none).")
]


def _gen_data(folder: Path) -> Any:
    from recai.gen.examples import GenData

    return GenData.load(folder)


def _model_folder(spec: str) -> Path:
    from recai.train.models import resolve_base

    return resolve_base(spec)


@gen_app.command("data")
def gen_data(
    name_or_path: DataArg = None,
    data_option: DataOrArgOpt = None,
    out: ExamplesOutOpt = Path("gen-data"),
    per_task: PerTaskOpt = 500,
    test_per_task: Annotated[
        int, typer.Option(help="Test examples per list task (one per test user).")
    ] = 100,
    tasks: Annotated[
        str | None, typer.Option(help="Comma-separated task names (default: all eight).")
    ] = None,
    general_share: Annotated[float, typer.Option(help="Share of general instruction examples.")] = 0.05,
    k: Annotated[int, typer.Option("--k", help="Length of recommendation lists (largest requested).")] = 10,
    min_k: Annotated[int, typer.Option(help="Smallest list a control task asks for.")] = 3,
    history_len: Annotated[int, typer.Option(help="Most recent history items shown in a prompt.")] = 10,
    category: Annotated[str | None, typer.Option(help="Categorical column for control tasks.")] = None,
    noun: NounOpt = None,
    system: Annotated[str | None, typer.Option(help="A system message for every example.")] = None,
    teacher: Annotated[
        str | None, typer.Option(help="A recommender fitted on the training log whose top-k fills the lists.")
    ] = None,
    teacher_param: Annotated[
        list[str] | None, typer.Option(help="Teacher hyperparameter key=value (repeatable).")
    ] = None,
    min_rating: MinRatingOpt = None,
    k_core: KCoreOpt = 0,
    seed: Annotated[int, typer.Option(help="Seed for anchors, wordings and categories.")] = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Build the SFT tasks' training and test examples from a leave-one-out split of a dataset."""
    name_or_path = dataset_spec(data_option, name_or_path)
    from recai.gen.tasks import build_gen_data, fit_teacher

    dataset = load_dataset(name_or_path, min_rating=min_rating, k_core=k_core)
    split = dataset.split("leave_one_out")
    fitted = None
    if teacher:
        params = key_values(teacher_param, "--teacher-param")
        with console.status(f"fitting teacher {teacher} on the training log ..."), user_input(TypeError):
            fitted = fit_teacher(split, teacher, **params)
    with user_input(KeyError):  # an unknown --category column
        data = build_gen_data(
            dataset,
            csv(tasks),
            per_task=per_task,
            test_per_task=test_per_task,
            general_share=general_share,
            split=split,
            teacher=fitted,
            k=k,
            min_k=min_k,
            history_len=history_len,
            category=category,
            noun=noun,
            system=system,
            seed=seed,
        )
    data.meta.update(min_rating=min_rating, k_core=k_core)
    if data.meta["inapplicable"]:
        console.print(
            f"no examples of {', '.join(data.meta['inapplicable'])}: the catalog has no category column "
            "with a usable value, or no column besides the title to describe an item by"
        )
    title = f"{dataset.name}: examples per task"
    save_examples(data, out, source=name_or_path, title=title, overwrite=overwrite)


@gen_app.command("convert")
def gen_convert(
    model: Annotated[str, typer.Argument(help="A known GGUF model name or a .gguf file.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder to write (default: $RECAI_MODELS_DIR/NAME-hf).")
    ] = None,
    dtype: DtypeOpt = "bfloat16",
    overwrite: OverwriteOpt = False,
) -> None:
    """Dequantise a GGUF model once into a safetensors folder that training and vLLM load."""
    from recai.train.models import convert_gguf, converted_path

    target = out or converted_path(model)
    with console.status(f"converting {model} (dequantising takes a while) ..."):
        path = convert_gguf(model, target, dtype=dtype, overwrite=overwrite)
    console.print(f"written to {path}")


@gen_app.command("train")
@training_options(
    _SFT, "method", "epochs", "max_steps", "batch_size", "grad_accum", "learning_rate", "lora_r",
    "max_length", "seed", "save_steps", "precision", "device", "gradient_checkpointing", "group_by_length",
    "token_lr_scale",
)  # fmt: skip
def gen_train(
    data_dir: GenDataArg,
    out: Annotated[Path, typer.Option("--out", help="The trained model folder (adapter or full model).")],
    base: Annotated[
        str, typer.Option(help="A causal-LM folder or a known GGUF model (converted once).")
    ] = _SFT.base_model,
    *,
    training: dict[str, Any],
    lora_alpha: Annotated[int, typer.Option(help="LoRA alpha.")] = _SFT.lora_alpha,
    target_modules: Annotated[
        str | None, typer.Option(help="Comma-separated module names for LoRA (default: all linear).")
    ] = None,
    tasks: TrainTasksOpt = None,
    scope_loss: Annotated[
        bool,
        typer.Option(help="Inside item spans, softmax over the catalog's valid continuations only (cgen)."),
    ] = _SFT.scope_loss,
    data: Annotated[
        str | None, typer.Option(help="The catalog for --scope-loss (default: the one the data came from).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder.")] = False,
) -> None:
    """Fine-tune on the SFT tasks (loss on answers only); an interrupted run resumes from OUT.work/.

    Several GPUs: `accelerate launch -m recai.cli gen train ...`.
    """
    from recai.gen.training import train_sft

    examples = _gen_data(data_dir)
    config = SFTConfig(
        base_model=base,
        lora_alpha=lora_alpha,
        target_modules=csv_tuple(target_modules),
        tasks=csv_tuple(tasks),
        scope_loss=scope_loss,
        **training,
    )
    names = None
    if scope_loss:
        from recai.gen.items import ItemNames

        names = ItemNames(source_dataset(examples.meta, data, "the data folder").catalog).names
    result = train_sft(examples, out, config, overwrite=overwrite, catalog_names=names)
    trained = result.summary["training"]
    console.print(
        f"{result.steps} steps in {result.seconds:.1f} s ({trained['tokens_per_second']} tokens/s), "
        f"final loss {trained['train_loss']:.4f}; dropped {result.summary['data']['dropped']}"
    )
    console.print(f"written to {out}")


@gen_app.command("rl")
def gen_rl(
    data_dir: GenDataArg,
    sft: Annotated[Path, typer.Option("--sft", help="The SFT model folder from `recai gen train`.")],
    out: Annotated[Path, typer.Option("--out", help="The RL-tuned model folder (SFT and RL folded in).")],
    data: SourceDataOpt = None,
    tasks: Annotated[str | None, typer.Option(help="Comma-separated list tasks (default all five).")] = None,
    max_steps: Annotated[int, typer.Option(help="GRPO steps.")] = _RL.max_steps,
    batch_size: Annotated[int, typer.Option(help="Replies per device and step.")] = _RL.batch_size,
    num_generations: GenerationsOpt = _RL.num_generations,
    max_completion_length: CompletionLengthOpt = _RL.max_completion_length,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.")] = _RL.learning_rate,
    beta: Annotated[float, typer.Option(help="KL penalty to the SFT model.")] = _RL.beta,
    item_weight: ItemWeightOpt = _RL.item_weight,
    temperature: RolloutTemperatureOpt = _RL.temperature,
    reward: Annotated[
        list[str] | None,
        typer.Option(help="A reward weight name=value (hit, teacher, invalid, ...); repeatable."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = _RL.seed,
    save_steps: Annotated[int, typer.Option(help="Checkpoint every this many steps.")] = _RL.save_steps,
    precision: Annotated[str, typer.Option(help="auto, fp32, bf16 or fp16.")] = _RL.precision,
    device: Annotated[str | None, typer.Option(help="cpu to force the CPU.")] = _RL.device,
    overwrite: OverwriteOpt = False,
) -> None:
    """Reinforce control with GRPO: a reward per list (hit, teacher rank, penalties for invalid, repeated,
    seen items, wrong counts and broken categories), KL to the SFT model; resumes from OUT.work/."""
    from recai.gen.rl import train_grpo
    from recai.gen.rl_config import RewardConfig

    split = _gen_data(data_dir)
    dataset = source_dataset(split.meta, data, "the data folder")
    weights: dict[str, float] = {}
    for pair in reward or []:
        key, sep, value = pair.partition("=")
        try:
            weights[key.strip()] = float(value)
        except ValueError:
            raise CommandError(f"--reward takes name=number, got '{pair}'") from None
        if not sep:
            raise CommandError(f"--reward takes name=number, got '{pair}'")
    config = RLConfig(
        sft_model=str(sft),
        tasks=csv_tuple(tasks),
        max_steps=max_steps,
        batch_size=batch_size,
        num_generations=num_generations,
        max_completion_length=max_completion_length,
        learning_rate=lr,
        beta=beta,
        item_weight=item_weight,
        temperature=temperature,
        seed=seed,
        save_steps=save_steps,
        precision=precision,  # type: ignore[arg-type]
        device=device,
        reward=RewardConfig(**weights),
    )
    result = train_grpo(split, dataset.catalog, out, config, overwrite=overwrite)
    curve = result.summary["training"]["reward_curve"]
    shown = f"reward {curve[0]['reward']:.3f} -> {curve[-1]['reward']:.3f}" if curve else "no reward logged"
    console.print(f"{result.steps} GRPO steps in {result.seconds:.1f} s on {result.prompts} prompts; {shown}")
    console.print(f"written to {out}")


@gen_app.command("merge")
def gen_merge(
    model_dir: Annotated[Path, typer.Argument(help="A LoRA folder written by `recai gen train`.")],
    out: Annotated[Path, typer.Option("--out", help="The merged model folder.")],
    dtype: DtypeOpt = "bfloat16",
    overwrite: OverwriteOpt = False,
) -> None:
    """Fold the adapter into its base: a plain safetensors folder for vLLM or transformers."""
    from recai.gen.models import merge_adapter

    path = merge_adapter(model_dir, out, dtype=dtype, overwrite=overwrite)
    console.print(f"written to {path}")


def _recommender(model: str, dataset: Any, device: str) -> Any:
    from recai.gen.generate import GenRecommender

    folder = Path(model).expanduser()
    if not (folder / "config.json").exists() and not (folder / "adapter_config.json").exists():
        folder = _model_folder(model)
    with console.status(f"loading {folder} ..."):
        return GenRecommender.load(folder, dataset.catalog, device=device)


@gen_app.command("generate")
def gen_generate(
    model: ModelArg,
    data: Annotated[str, typer.Option(help="The dataset whose catalog constrains decoding.")] = "demo",
    history: Annotated[str, typer.Option(help="Titles or ids separated by ';', oldest first.")] = "",
    prompt: Annotated[str | None, typer.Option(help="A free request instead of the history prompt.")] = None,
    k: Annotated[int, typer.Option("--k", help="How many items to ask for.")] = 10,
    noun: Annotated[str | None, typer.Option(help="What an item is called.")] = None,
    constrained: Annotated[bool, typer.Option(help="Only catalog names inside item spans.")] = True,
    beams: Annotated[int, typer.Option(help="Beam search width (1: greedy or sampling).")] = 1,
    sample: SampleOpt = False,
    temperature: TemperatureOpt = 0.8,
    max_new_tokens: Annotated[int, typer.Option(help="Reply length limit in tokens.")] = 400,
    repetition_penalty: RepetitionPenaltyOpt = 1.0,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    device: DeviceOpt = "cpu",
    as_json: JsonOpt = False,
) -> None:
    """Ask the model for recommendations and print its reply with the items it names (as ids)."""
    from recai.gen.templates import plural, render

    if not repetition_penalty > 0:
        raise CommandError(f"--repetition-penalty must be positive (1.0: none), got {repetition_penalty}")
    dataset = load_dataset(data)
    gen = _recommender(model, dataset, device)
    catalog = dataset.catalog
    positions = []
    for part in (p.strip() for p in history.split(";")):
        if not part:
            continue
        grounding = catalog.ground(part)
        if grounding.item_id is None:
            raise CommandError(
                f"'{part}' is not in the catalog (did you mean: {', '.join(grounding.did_you_mean())})"
            )
        positions.append(int(catalog.index_of([grounding.item_id])[0]))
    if prompt is None:
        import numpy as np

        shown = "\n".join(f"- {gen.names.span(p)}" for p in positions) or "- (nothing yet)"
        nouns = plural(noun or str(dataset.meta.get("item_noun", "item")))
        prompt = render("sequential", np.random.default_rng(0), nouns=nouns, history=shown, k=k)
    outputs = gen.generate(
        [[{"role": "user", "content": prompt}]],
        constrained=constrained,
        exclude=[positions] if constrained else None,
        max_new_tokens=max_new_tokens,
        num_beams=beams,
        do_sample=sample,
        temperature=temperature,
        repetition_penalty=repetition_penalty,
        seed=seed,
    )
    out = outputs[0]
    grounded = out.parsed.grounded(catalog, seen=positions)
    if as_json:
        console.print_json(json.dumps({"text": out.text, "finished": out.finished, **grounded.as_record()}))
        return
    console.print(gen.fmt.strip(out.text))
    table = Table("#", "item id", "title", title="items named")
    for i, item in enumerate(grounded.items, start=1):
        table.add_row(str(i), str(item), catalog.title_of(item))
    console.print(table)
    counts = grounded.counts()
    console.print(
        f"named {counts['named']}, valid {counts['valid']}, invalid {counts['invalid']}, "
        f"repeated {counts['duplicate']}, already seen {counts['already_seen']}"
    )


@gen_app.command("eval")
def gen_eval(
    model: ModelArg,
    data_dir: GenDataArg,
    out: Annotated[Path, typer.Option("--out", help="The run folder (resumed when it exists).")],
    data: SourceDataOpt = None,
    tasks: Annotated[str | None, typer.Option(help="Comma-separated list tasks (default all).")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many examples per task.")] = None,
    constrained: Annotated[bool, typer.Option(help="Catalog-constrained decoding.")] = True,
    exclude_seen: Annotated[bool, typer.Option(help="Constrained: never name the user's own items.")] = True,
    beams: Annotated[int, typer.Option(help="Beam search width.")] = 1,
    sample: SampleOpt = False,
    temperature: TemperatureOpt = 0.8,
    batch_size: Annotated[int, typer.Option(help="Prompts per generate call.")] = 8,
    max_new_tokens: Annotated[int | None, typer.Option(help="Reply limit (default: enough for k).")] = None,
    repetition_penalty: RepetitionPenaltyOpt = 1.0,
    seed: Annotated[int, typer.Option(help="Sampling and bootstrap seed.")] = 0,
    device: DeviceOpt = "cpu",
    overwrite: Annotated[bool, typer.Option(help="Start the run folder again.")] = False,
) -> None:
    """Generate for the test examples and score ranking, validity and control (ratios over all samples)."""
    from recai.gen.evaluation import DecodeConfig, run_evaluation
    from recai.gen.examples import first_per_task

    split = _gen_data(data_dir)
    dataset = source_dataset(split.meta, data, "the data folder")
    wanted = csv(tasks)
    examples = [e for e in split.test if wanted is None or e.task in wanted]
    examples = first_per_task(examples, limit)
    if not examples:
        raise CommandError("no test examples to evaluate")
    config = DecodeConfig(  # checked before the model is loaded
        constrained=constrained,
        exclude_seen=exclude_seen,
        num_beams=beams,
        do_sample=sample,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        repetition_penalty=repetition_penalty,
        batch_size=batch_size,
        seed=seed,
    )
    gen = _recommender(model, dataset, device)
    metrics = run_evaluation(
        gen,
        examples,
        out,
        config,
        run_config={"model": str(model), "data": str(data_dir), "tasks": wanted, "limit": limit},
        resume=not overwrite,
        overwrite=overwrite,
    )
    table = Table(
        "task", "n", "NDCG@10", "Recall@10", "validity", "count ok", "compliance", "empty", title="gen"
    )
    blocks = {"all": {"n": metrics["n"], "metrics": metrics["metrics"]}, **metrics["extra"]["tasks"]}
    for task, block in blocks.items():
        m = block["metrics"]

        def cell(name: str, m: dict[str, Any] = m) -> str:
            return f"{m[name]['mean']:.3f}" if name in m else "-"

        table.add_row(
            task,
            str(block["n"]),
            cell("ndcg@10"),
            cell("recall@10"),
            cell("validity"),
            cell("count_correct"),
            cell("compliance"),
            cell("empty"),
        )
    console.print(table)
    console.print(f"run folder: {out}")
