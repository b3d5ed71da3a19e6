"""``data.exclude``: leave out the rows whose column holds a listed value, in every split a run trains or scores
on, and say how many rows each split lost.

    dropped = exclude_rows(raw, ["source=MSRpar"], sources, ["train", "validation"])   # {"train": 1000, ...}

``loading.py`` calls it after the checks of what was read and before ``data.file``'s validation carve, so the carve
and the tokenizer only ever see the rows kept.
"""

from __future__ import annotations

from mrpc_finetune.errors import UserError


def exclusion_rules(items: list[str]) -> dict[str, tuple[str, ...]]:
    """``["source=MSRpar", "source=MSRvid"]`` -> ``{"source": ("MSRpar", "MSRvid")}``. Values sorted: the
    rules are part of ``Dataset.filter``'s cache key, which must not depend on the order they were written in."""
    rules: dict[str, set[str]] = {}
    for item in items:
        column, _, value = item.partition("=")
        rules.setdefault(column, set()).add(value)
    return {column: tuple(sorted(values)) for column, values in rules.items()}


def _kept(*columns, rules):
    """``Dataset.filter``'s batched predicate: True for the rows no rule matches (values compared as text)."""
    matches = [[str(value) in excluded for value in column] for column, excluded in zip(columns, rules, strict=True)]
    return [not any(row) for row in zip(*matches, strict=True)]


def exclude_rows(raw, items: list[str], sources: dict[str, str], splits: list[str]) -> dict[str, int]:
    """Replace each of ``splits`` in ``raw`` (a ``DatasetDict``) by its rows that no ``COLUMN=VALUE`` item of
    ``items`` matches; print one line with the rows each split lost and return those counts."""
    rules = exclusion_rules(items)
    for split in splits:
        columns = raw[split].column_names
        for column in rules:
            if column not in columns:
                raise UserError(
                    f"data.exclude={format_items(items)}: {sources[split]} has no column {column!r} "
                    f"(its columns: {', '.join(columns)})"
                )
    dropped, before = {}, {}
    for split in splits:
        dataset = raw[split]
        kept = dataset.filter(
            _kept,
            batched=True,
            input_columns=list(rules),
            fn_kwargs={"rules": list(rules.values())},
            desc=f"data.exclude ({split})",
        )
        if kept.num_rows == 0:
            raise UserError(
                f"data.exclude={format_items(items)}: drops every one of the {dataset.num_rows} rows of "
                f"{sources[split]}, leaving nothing to {'train on' if split == 'train' else 'score'}"
            )
        before[split], dropped[split] = dataset.num_rows, dataset.num_rows - kept.num_rows
        raw[split] = kept
    counts = ", ".join(f"{dropped[split]} of {before[split]} {split} rows" for split in splits)
    print(f"data.exclude={format_items(items)}: dropped {counts}")
    return dropped


def format_items(items: list[str]) -> str:
    """The items as an override writes them: ``[source=MSRpar,source=MSRvid]``."""
    return f"[{','.join(items)}]"
