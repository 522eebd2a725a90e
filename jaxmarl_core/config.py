"""Typed, frozen configuration dataclasses and parsing of ``field=value`` overrides."""
from __future__ import annotations

import dataclasses
import typing
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
        return dataclasses.asdict(self)


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


def parse_overrides(config_type: type[Config], assignments: list[str]) -> dict[str, Any]:
    """``field=value`` texts -> {field: typed value} for ``config_type``; unknown fields list the valid ones."""
    types = config_type.field_types()
    changes = {}
    for text in assignments:
        key, value = split_assignment(text, "--set")
        if key not in types:
            raise ValueError(f"--set: unknown field {key!r} of {config_type.__name__}; "
                             f"valid fields: {', '.join(types)}")
        changes[key] = parse_value(value, types[key], key)
    return changes


def override(config: Config, assignments: list[str]) -> Config:
    """Apply ``field=value`` texts to a frozen config (returns a new one); unknown fields list the valid ones."""
    return dataclasses.replace(config, **parse_overrides(type(config), assignments))
