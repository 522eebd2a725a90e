"""Typed, frozen configuration dataclasses and parsing of ``field=value`` overrides.

A config may nest another (a field whose type is a ``Config`` subclass, e.g. HATRPO's ``trpo: TRPOConfig``); its
fields are named with a dot, ``trpo.kl_threshold``, in overrides and in ``replace``.
"""
from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class of algorithm configs: frozen dataclasses whose ``validate(env)`` raises ``ValueError`` naming
    the offending field before anything is traced."""

    def validate(self, env) -> None:
        for f in dataclasses.fields(self):
            if f.name in ("num_updates", "total_steps", "num_envs", "rollout_len"):
                require_positive_int(self, f.name)

    @classmethod
    def field_types(cls) -> dict[str, type]:
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls)}

    def to_dict(self) -> dict[str, Any]:
        """Fields as a dict (nested configs as nested dicts: what ``config.json`` keeps and ``replace`` reads)."""
        return dataclasses.asdict(self)

    def flat_items(self) -> list[tuple[str, Any]]:
        """(name, value) of every leaf field, nested ones named ``group.field``."""
        items = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Config):
                items.extend((f"{f.name}.{k}", v) for k, v in value.flat_items())
            else:
                items.append((f.name, value))
        return items


@dataclasses.dataclass(frozen=True)
class OnlineConfig(Config):
    """Base of online learners' configs: ``total_steps`` environment steps per seed, metrics logged every
    ``steps_per_update`` of them (one update of the Trainer contract)."""

    total_steps: int = 100_000
    steps_per_update: int = 1_000

    def validate(self, env) -> None:
        super().validate(env)
        require_positive_int(self, "steps_per_update")
        if self.total_steps % self.steps_per_update:
            raise ValueError(f"total_steps ({self.total_steps}) must be a multiple of steps_per_update "
                             f"({self.steps_per_update})")

    @property
    def num_updates(self) -> int:
        return self.total_steps // self.steps_per_update


class BatchedRollouts:
    """Mixin of configs whose update collects ``rollout_len`` steps of ``num_envs`` environments (both fields of the
    config, with ``total_steps``)."""

    @property
    def steps_per_update(self) -> int:
        """Environment steps per update and seed."""
        return self.num_envs * self.rollout_len

    @property
    def num_updates(self) -> int:
        """Updates of a run: ``total_steps`` rounded down to whole updates."""
        return self.total_steps // self.steps_per_update

    def validate(self, env) -> None:
        super().validate(env)
        if self.num_updates < 1:
            raise ValueError(f"total_steps ({self.total_steps}) must be at least num_envs * rollout_len "
                             f"({self.steps_per_update})")


def require_at_most(config: Config, small: str, large: str, small_label: str | None = None) -> None:
    """Field (or property) ``small`` at most field ``large``, e.g. a replay batch and its buffer."""
    if getattr(config, small) > getattr(config, large):
        raise ValueError(f"{small_label or small} ({getattr(config, small)}) must be at most {large} "
                         f"({getattr(config, large)})")


def require_replay_fits(config: Config) -> None:
    """A transition replay of ``buffer_size`` holds a batch (``batch_size``), one update's transitions
    (``steps_per_update``) and the ``learning_starts`` transitions learning waits for, which fill a batch."""
    require_at_most(config, "batch_size", "buffer_size")
    require_at_most(config, "steps_per_update", "buffer_size", "num_envs * rollout_len")
    require_at_most(config, "batch_size", "learning_starts")
    require_at_most(config, "learning_starts", "buffer_size")


def require_unit_interval(config: Config, name: str) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")


def require_positive_int(config: Config, name: str) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def require_positive(config: Config, name: str) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")


def require_nonnegative(config: Config, name: str) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be non-negative, got {value!r}")


def parse_value(text: str, typ: Any, name: str) -> Any:
    """Convert the text of a ``name=value`` flag to ``typ`` (bool, int, float, str); ``ValueError`` names ``name``."""
    text = text.strip()
    try:
        if typ is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if typ is int:
            return int(text)
        if typ is float:
            return float(text)
        if typ is str:
            return text
    except ValueError:
        raise ValueError(f"{name}: expected {typ.__name__}, got {text!r}") from None
    raise ValueError(f"{name}: cannot be set from text (type {typ})")


def split_assignment(text: str, flag: str) -> tuple[str, str]:
    """'key=value' -> (key, value); ``ValueError`` names the flag when malformed."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise ValueError(f"{flag} expects key=value, got {text!r}")
    return key.strip(), value


def _is_config(typ: Any) -> bool:
    return isinstance(typ, type) and issubclass(typ, Config)


def field_type(config_type: type[Config], name: str) -> type:
    """The type of field ``name`` (``group.field`` inside a nested config); ``ValueError`` for an unknown name lists
    the valid ones of the config it was looked up in, and for a group names its fields."""
    parts = name.split(".")
    typ: Any = config_type
    for i, part in enumerate(parts):
        types = typ.field_types()
        if part not in types:
            where = ".".join(parts[:i])
            prefix = f"{where}." if where else ""
            raise ValueError(f"--set: unknown field {name!r} of {typ.__name__}; valid fields: "
                             f"{', '.join(prefix + t for t in types)}")
        typ = types[part]
        if i < len(parts) - 1 and not _is_config(typ):
            raise ValueError(f"--set: {'.'.join(parts[:i + 1])!r} of {config_type.__name__} has no fields "
                             f"(it is a {getattr(typ, '__name__', typ)})")
    if _is_config(typ):
        raise ValueError(f"--set: {name!r} is a group of fields; set one of them: "
                         f"{', '.join(f'{name}.{t}' for t in typ.field_types())}")
    return typ


def parse_overrides(config_type: type[Config], assignments: list[str]) -> dict[str, Any]:
    """``field=value`` (or ``group.field=value``) texts -> {name: typed value} for ``config_type``; unknown fields
    list the valid ones."""
    changes = {}
    for text in assignments:
        key, value = split_assignment(text, "--set")
        changes[key] = parse_value(value, field_type(config_type, key), key)
    return changes


def replace(config: Config, changes: Mapping[str, Any], _prefix: str = "") -> Config:
    """A copy of ``config`` with ``changes``: {field: value}, {"group.field": value} or {group: {field: value}} (as
    ``to_dict`` writes nested configs); ``ValueError`` names an unknown field."""
    types = type(config).field_types()
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if head not in types:
            raise ValueError(f"unknown field {_prefix + key!r} of {type(config).__name__}; valid fields: "
                             f"{', '.join(_prefix + t for t in types)}")
        if rest or (_is_config(types[head]) and isinstance(value, Mapping)):
            if not _is_config(types[head]):
                raise ValueError(f"{_prefix + head!r} of {type(config).__name__} has no fields, got {_prefix + key!r}")
            nested.setdefault(head, {}).update({rest: value} if rest else value)
        else:
            direct[head] = value
    for head, sub in nested.items():
        direct[head] = replace(direct.get(head, getattr(config, head)), sub, f"{_prefix}{head}.")
    return dataclasses.replace(config, **direct)


def from_defaults(default_config: Callable[..., Config], env, changes: Mapping[str, Any]) -> Config:
    """``default_config(env)`` with ``changes`` ({field: value}, as ``replace`` takes them). A ``preset`` among the
    changes first selects the named defaults, ``default_config(env, preset=NAME)``, which the other changes then
    modify (configs with a ``preset`` field: ``--set preset=NAME``)."""
    changes = dict(changes)
    if "preset" in changes:
        return replace(default_config(env, preset=changes.pop("preset")), changes)
    return replace(default_config(env), changes)


def override(config: Config, assignments: list[str]) -> Config:
    """Apply ``field=value`` (``group.field=value``) texts to a frozen config (returns a new one); unknown fields list
    the valid ones."""
    return replace(config, parse_overrides(type(config), assignments))
