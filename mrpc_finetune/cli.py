"""The ``mrpc-finetune`` command (also ``python -m mrpc_finetune``).

mrpc-finetune list
mrpc-finetune show mrpc [KEY=VALUE ...]
mrpc-finetune inspect mrpc_minilm data.dir=DIR --n 8 --split train [--json]
mrpc-finetune train mrpc_minilm data.dir=DIR [train.max_steps=30 output_dir=/tmp/run]
mrpc-finetune eval /tmp/run [--split validation] [--file labelled.csv]
mrpc-finetune predict /tmp/run --file new_rows.csv [--out predictions.tsv]
mrpc-finetune predict /tmp/run "first sentence" "second sentence"
mrpc-finetune new-recipe reviews --from mrpc_minilm data.task=custom data.file=reviews.csv data.text_columns=[review]
mrpc-finetune push /tmp/run your-name/mrpc-minilm [--private]
mrpc-finetune repeat mrpc_minilm --seeds 5 [--jobs 2] data.dir=DIR
mrpc-finetune search mrpc_minilm --trials 20 [--seeds 2] [--space space.yaml] [--write-recipe NAME] data.dir=...
mrpc-finetune compare runs/mrpc_minilm runs/mrpc_minilm-seeds [--summary] [--plot compare.png | --no-plot]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path

from mrpc_finetune.errors import UserError, redact
from mrpc_finetune.recipe.loading import key_docs, load_recipe, recipe_names, recipes_dir
from mrpc_finetune.recipe.overrides import to_dict


def _cmd_list(args) -> None:
    names = recipe_names()
    width = max(map(len, names), default=0)
    for name in names:
        print(f"{name:<{width}} {load_recipe(name).description}")


def _cmd_show(args) -> None:
    from transformers import TrainingArguments

    from mrpc_finetune import models
    from mrpc_finetune.train.trainer_loop import training_arguments

    recipe = load_recipe(args.recipe, args.overrides)
    models.warn_if_remote_code(recipe.model)
    print(f"recipe {recipe.name}: {recipe.description}")
    docs = key_docs()
    for key, value in to_dict(recipe).items():
        if isinstance(value, dict):
            print(f"[{key}]")
            for sub, item in value.items():
                _show_key(f"{sub} = {item!r}", docs[f"{key}.{sub}"], indent="  ")
        elif key not in ("name", "description"):
            _show_key(f"{key} = {value!r}", docs[key], indent="")
    print(f"run directory: {recipe.run_dir}")
    args_out = training_arguments(recipe, recipe.run_dir / "checkpoints").to_dict()
    defaults = TrainingArguments(output_dir="x").to_dict()
    print("TrainingArguments (fields that differ from the transformers defaults):")
    for key in sorted(args_out):
        if args_out[key] != defaults.get(key) and key != "output_dir":
            print(f"  {key} = {args_out[key]!r}")
    print(f"  output_dir = {args_out['output_dir']!r}")


def _show_key(setting: str, doc: str, indent: str) -> None:
    """``lr = 0.0001`` and, below it, what the key means (its docstring under the field in recipe/schema.py), wrapped."""
    print(f"{indent}{setting}")
    for line in textwrap.wrap(doc, width=100, initial_indent=f"{indent}    # ", subsequent_indent=f"{indent}    # "):
        print(line)


def _cmd_inspect(args) -> None:
    from mrpc_finetune import hardware, models
    from mrpc_finetune.data import batching, loading

    recipe = load_recipe(args.recipe, args.overrides)
    tokenizer = models.load_tokenizer(recipe.model)
    task, raw = loading.load_task_and_splits(recipe.data)
    if args.split not in raw:
        raise UserError(f"--split {args.split}: not in the data (splits: {', '.join(raw)})")
    split = loading.tokenize_splits(raw, tokenizer, task, recipe.data)[args.split]
    lengths = batching.token_lengths(split)
    first = list(range(min(args.n, len(split))))
    multiple = hardware.pad_to_multiple_of(hardware.select_precision(recipe.train.precision))
    collator = batching.make_collator(tokenizer, multiple)
    batch = collator([split[i] for i in first]) if first else {}
    if args.split == "train":
        order = batching.make_train_sampler(lengths, recipe.train.batch_size, recipe.train.sampler, recipe.seed)
        sampler, size = recipe.train.sampler, recipe.train.batch_size
    else:  # evaluation and prediction batches are sorted by length (data.length_sorted_order)
        order, sampler, size = batching.length_sorted_order(lengths), "sorted_by_length", recipe.eval.batch_size
    report = {
        "recipe": recipe.name,
        "split": args.split,
        "rows": len(split),
        "first_lengths": [lengths[i] for i in first],
        "batch_shapes": {k: list(v.shape) for k, v in batch.items()},
        "sampler": sampler,
        "batch_size": size,
        "padding_efficiency": round(
            batching.padding_efficiency(lengths, batching.batches_of(order, size), multiple), 4
        ),
    }
    print(f"{recipe.name} / {args.split}: {report['rows']} rows")
    print(f"token lengths of the first {len(first)}: {report['first_lengths']}")
    print("collated batch of them: " + ", ".join(f"{k} {v}" for k, v in report["batch_shapes"].items()))
    print(
        f"padding efficiency (real / padded tokens) with {sampler} batches of {size}: "
        f"{report['padding_efficiency']:.4f}"
    )
    if args.json:
        print(json.dumps(report))


def _cmd_train(args) -> None:
    from mrpc_finetune.train import train_with_loop

    recipe = load_recipe(args.recipe, args.overrides)
    train_with_loop(recipe)


def _cmd_eval(args) -> None:
    from mrpc_finetune.inference.evaluation import evaluate_run

    metrics = evaluate_run(args.run_dir, split=args.split, file=args.file)
    print(json.dumps(metrics, indent=2))


def _cmd_predict(args) -> None:
    from mrpc_finetune.inference.predict import predict_file, predict_texts

    if args.file and args.texts:
        raise UserError("predict: give texts or --file, not both")
    if args.file:
        path, rows = predict_file(args.run_dir, args.file, args.out)
        print(f"wrote {rows} predictions to {path}")
    elif args.texts:
        result = predict_texts(args.run_dir, args.texts)
        print(f"{result['score']:.4f}" if "score" in result else f"{result['label']}\t{result['probability']:.4f}")
    else:
        raise UserError("predict: give the text(s) to classify, or --file PATH")


def _cmd_new_recipe(args) -> None:
    from mrpc_finetune.recipe.new_recipe import write_new_recipe

    path = write_new_recipe(args.name, args.base, args.overrides)
    print(f"wrote {path}; train it with: mrpc-finetune train {args.name}")


def _cmd_push(args) -> None:
    from mrpc_finetune.run.push import push_run

    url = push_run(args.run_dir, args.repo_id, private=args.private)
    print(f"pushed {args.run_dir}/model to {url}")


def _cmd_repeat(args) -> None:
    from mrpc_finetune.experiments.folders import parse_seeds
    from mrpc_finetune.experiments.repeat import repeat

    seeds = parse_seeds(args.seeds, args.seed_list, default=5)
    out = Path(args.output_dir) if args.output_dir else None
    repeat(args.recipe, args.overrides, seeds, out, jobs=args.jobs, threads=args.threads)


def _cmd_search(args) -> None:
    from mrpc_finetune.experiments.folders import parse_seeds
    from mrpc_finetune.experiments.search import SearchSettings, search

    seeds = parse_seeds(args.seeds, args.seed_list)
    settings = SearchSettings(
        recipe=args.recipe,
        overrides=args.overrides,
        trials=args.trials,
        seeds=seeds,
        out=Path(args.output_dir) if args.output_dir else None,
        storage=args.storage,
        space_file=args.space,
        study=args.study,
        heartbeat=args.heartbeat,
        sampler_seed=args.sampler_seed,
        prune_after=None if args.no_prune else args.prune_after,
        write_recipe=args.write_recipe,
    )
    search(settings)


def _cmd_compare(args) -> None:
    from mrpc_finetune.experiments.compare import compare

    plot = None if args.no_plot else Path(args.plot)
    print(compare([Path(p) for p in args.paths], plot=plot, summary_rows=args.summary))


def _add_seed_options(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument("--seeds", type=int, default=None, help=f"how many seeds: 1..N (default {default})")
    parser.add_argument("--seed-list", default=None, help="the seeds by name instead, e.g. 1,5,9")
    parser.add_argument("--output-dir", default=None, help="the experiment folder")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mrpc-finetune", description="Fine-tune encoders on GLUE-style tasks.")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("list", help=f"list the recipes in {recipes_dir()}").set_defaults(func=_cmd_list)

    def recipe_command(name: str, help_text: str, func):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("recipe", help="recipe name, recipe .py file, or a run's recipe.json / run directory")
        sub.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. train.lr=3e-5")
        sub.set_defaults(func=func)
        return sub

    recipe_command("show", "print the resolved recipe and the TrainingArguments it becomes", _cmd_show)
    inspect = recipe_command("inspect", "token lengths, batch shapes and padding efficiency of a split", _cmd_inspect)
    inspect.add_argument("--n", type=int, default=8, help="examples to show (default 8)")
    inspect.add_argument("--split", default="train", help="split to inspect (default train)")
    inspect.add_argument("--json", action="store_true", help="also print the report as one JSON line")
    recipe_command("train", "train a recipe (loop=trainer|torch|accelerate)", _cmd_train)

    evaluate = commands.add_parser("eval", help="evaluate a finished run's model")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--split", default=None, help="split of the run's data (default: the task's validation)")
    evaluate.add_argument("--file", default=None, help="a labelled file to evaluate instead of the run's data")
    evaluate.set_defaults(func=_cmd_eval)

    predict = commands.add_parser("predict", help="predict labels with a finished run's model")
    predict.add_argument("run_dir")
    predict.add_argument("texts", nargs="*", help="one text, or two for a pair task (quote each)")
    predict.add_argument("--file", default=None, help="a file of rows to predict (labels, if any, are ignored)")
    predict.add_argument("--out", default=None, help="output TSV (default RUN_DIR/predictions_<file>.tsv)")
    predict.set_defaults(func=_cmd_predict)

    new_recipe = commands.add_parser("new-recipe", help="write recipes/NAME.py from a recipe plus overrides")
    new_recipe.add_argument("name", help="the new recipe's name (its file is recipes/NAME.py)")
    new_recipe.add_argument("--from", dest="base", default="mrpc_minilm", help="recipe to start from (mrpc_minilm)")
    new_recipe.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="what to change, e.g. data.file=x.csv")
    new_recipe.set_defaults(func=_cmd_new_recipe)

    push = commands.add_parser("push", help="upload a finished run's model and model card to the Hugging Face Hub")
    push.add_argument("run_dir")
    push.add_argument("repo_id", help="the Hub repo to create or update, e.g. your-name/mrpc-minilm")
    push.add_argument(
        "--private", action="store_true", help="create the repo private (an existing one keeps its setting)"
    )
    push.set_defaults(func=_cmd_push)

    repeat = recipe_command("repeat", "train a recipe under several seeds and sum up the spread", _cmd_repeat)
    _add_seed_options(repeat, default=5)
    repeat.add_argument("--jobs", type=int, default=1, help="runs at once, the cores split between them (default 1)")
    repeat.add_argument("--threads", type=int, default=None, help="threads per run (default: cores / jobs)")

    search = recipe_command("search", "hyper-parameter search with Optuna (TPE, pruning, resumable)", _cmd_search)
    search.add_argument("--trials", type=int, required=True, help="trials to finish (complete or pruned)")
    _add_seed_options(search, default=1)
    search.add_argument("--space", default=None, help="YAML search space (default: SEARCH in the recipe file)")
    search.add_argument("--storage", default=None, help="Optuna storage URL (default sqlite in the folder)")
    search.add_argument("--study", default=None, help="study name in the storage (default: the recipe's name)")
    search.add_argument("--heartbeat", type=int, default=10, help="seconds between a trial's heartbeats (10)")
    search.add_argument("--sampler-seed", type=int, default=0, help="seed of the TPE sampler (default 0)")
    search.add_argument("--prune-after", type=int, default=3, help="trials finished before pruning starts (3)")
    search.add_argument("--no-prune", action="store_true", help="run every trial to the end")
    search.add_argument("--write-recipe", default=None, metavar="NAME", help="write the best point as recipes/NAME.py")

    compare = commands.add_parser("compare", help="runs and experiment folders side by side: table and curves")
    compare.add_argument("paths", nargs="+", help="run directories or experiment folders (repeat / search)")
    compare.add_argument("--summary", action="store_true", help="an experiment folder as one row, not its runs")
    compare.add_argument("--plot", default="compare.png", help="PNG of the evaluation curves (compare.png)")
    compare.add_argument("--no-plot", action="store_true", help="the table only: write no PNG")
    compare.set_defaults(func=_cmd_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # forked map workers would warn otherwise
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides may come after options (inspect mrpc --n 8 data.dir=...); anything else unknown is an error.
    unknown = [item for item in extra if "=" not in item or item.startswith("-")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if extra:
        if not hasattr(args, "overrides"):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    try:
        args.func(args)
    except UserError as err:
        print(f"error: {redact(str(err))}", file=sys.stderr)  # no URL's password on the screen or in a log
        return 2
    except KeyboardInterrupt:
        resume = "; rerun with resume=true to continue from the last checkpoint" if args.command == "train" else ""
        print(f"interrupted{resume}", file=sys.stderr)
        return 130
    return 0
