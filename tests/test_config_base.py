"""The typed config loader `w2s_theory.config.from_mapping` and the configs built by it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from w2s_theory.config import ConfigError, from_mapping


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    kind: Literal["adam", "sgd"] = "adam"


@dataclass(frozen=True)
class Outer:
    name: str
    seeds: tuple[int, ...] = (0,)
    n: int | None = None
    flags: list[bool] = field(default_factory=list)
    extra: dict[str, int] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)


def test_builds_nested_dataclasses_by_field_type():
    c = from_mapping(Outer, {"name": "a", "seeds": [3, 4], "n": 5, "flags": [True],
                             "extra": {"x": 1}, "inner": {"lr": 0.1, "betas": [0.5, 0.6],
                                                          "kind": "sgd"}})
    assert c == Outer("a", (3, 4), 5, [True], {"x": 1}, Inner(0.1, (0.5, 0.6), "sgd"))
    assert isinstance(c.seeds, tuple) and isinstance(c.inner.betas, tuple)
    assert from_mapping(Outer, {"name": "b"}) == Outer("b")        # defaults
    # an integer in a float field is accepted and kept as written (run keys hash the value)
    assert from_mapping(Outer, {"name": "b", "inner": {"lr": 1}}).inner.lr == 1


@pytest.mark.parametrize("data, msg", [
    ({"name": "a", "sedes": [1]}, r"^top unknown key 'sedes' \(did you mean 'seeds'\?\); allowed: "),
    ({"name": "a", "inner": {"lrr": 1}},
     r"^\[inner\] unknown key 'lrr' \(did you mean 'lr'\?\); allowed: betas, kind, lr$"),
    ({"name": 1}, r"^name: must be text, got 1 \(int\)"),
    ({"name": "a", "seeds": [True]}, r"^seeds: must be an integer, got True \(bool\)"),
    ({"name": "a", "seeds": 3}, r"^seeds: must be a list, got 3 \(int\)"),
    ({"name": "a", "n": 2.5}, r"^n: must be an integer, got 2.5"),
    ({"name": "a", "flags": [1]}, r"^flags: must be true or false"),
    ({"name": "a", "extra": {"x": "y"}}, r"^extra.x: must be an integer"),
    ({"name": "a", "inner": {"kind": "adamw"}}, r"^\[inner\] kind: must be one of 'adam', 'sgd'"),
    ({"name": "a", "inner": {"lr": "fast"}}, r"^\[inner\] lr: must be a number, got 'fast'"),
    ({"name": "a", "inner": {"betas": [0.9, 0.9, 0.9]}}, r"^\[inner\] betas: must be a list of 2"),
    ({"name": "a", "inner": 3}, r"^inner: must be a table"),
])
def test_errors_name_the_table_and_the_key(data, msg):
    with pytest.raises(ConfigError, match=msg):
        from_mapping(Outer, data, where="top")


def test_non_dataclass_and_non_table():
    with pytest.raises(TypeError, match="^cls: a dataclass type"):
        from_mapping(dict, {})
    with pytest.raises(ConfigError, match="^config: expected a table, got list"):
        from_mapping(Outer, [])


def test_real_config_loads_through_the_base_with_its_old_messages():
    from w2s_theory.pipelines.real import ConvexConfig, RealConfig

    base = {"name": "t", "datasets": ["harmless"], "pairs": [["wordllama", "all-MiniLM-L6-v2"]]}
    c = RealConfig.from_dict({**base, "confidence": True, "noise": [0, 0.2],
                              "train": {"lr": 0.002, "betas": [0.8, 0.9]},
                              "convex": {"seeds": [0, 1], "divergences": ["reverse_kl"]}})
    assert c.confidence == (True,) and c.noise == (0.0, 0.2) and isinstance(c.noise[0], float)
    assert c.train.lr == 0.002 and c.train.betas == (0.8, 0.9)
    assert c.convex == ConvexConfig(seeds=(0, 1), divergences=("reverse_kl",))
    with pytest.raises(ConfigError, match=r"^\[train\] unknown key 'lrr' \(did you mean 'lr'\?\)"):
        RealConfig.from_dict({**base, "train": {"lrr": 1}})
    with pytest.raises(ConfigError, match=r"^\[convex\] divergences: must be one of"):
        RealConfig.from_dict({**base, "convex": {"divergences": ["tv"]}})
    with pytest.raises(ConfigError, match=r"^pairs: must be a list of 2 items"):
        RealConfig.from_dict({**base, "pairs": [["a", "b", "c"]]})
    with pytest.raises(ValueError, match=r"^convex.divergences: unknown divergence 'tv'"):
        ConvexConfig(divergences=("tv",))


def test_synthetic_and_demo_configs_load_through_the_base():
    from w2s_theory.pipelines.demo import DemoConfig
    from w2s_theory.synthetic import config_from_dict

    assert config_from_dict({"k": 3, "truth_scale": 0.9}).k == 3
    with pytest.raises(ConfigError, match=r"^\[base\] n_gt: must be an integer, got 100000000000.0 \(float\)"):
        config_from_dict({"n_gt": 1e11})
    d = DemoConfig.from_dict({"demo": {"gammas": [0.01], "classes": [2]}})
    assert d.gammas == (0.01,) and d.classes == (2,)
    with pytest.raises(ConfigError, match=r"^\[demo\] unknown key 'sead'"):
        DemoConfig.from_dict({"demo": {"sead": 1}})
