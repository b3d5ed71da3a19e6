"""``data.exclude``: the rows it names leave every scored split before carving and tokenizing, the run says how
many each split lost (a line, run_info.json, the model card), and a column no file has or a split left empty is a
one-line error before any run folder."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mrpc_finetune.cli import main
from mrpc_finetune.data import loading
from mrpc_finetune.errors import UserError
from mrpc_finetune.recipe import DataConfig, load_recipe
from mrpc_finetune.run.card_sections import data_section
from mrpc_finetune.run.provenance import run_info

from .conftest import sentence, write_jsonl

SOURCES = ("MSRpar", "images", "headlines", "MSRvid")


def stsb_rows(n: int, seed: int) -> list[dict]:
    """STS-B-schema rows with a ``source`` column taking each of ``SOURCES`` in turn; a similar pair scores high,
    so a regression on them learns."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        first, similar = sentence(rng, rng.randint(4, 12)), i % 2 == 1
        second = first if similar else sentence(rng, rng.randint(4, 12))
        rows.append(
            {
                "sentence1": first,
                "sentence2": second,
                "label": 4.5 if similar else 0.5,
                "idx": i,
                "source": SOURCES[i % len(SOURCES)],
            }
        )
    return rows


@pytest.fixture(scope="module")
def tiny_stsb_dir(tmp_path_factory) -> Path:
    """train.jsonl (48 rows, 12 of them MSRpar) and validation.jsonl (16 rows, 4 MSRpar) in the GLUE STS-B schema."""
    folder = tmp_path_factory.mktemp("tiny_stsb")
    write_jsonl(folder / "train.jsonl", stsb_rows(48, seed=1))
    write_jsonl(folder / "validation.jsonl", stsb_rows(16, seed=2))
    return folder


def test_it_drops_exactly_the_matching_rows_and_says_how_many(tiny_stsb_dir, capsys):
    loaded = loading.load_data(DataConfig(task="stsb", dir=str(tiny_stsb_dir), exclude=["source=MSRpar"]))
    assert loaded.rows_excluded == {"train": 12, "validation": 4}
    for split, seed, n in (("train", 1, 48), ("validation", 2, 16)):
        expected = [row["idx"] for row in stsb_rows(n, seed) if row["source"] != "MSRpar"]
        assert list(loaded.splits[split]["idx"]) == expected  # every other row kept, in the file's order
    line = "data.exclude=[source=MSRpar]: dropped 12 of 48 train rows, 4 of 16 validation rows"
    assert line in capsys.readouterr().out.splitlines()


def test_several_values_and_columns_and_values_compared_as_text(tiny_stsb_dir):
    cfg = DataConfig(task="stsb", dir=str(tiny_stsb_dir), exclude=["source=MSRpar", "source=images", "idx=3"])
    loaded = loading.load_data(cfg)
    kept = loaded.splits["train"]
    assert set(kept["source"]) == {"headlines", "MSRvid"} and 3 not in kept["idx"]  # idx 3 is an integer
    assert loaded.rows_excluded == {"train": 25, "validation": 9}


def test_without_it_nothing_is_dropped_and_nothing_is_said(tiny_stsb_dir, capsys):
    loaded = loading.load_data(DataConfig(task="stsb", dir=str(tiny_stsb_dir)))
    assert loaded.rows_excluded == {} and loaded.splits["train"].num_rows == 48
    assert "data.exclude" not in capsys.readouterr().out


def test_one_file_is_filtered_before_its_validation_carve(tmp_path):
    rows = stsb_rows(40, seed=3)
    write_jsonl(tmp_path / "all.jsonl", rows)
    cfg = DataConfig(task="stsb", file=str(tmp_path / "all.jsonl"), exclude=["source=MSRpar"], validation_fraction=0.2)
    loaded = loading.load_data(cfg)
    assert loaded.rows_excluded == {"train": 10}
    carved = list(loaded.splits["train"]["idx"]) + list(loaded.splits["validation"]["idx"])
    assert sorted(carved) == [row["idx"] for row in rows if row["source"] != "MSRpar"]
    assert loaded.splits["validation"].num_rows == 6  # 20% of the 30 rows kept, not of the file's 40


def test_unknown_column_names_the_key_and_the_file(tiny_stsb_dir):
    with pytest.raises(UserError) as caught:
        loading.load_data(DataConfig(task="stsb", dir=str(tiny_stsb_dir), exclude=["sourse=MSRpar"]))
    message = str(caught.value)
    assert message.startswith("data.exclude=[sourse=MSRpar]: ") and "\n" not in message
    assert f"{tiny_stsb_dir / 'train.jsonl'} has no column 'sourse'" in message


def test_a_split_left_empty_is_an_error(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", stsb_rows(8, seed=1))
    write_jsonl(tmp_path / "validation.jsonl", [{**row, "source": "MSRpar"} for row in stsb_rows(4, seed=2)])
    with pytest.raises(UserError, match=r"drops every one of the 4 rows of .*validation.jsonl, leaving nothing to"):
        loading.load_data(DataConfig(task="stsb", dir=str(tmp_path), exclude=["source=MSRpar"]))


def test_an_item_without_a_column_is_refused_when_the_recipe_is_built():
    with pytest.raises(UserError, match=r"data.exclude: items are COLUMN=VALUE .*got 'MSRpar'"):
        load_recipe("stsb_minilm", ["data.exclude=[MSRpar]"])
    assert load_recipe("stsb_minilm", ["data.exclude=[source=MSRpar,source=MSRvid]"]).data.exclude == [
        "source=MSRpar",
        "source=MSRvid",
    ]


def test_a_bad_column_stops_training_with_one_line_and_no_run_folder(tiny_overrides, tiny_mrpc_dir, tmp_path, capsys):
    code = main(["train", "mrpc_minilm", *tiny_overrides, "data.exclude=[source=MSRpar]"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"data.exclude=[source=MSRpar]: {tiny_mrpc_dir / 'train.jsonl'} has no column 'source'" in err
    assert not (tmp_path / "run").exists()


def test_the_counts_reach_run_info_and_the_model_card(tiny_stsb_dir):
    recipe = load_recipe("stsb_minilm", [f"data.dir={tiny_stsb_dir}", "data.exclude=[source=MSRpar]"])
    info = run_info(recipe, num_processes=1, precision="fp32", argv=["x"], rows_excluded={"train": 12, "validation": 4})
    assert info["data"]["exclude"] == {"items": ["source=MSRpar"], "rows_dropped": {"train": 12, "validation": 4}}
    json.dumps(info)  # run_info.json holds it as it is
    card = data_section(recipe, info)
    assert (
        "Rows left out by `data.exclude=[source=MSRpar]` before training and scoring: 12 of train, 4 of validation"
        in card
    )
    assert (
        "exclude"
        not in run_info(
            load_recipe("stsb_minilm", [f"data.dir={tiny_stsb_dir}"]), num_processes=1, precision="fp32", argv=["x"]
        )["data"]
    )


@pytest.mark.slow  # the real STS-B files, read and checked: a few seconds
def test_real_stsb_loses_its_msrpar_pairs_as_the_recipe_says():
    from .test_glue_recipes import glue_task_folder

    recipe = load_recipe("stsb_minilm_msrfree", [f"data.dir={glue_task_folder('stsb')}"])
    loaded = loading.load_data(recipe.data)
    assert loaded.rows_excluded == {"train": 1000, "validation": 250}  # the counts in the recipe and docs/recipes.md
    assert {split: loaded.splits[split].num_rows for split in loaded.splits} == {"train": 4749, "validation": 1250}
    assert "MSRpar" not in set(loaded.splits["train"]["source"]) | set(loaded.splits["validation"]["source"])
