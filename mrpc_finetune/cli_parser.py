"""The arguments of the ``mrpc-finetune`` command: one subparser per command, its options and their help.

``cli.py`` runs the command a parsed line names (``cli.COMMANDS``); this module only describes the command line.
"""

from __future__ import annotations

import argparse

from mrpc_finetune.recipe.loading import recipes_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mrpc-finetune", description="Fine-tune encoders on GLUE-style tasks.")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("list", help=f"list the recipes in {recipes_dir()}")

    def recipe_command(name: str, help_text: str):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("recipe", help="recipe name, recipe .py file, or a run's recipe.json / run directory")
        sub.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. train.lr=3e-5")
        return sub

    recipe_command("show", "print the resolved recipe and the TrainingArguments it becomes")
    inspect = recipe_command("inspect", "token lengths, batch shapes and padding efficiency of a split")
    inspect.add_argument("--n", type=int, default=8, help="examples to show (default 8)")
    inspect.add_argument("--split", default="train", help="split to inspect (default train)")
    inspect.add_argument("--json", action="store_true", help="also print the report as one JSON line")
    recipe_command("train", "train a recipe (loop=trainer|torch|accelerate)")

    evaluate = commands.add_parser("eval", help="evaluate a finished run's model, or an ensemble folder")
    evaluate.add_argument("run_dir", help="a run folder or an ensemble folder")
    evaluate.add_argument("--split", default=None, help="split of the run's data (default: the task's validation)")
    evaluate.add_argument("--file", default=None, help="a labelled file to evaluate instead of the run's data")
    _add_both_orders_option(evaluate)

    predict = commands.add_parser("predict", help="predict labels with a finished run's model, or an ensemble")
    predict.add_argument("run_dir", help="a run folder or an ensemble folder")
    predict.add_argument("texts", nargs="*", help="one text, or two for a pair task (quote each)")
    predict.add_argument("--file", default=None, help="a file of rows to predict (labels, if any, are ignored)")
    predict.add_argument("--out", default=None, help="output TSV (default RUN_DIR/predictions_<file>.tsv)")
    _add_both_orders_option(predict)

    new_recipe = commands.add_parser("new-recipe", help="write recipes/NAME.py from a recipe plus overrides")
    new_recipe.add_argument("name", help="the new recipe's name (its file is recipes/NAME.py)")
    new_recipe.add_argument("--from", dest="base", default="mrpc_minilm", help="recipe to start from (mrpc_minilm)")
    new_recipe.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="what to change, e.g. data.file=x.csv")

    push = commands.add_parser("push", help="upload a finished run's model and model card to the Hugging Face Hub")
    push.add_argument("run_dir")
    push.add_argument("repo_id", help="the Hub repo to create or update, e.g. your-name/mrpc-minilm")
    push.add_argument(
        "--private", action="store_true", help="create the repo private (an existing one keeps its setting)"
    )

    repeat = recipe_command("repeat", "train a recipe under several seeds and sum up the spread")
    _add_seed_options(repeat, default=5)
    repeat.add_argument("--jobs", type=int, default=1, help="runs at once, the cores split between them (default 1)")
    repeat.add_argument("--threads", type=int, default=None, help="threads per run (default: cores / jobs)")
    repeat.add_argument("--ensemble", action="store_true", help="also score the finished seeds as one ensemble")

    ensemble = commands.add_parser("ensemble", help="score finished runs of one task as one model (mean probability)")
    ensemble.add_argument("runs", nargs="+", help="the members: finished run folders of one task, data and tokenizer")
    ensemble.add_argument("--output-dir", required=True, help="the ensemble folder to write")
    _add_both_orders_option(ensemble, recorded="what every member recorded")

    search = recipe_command("search", "hyper-parameter search with Optuna (TPE, pruning, resumable)")
    search.add_argument("--trials", type=int, required=True, help="trials to finish (complete or pruned)")
    _add_seed_options(search, default=1)
    search.add_argument("--space", default=None, help="YAML search space (default: SEARCH in the recipe file)")
    search.add_argument("--storage", default=None, help="Optuna storage URL (default sqlite in the folder)")
    search.add_argument("--study", default=None, help="study name in the storage (default: the recipe's name)")
    search.add_argument("--heartbeat", type=int, default=10, help="seconds between a trial's heartbeats (10)")
    search.add_argument("--sampler-seed", type=int, default=0, help="seed of the TPE sampler (default 0)")
    search.add_argument("--prune-after", type=int, default=3, help="trials finished before pruning starts (3)")
    search.add_argument("--no-prune", action="store_true", help="run every trial to the end")
    search.add_argument(
        "--recipe-first", action="store_true", help="also try the recipe's own values of the searched keys, as a trial"
    )
    search.add_argument("--write-recipe", default=None, metavar="NAME", help="write the best point as recipes/NAME.py")

    compare = commands.add_parser("compare", help="runs and experiment folders side by side: table and curves")
    compare.add_argument(
        "paths", nargs="+", help="run directories, experiment folders (repeat / search) or ensemble folders"
    )
    compare.add_argument("--summary", action="store_true", help="an experiment folder as one row, not its runs")
    compare.add_argument("--plot", default="compare.png", help="PNG of the evaluation curves (compare.png)")
    compare.add_argument("--no-plot", action="store_true", help="the table only: write no PNG")
    return parser


def _add_seed_options(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument("--seeds", type=int, default=None, help=f"how many seeds: 1..N (default {default})")
    parser.add_argument("--seed-list", default=None, help="the seeds by name instead, e.g. 1,5,9")
    parser.add_argument("--output-dir", default=None, help="the experiment folder")


def _add_both_orders_option(parser: argparse.ArgumentParser, recorded: str = "eval.both_orders as recorded") -> None:
    parser.add_argument(
        "--both-orders",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"score each pair as (a, b) and (b, a), averaged; --no-both-orders: one order (default: {recorded})",
    )
