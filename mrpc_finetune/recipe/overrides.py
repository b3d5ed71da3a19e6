"""Dotted overrides and plain dicts to and from a ``Recipe``: ``train.lr=3e-5``, quoted list items
``data.text_columns=["#1 String","#2 String"]``, ``recipe.json``'s nested dict. A mistyped key or value is a
one-line error naming the key, before anything loads.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal

from mrpc_finetune.errors import UserError
from mrpc_finetune.recipe.schema import (
    Recipe,
    check_sections_agree,
)


def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def all_keys(cls=Recipe, prefix: str = "") -> list[str]:
    """Every dotted key a recipe accepts, e.g. ``train.lr``."""
    keys = []
    for name, hint in _field_types(cls).items():
        if dataclasses.is_dataclass(hint):
            keys += all_keys(hint, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def _parse(text: str, hint: Any, key: str) -> Any:
    """Turn the text of an override into a value of the field's type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _parse(text, inner[0], key)
    if origin is Literal:
        if text not in args:
            raise UserError(f"{key}: {text!r} is not one of {', '.join(map(str, args))}")
        return text
    if origin in (list, tuple):
        inner = text.strip()
        if inner.startswith("[") and inner.endswith("]"):
            inner = inner[1:-1]
        return [_parse(item, args[0], key) for item in split_list_items(inner, key)]
    if hint is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise UserError(f"{key}: expected true or false, got {text!r}")
    if hint in (int, float):
        try:
            return hint(text)
        except ValueError:
            raise UserError(f"{key}: expected {hint.__name__}, got {text!r}") from None
    return _unquote(text)


QUOTES = ('"', "'")


def _unquote(text: str) -> str:
    """``"my runs/a=b"`` -> ``my runs/a=b``: quotes around a whole value (kept by make, or typed twice) are not
    part of it."""
    if len(text) >= 2 and text[0] in QUOTES and text[-1] == text[0]:
        return text[1:-1]
    return text


def split_list_items(text: str, key: str) -> list[str]:
    """``a, "b, c", '#1 String'`` -> ``['a', 'b, c', '#1 String']``: commas inside quotes belong to the item."""
    items, current, quote = [], "", None
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in QUOTES:
            quote = char
        elif char == ",":
            items.append(current)
            current = ""
            continue
        current += char
    if quote:
        raise UserError(f"{key}: unbalanced {quote} in {text!r}")
    items.append(current)
    return [_unquote(item.strip()) for item in items if item.strip()]


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Parse text; check that an already-typed value (from JSON or Python) fits the field's type."""
    if isinstance(value, str):
        return _parse(value, hint, key)
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    allowed = [a for a in (typing.get_args(hint) if union else (hint,)) if a is not typing.Any]
    plain = {typing.get_origin(a) or a for a in allowed}
    if isinstance(value, (list, tuple)) and list in plain:
        item = next(typing.get_args(a)[0] for a in allowed if typing.get_origin(a) is list)
        return [_coerce(v, item, key) for v in value]
    if float in plain:
        plain.add(int)
    if (
        isinstance(value, bool)
        and bool not in plain
        or not isinstance(value, tuple(t for t in plain if isinstance(t, type)))
    ):
        raise UserError(f"{key}: expected {_type_name(hint)}, got {value!r}")
    return value


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _unknown_key(key: str) -> UserError:
    close = difflib.get_close_matches(key, all_keys(), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]}?" if close else "; run `mrpc-finetune show RECIPE` to see the keys"
    return UserError(f"unknown recipe key {key!r}{hint}")


def _set_path(obj: Any, path: list[str], value: Any, key: str) -> Any:
    """Return a copy of dataclass ``obj`` with the field at ``path`` replaced, re-running its checks."""
    hints = _field_types(type(obj))
    head = path[0]
    if head not in hints:
        raise _unknown_key(key)
    if len(path) == 1:
        if dataclasses.is_dataclass(hints[head]):
            raise UserError(f"{key} is a section; set one of its fields, e.g. {key}.{all_keys(hints[head])[0]}")
        new = _coerce(value, hints[head], key)
    else:
        if not dataclasses.is_dataclass(hints[head]):
            raise _unknown_key(key)
        new = _set_path(getattr(obj, head), path[1:], value, key)
    return dataclasses.replace(obj, **{head: new})


def apply_overrides(recipe: Recipe, overrides: list[str]) -> Recipe:
    """Apply ``KEY=VALUE`` strings in order; every check of the recipe runs again on the result."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"override {item!r} is not KEY=VALUE (e.g. train.lr=3e-5)")
        recipe = _set_path(recipe, key.strip().split("."), value.strip(), key.strip())
    check_sections_agree(recipe)
    return recipe


def to_dict(recipe: Recipe) -> dict[str, Any]:
    return dataclasses.asdict(recipe)


def flat_dict(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1e-4}}`` -> ``{"train.lr": 1e-4}``: a recipe dict under its dotted keys."""
    result = {}
    for key, value in values.items():
        if isinstance(value, dict):
            result.update(flat_dict(value, f"{prefix}{key}."))
        else:
            result[f"{prefix}{key}"] = value
    return result


def from_dict(values: dict[str, Any], source: str = "recipe") -> Recipe:
    """Rebuild a recipe from ``to_dict`` output (e.g. a run's ``recipe.json``), rejecting unknown keys."""
    recipe = Recipe()
    for section, value in values.items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for name, item in items:
            key = f"{section}.{name}" if name else section
            try:
                recipe = _set_path(recipe, key.split("."), item, key)
            except UserError as err:
                raise UserError(f"{source}: {err}") from None
    try:
        check_sections_agree(recipe)
    except UserError as err:
        raise UserError(f"{source}: {err}") from None
    return recipe
