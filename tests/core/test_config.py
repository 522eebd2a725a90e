"""Nested configs: ``group.field`` overrides, clear errors for unknown fields, and the round trip through the
nested dict that ``config.json`` keeps (what ``train.py --resume`` rebuilds from)."""
import dataclasses
import json

import pytest

from jaxmarl_core.config import Config, override, parse_overrides, replace


@dataclasses.dataclass(frozen=True)
class Inner(Config):
    radius: float = 0.01
    iters: int = 10


@dataclasses.dataclass(frozen=True)
class Outer(Config):
    lr: float = 1e-3
    name: str = "a"
    inner: Inner = Inner()


def test_nested_fields_are_set_by_dotted_names_and_leave_the_rest():
    cfg = override(Outer(), ["inner.radius=0.02", "lr=0.5"])
    assert cfg == Outer(lr=0.5, inner=Inner(radius=0.02, iters=10))
    assert Outer().inner.radius == 0.01  # the default is untouched
    assert parse_overrides(Outer, ["inner.iters=3"]) == {"inner.iters": 3}
    assert Outer().flat_items() == [("lr", 1e-3), ("name", "a"), ("inner.radius", 0.01), ("inner.iters", 10)]


@pytest.mark.parametrize("text,fragments", [
    ("inner.radiuss=1", ["'inner.radiuss'", "Inner", "inner.radius, inner.iters"]),
    ("inner=1", ["group of fields", "inner.radius"]),
    ("lr.x=1", ["'lr'", "no fields"]),
    ("lrr=1", ["'lrr'", "lr, name, inner"]),
    ("inner.iters=1.5", ["inner.iters", "int"]),
])
def test_unknown_or_malformed_nested_fields_are_named(text, fragments):
    with pytest.raises(ValueError) as err:
        override(Outer(), [text])
    for fragment in fragments:
        assert fragment in str(err.value)


def test_replace_reads_back_the_nested_dict_of_to_dict():
    cfg = Outer(lr=0.5, inner=Inner(iters=4))
    assert replace(Outer(), json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert replace(cfg, {"inner": {"radius": 1.0}}) == Outer(lr=0.5, inner=Inner(radius=1.0, iters=4))
    assert replace(cfg, {"inner": Inner()}).inner == Inner()
    with pytest.raises(ValueError, match="'inner.nope'"):
        replace(cfg, {"inner": {"nope": 1}})
