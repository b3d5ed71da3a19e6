"""The ``mrpc-finetune`` command (also ``python -m mrpc_finetune``).

mrpc-finetune list
mrpc-finetune show mrpc [KEY=VALUE ...]
mrpc-finetune inspect mrpc_minilm data.dir=DIR --n 8 --split train [--json]
mrpc-finetune train mrpc_minilm data.dir=DIR [train.max_steps=30 output_dir=/tmp/run]
mrpc-finetune eval /tmp/run [--split validation] [--file labelled.csv] [--both-orders | --no-both-orders]
mrpc-finetune predict /tmp/run --file new_rows.csv [--out predictions.tsv]
mrpc-finetune predict /tmp/run "first sentence" "second sentence"
mrpc-finetune new-recipe reviews --from mrpc_minilm data.task=custom data.file=reviews.csv data.text_columns=[review]
mrpc-finetune push /tmp/run your-name/mrpc-minilm [--private]
mrpc-finetune repeat mrpc_minilm --seeds 5 [--jobs 2] data.dir=DIR
mrpc-finetune search mrpc_minilm --trials 20 [--space space.yaml] [--recipe-first] [--write-recipe NAME] data.dir=...
mrpc-finetune ensemble runs/mrpc_minilm-seeds/seed-1 runs/mrpc_minilm-seeds/seed-2 --output-dir runs/mrpc-ens
mrpc-finetune compare runs/mrpc_minilm runs/mrpc_minilm-seeds [--summary] [--plot compare.png | --no-plot]

The arguments are described in ``cli_parser.py``; each command here calls one function of the layer that does it.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

from mrpc_finetune.cli_parser import build_parser
from mrpc_finetune.errors import UserError, redact
from mrpc_finetune.recipe.loading import key_docs, load_recipe, recipe_names
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
    from mrpc_finetune.data import batching, loading, tokenization

    recipe = load_recipe(args.recipe, args.overrides)
    tokenizer = models.load_tokenizer(recipe.model)
    task, raw = loading.load_task_and_splits(recipe.data)
    if args.split not in raw:
        raise UserError(f"--split {args.split}: not in the data (splits: {', '.join(raw)})")
    split = tokenization.tokenize_splits(raw, tokenizer, task, recipe.data)[args.split]
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

    metrics = evaluate_run(args.run_dir, split=args.split, file=args.file, both_orders=args.both_orders)
    print(json.dumps(metrics, indent=2))


def _cmd_predict(args) -> None:
    from mrpc_finetune.inference.predict import predict_file, predict_texts

    if args.file and args.texts:
        raise UserError("predict: give texts or --file, not both")
    if args.file:
        path, rows = predict_file(args.run_dir, args.file, args.out, both_orders=args.both_orders)
        print(f"wrote {rows} predictions to {path}")
    elif args.texts:
        result = predict_texts(args.run_dir, args.texts, both_orders=args.both_orders)
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
    repeat(args.recipe, args.overrides, seeds, out, jobs=args.jobs, threads=args.threads, ensemble=args.ensemble)


def _cmd_ensemble(args) -> None:
    from mrpc_finetune.experiments.ensemble import build_ensemble

    build_ensemble([Path(p) for p in args.runs], Path(args.output_dir), both_orders=args.both_orders)


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
        recipe_first=args.recipe_first,
    )
    search(settings)


def _cmd_compare(args) -> None:
    from mrpc_finetune.experiments.compare import compare

    plot = None if args.no_plot else Path(args.plot)
    print(compare([Path(p) for p in args.paths], plot=plot, summary_rows=args.summary))


COMMANDS = {
    "list": _cmd_list,
    "show": _cmd_show,
    "inspect": _cmd_inspect,
    "train": _cmd_train,
    "eval": _cmd_eval,
    "predict": _cmd_predict,
    "new-recipe": _cmd_new_recipe,
    "push": _cmd_push,
    "repeat": _cmd_repeat,
    "ensemble": _cmd_ensemble,
    "search": _cmd_search,
    "compare": _cmd_compare,
}
"""What each subcommand of ``cli_parser.build_parser`` runs."""


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
        COMMANDS[args.command](args)
    except UserError as err:
        print(f"error: {redact(str(err))}", file=sys.stderr)  # no URL's password on the screen or in a log
        return 2
    except KeyboardInterrupt:
        resume = "; rerun with resume=true to continue from the last checkpoint" if args.command == "train" else ""
        print(f"interrupted{resume}", file=sys.stderr)
        return 130
    return 0
