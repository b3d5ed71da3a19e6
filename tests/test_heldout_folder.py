"""tools/heldout_folder.py: the layout of the quality measurements, where the official validation split chooses
nothing (docs/benchmarks.md, "Held out: a score that chose nothing")."""

from __future__ import annotations

import json
import sys

from .conftest import REPO, mrpc_rows, write_jsonl

sys.path.insert(0, str(REPO / "tools"))
import heldout_folder  # noqa: E402


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_carves_train_like_search_and_keeps_validation_as_test(tmp_path):
    source = tmp_path / "mrpc"
    source.mkdir()
    write_jsonl(source / "train.jsonl", mrpc_rows(60, seed=1))
    write_jsonl(source / "validation.jsonl", mrpc_rows(12, seed=2))
    out = tmp_path / "heldout"
    assert heldout_folder.main([str(source), str(out)]) == 0
    train, carve, test = (rows(out / f"{split}.jsonl") for split in ("train", "validation", "test"))
    assert len(carve) == 6 and len(train) == 54  # 10% of 60, search's default
    assert (out / "test.jsonl").read_bytes() == (source / "validation.jsonl").read_bytes()
    assert sorted(r["idx"] for r in train + carve) == sorted(r["idx"] for r in rows(source / "train.jsonl"))
    share = sum(r["label"] for r in rows(source / "train.jsonl")) / 60
    assert abs(sum(r["label"] for r in carve) / 6 - share) <= 1 / 6  # stratified: the classes keep their shares


def test_refuses_a_folder_in_use_and_a_source_without_validation(tmp_path, capsys):
    source = tmp_path / "mrpc"
    source.mkdir()
    write_jsonl(source / "train.jsonl", mrpc_rows(20, seed=1))
    assert heldout_folder.main([str(source), str(tmp_path / "out")]) == 2
    assert "no validation file to keep aside as test.jsonl" in capsys.readouterr().err
    write_jsonl(source / "validation.jsonl", mrpc_rows(5, seed=2))
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("")
    assert heldout_folder.main([str(source), str(tmp_path / "used")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
