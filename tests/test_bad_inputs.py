"""Bad input stops before training with one line on stderr (exit code 2) that names the file, row, column or key,
and leaves no run directory behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mrpc_finetune.cli import main

from .conftest import mrpc_rows, write_jsonl

# --- data ---


def _pairs(n: int = 6) -> list[dict]:
    return mrpc_rows(n, seed=0)


def _tsv(rows: list[str]) -> str:
    return "sentence1\tsentence2\tlabel\tidx\n" + "".join(line + "\n" for line in rows)


def _custom(path: Path, columns: str = "[text]", label: str = "label") -> list[str]:
    return ["data.task=custom", f"data.file={path}", f"data.text_columns={columns}", f"data.label_column={label}"]


def _write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _mrpc_folder(folder: Path, train: str | bytes, name: str = "train.tsv") -> Path:
    _write(folder / name, train)
    write_jsonl(folder / "validation.jsonl", _pairs(4))
    return folder


def _csv(path: Path, lines: list[str]) -> Path:
    return _write(path, "".join(line + "\n" for line in lines))


def _mrpc_tsv(d: Path, rows: list[str] | bytes) -> list[str]:
    """data.dir=d with train.tsv holding ``rows`` (tab-separated lines, or raw bytes) and a good validation file."""
    content = rows if isinstance(rows, bytes) else _tsv(rows)
    return [f"data.dir={_mrpc_folder(d, content)}"]


def _null_text(d: Path) -> list[str]:
    write_jsonl(d / "train.jsonl", [*_pairs(2), {"sentence1": None, "sentence2": "b", "label": 0}])
    return [f"data.dir={d}"]


def _label_only_in_validation(d: Path) -> list[str]:
    _csv(d / "train.csv", ["text,label", "good,pos", "bad,neg"])
    _csv(d / "validation.csv", ["text,label", "fine,pos", "so so,meh"])
    return ["data.task=custom", f"data.dir={d}", "data.text_columns=[text]"]


# Each case: (name, function of a fresh folder -> overrides, the start of the expected message).
DATA_CASES = [
    ("missing folder", lambda d: [f"data.dir={d / 'nope'}"], "error: data.dir={d}/nope: no such folder"),
    ("missing file", lambda d: _custom(d / "nope.csv"), "error: {d}/nope.csv: no such file"),
    (
        "unsupported extension",
        lambda d: _custom(_write(d / "rows.txt", "text,label\na,b\n")),
        "error: {d}/rows.txt: unsupported extension '.txt'; use one of .jsonl, .json, .csv, .tsv, .parquet",
    ),
    (
        "no train file in the folder",
        lambda d: [f"data.dir={_write(d / 'train.txt', 'x').parent}"],
        "error: data.dir={d}: no train.{jsonl,json,csv,tsv,parquet} file (found: train.txt)",
    ),
    ("empty file", lambda d: [f"data.dir={_mrpc_folder(d, '')}"], "error: {d}/train.tsv: the file is empty"),
    (
        "header only",
        lambda d: _mrpc_tsv(d, []),
        "error: {d}/train.tsv: has no data rows (first line: sentence1\tsentence2\tlabel\tidx)",
    ),
    (
        "missing column",
        lambda d: _custom(_csv(d / "rows.csv", ["review,label", "good,1", "bad,0"])),
        "error: {d}/rows.csv: missing column 'text' (columns found: review, label)",
    ),
    (
        "missing label column",
        lambda d: _custom(_csv(d / "rows.csv", ["text,stars", "good,1", "bad,0"])),
        "error: {d}/rows.csv: missing column 'label' (columns found: text, stars); name it with data.label_column=",
    ),
    ("null text", _null_text, "error: {d}/train.jsonl: row 3, column 'sentence1' is empty"),
    (
        "blank text",
        lambda d: _custom(_csv(d / "rows.csv", ["text,label", "good,pos", '"   ",neg'])),
        "error: {d}/rows.csv: row 2, column 'text' is empty",
    ),
    (
        "label outside the task's",
        lambda d: _mrpc_tsv(d, ["a\tb\t1\t0", "c\td\t2\t1"]),
        "error: {d}/train.tsv: row 2, column 'label' has 2; expected an integer id 0..1 or a label name "
        "(not_equivalent, equivalent)",
    ),
    (
        "label only in validation",
        _label_only_in_validation,
        "error: {d}/validation.csv: row 2, column 'label' has 'meh'; a label not in the training data (labels: neg, pos)",
    ),
    (
        "null label",
        lambda d: _custom(_csv(d / "rows.csv", ["text,label", "good,1", "bad,", "fine,0"])),
        "error: {d}/rows.csv: row 2, column 'label' has no label",
    ),
    (
        "mixed label types in JSON",
        lambda d: _custom(_write(d / "rows.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": "pos"}\n')),
        "error: {d}/rows.jsonl: row 2, column 'label' has 'pos' (string) but row 1 has 1 (integer); "
        "use one label type in the column",
    ),
    (
        "mixed label types in CSV",
        lambda d: _custom(_csv(d / "rows.csv", ["text,label", "good,pos", "bad,0", "fine,neg"])),
        "error: {d}/rows.csv: row 2, column 'label' has '0' (integer) but row 1 has 'pos' (string)",
    ),
    (
        "one label only",
        lambda d: _custom(_csv(d / "rows.csv", ["text,label", "good,pos", "fine,pos"])),
        "error: {d}/rows.csv: column 'label' holds one label only ('pos'); need two or more",
    ),
    (
        "undecodable bytes",
        lambda d: _mrpc_tsv(d, _tsv(["a\tb\t1\t0"]).encode() + b"caf\xe9\tx\t0\t1\n"),
        "error: {d}/train.tsv: line 3 is not valid UTF-8 (byte 0xe9); save the file as UTF-8",
    ),
    (
        "stray carriage return splits a tab row",
        lambda d: _mrpc_tsv(d, ["a\tb\t1\t0", "c\rc\td\t0\t1", "e\tf\t1\t2"]),
        "error: {d}/train.tsv: has 3 data lines but 4 rows were read, so rows were split, merged or dropped; "
        "line 3 holds a stray carriage return (\\r)",
    ),
    (
        "a tab row with an extra field",
        lambda d: _mrpc_tsv(d, ["a\tb\t1\t0", "c\td\t0\t1\textra"]),
        "error: {d}/train.tsv: row 2 (line 3) has 5 fields but the header has 4; a text holds a tab",
    ),
    (
        "a tab row with a field missing",
        lambda d: _mrpc_tsv(d, ["a\tb\t1\t0", "c\td\t0"]),
        "error: {d}/train.tsv: row 2 (line 3) has 3 fields but the header has 4; a field is missing",
    ),
    (
        # pandas would quietly make the first field an index and shift the text into the wrong column
        "an unquoted comma in a csv text",
        lambda d: _custom(_csv(d / "rows.csv", ["text,label", "good,pos", "warm, funny,pos", "bad,neg"])),
        "error: {d}/rows.csv: row 2 (line 3) has 3 fields but the header has 2; quote texts that hold commas",
    ),
    (
        "a jsonl object spread over two lines",
        lambda d: _custom(_write(d / "rows.jsonl", '{"text": "a", "label": "x"}\n{"text": "b",\n "label": "y"}\n')),
        "error: {d}/rows.jsonl: has 3 data lines but 2 rows were read, so rows were split, merged or dropped",
    ),
    (
        "custom task without columns",
        lambda d: ["data.task=custom", f"data.file={_csv(d / 'rows.csv', ['text,label', 'a,b'])}"],
        "error: data.text_columns: data.task=custom needs its text column(s)",
    ),
    (
        "custom task without files",
        lambda d: ["data.task=custom", "data.text_columns=[text]"],
        "error: data.task=custom reads local files: set data.file=PATH (one file) or data.dir=DIR",
    ),
    (
        "file and dir together",
        lambda d: [f"data.dir={d}", f"data.file={d / 'x.csv'}"],
        "error: data.file: data.file and data.dir exclude each other; set one",
    ),
    (
        "validation fraction holds out nothing",
        lambda d: _custom(_csv(d / "rows.csv", ["text,label", "a,x", "b,y", "c,z"])),
        "error: data.validation_fraction=0.1: holds out no rows of the 3 in {d}/rows.csv (each label needs a second "
        "row to spare one); add rows",
    ),
    (
        "no validation file",
        lambda d: [f"data.dir={_write(d / 'train.jsonl', json.dumps(_pairs(1)[0]) + chr(10)).parent}"],
        "error: data: no validation split to evaluate on; add validation.<ext> to data.dir={d}, or data.file=PATH",
    ),
    (
        "three text columns",
        lambda d: ["data.text_columns=[a,b,c]"],
        "error: data.text_columns: one or two columns, got ['a', 'b', 'c']",
    ),
]


@pytest.mark.parametrize("case, overrides, message", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_bad_data_is_one_line_before_any_run(case, overrides, message, tmp_path, tiny_model_dir, capsys):
    folder = tmp_path / "data_in"
    folder.mkdir()
    run_dir = tmp_path / "run"
    argv = ["train", "mrpc_minilm", f"model.name={tiny_model_dir}", f"output_dir={run_dir}", *overrides(folder)]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(message.replace("{d}", str(folder))), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not run_dir.exists()


def test_eval_and_predict_check_their_files(tmp_path, capsys, tiny_model_dir):
    """A run directory with a recipe and a model: the files given to eval / predict are checked the same way."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2).save_pretrained(run / "model")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(run / "model")
    (run / "recipe.json").write_text(json.dumps({"data": {"task": "mrpc"}}))
    capsys.readouterr()  # the set-up's own output
    bad = _write(tmp_path / "bad.tsv", _tsv(["a\tb\t1\t0", "c\td\t7\t1"]))
    assert main(["eval", str(run), "--file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"error: {bad}: row 2, column 'label' has 7" in err and err.count("\n") == 1
    no_text = _write(tmp_path / "blank.tsv", _tsv(["a\tb\t1\t0", "\td\t0\t1"]))
    assert main(["predict", str(run), "--file", str(no_text)]) == 2
    err = capsys.readouterr().err
    assert f"error: {no_text}: row 2, column 'sentence1' is empty" in err and err.count("\n") == 1
    assert main(["predict", str(run), "--file", str(tmp_path / "absent.csv")]) == 2
    assert f"error: {tmp_path / 'absent.csv'}: no such file" in capsys.readouterr().err
