"""Configs as dataclasses, loaded one way for the GAN (`training.config`) and the tagger (`tagger.config`): a
named preset, or a JSON file whose optional "base" names the preset it starts from, then `key=value`
overrides (`--set`), where `model.g_blocks=8` reaches into a nested dataclass. Standard library only.
"""
from __future__ import annotations

import json
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

C = TypeVar("C")


def coerce(value: str, current: Any) -> Any:
    """`value` as the type of the field's `current` value: true/false, "8,16,16" for a tuple (of the type of its
    first item; an empty value is the empty tuple), else the type itself."""
    if isinstance(current, bool):
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"expected true/false, got {value!r}")
        return value.lower() in ("true", "1")
    if isinstance(current, tuple):
        item = type(current[0]) if current else int
        return tuple(item(v.strip()) for v in value.split(",")) if value.strip() else ()
    return type(current)(value)


def apply_overrides(cfg: C, overrides: list[str]) -> C:
    """Apply `key=value` strings to a dataclass; `part.name=value` sets a field of the dataclass field `part`."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not key=value")
        part, dot, name = key.rpartition(".")
        target = getattr(cfg, part, None) if dot else cfg
        names = {f.name for f in fields(target)} if is_dataclass(target) else set()
        if name not in names or is_dataclass(getattr(target, name)):
            raise ValueError(f"unknown config key {key!r}")
        try:
            new = replace(target, **{name: coerce(value, getattr(target, name))})
        except ValueError as exc:
            raise ValueError(f"override {item!r}: {exc}") from None
        cfg = replace(cfg, **{part: new}) if dot else new
    return cfg


def load_config(spec: str, overrides: list[str], presets: Mapping[str, C], from_json: Callable[[dict], C],
                default_base: str) -> C:
    """A preset name (whose dataclass has `to_json`) or a JSON file (`{"base": PRESET, ...}`: the preset's values
    under the file's; a nested dataclass such as "model" is merged key by key), then the overrides."""
    if spec in presets:
        cfg = presets[spec]
    else:
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"config {spec!r} is neither a preset ({', '.join(presets)}) nor a JSON file")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object of config keys")
        base_name = data.get("base", default_base)
        if base_name not in presets:
            raise ValueError(f"{path}: base {base_name!r} is not a preset ({', '.join(presets)})")
        base = presets[base_name].to_json()
        merged = {**base, **{k: ({**base[k], **v} if isinstance(base.get(k), dict) and isinstance(v, dict) else v)
                             for k, v in data.items()}}
        cfg = from_json(merged)
    return apply_overrides(cfg, list(overrides))


def known_fields(cls: type, data: dict, what: str = "config") -> dict:
    """`data` keyed by `cls`'s fields alone, "base" dropped: a key the dataclass has no field for is refused in
    one line (a misspelt key would otherwise be ignored without a word)."""
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known - {"base"}
    if unknown:
        raise ValueError(f"unknown {what} keys: {', '.join(sorted(unknown))}")
    return {k: v for k, v in data.items() if k in known}
