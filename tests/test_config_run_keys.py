"""Run keys and ``to_dict`` of every committed config stay put when the config code changes.

A run key hashes the config's values (`w2s_theory.sweep.run_key`): a loader that turned an
integer into a float, dropped a default or renamed a field would silently orphan every stored
row and cache. ``tests/golden/config_keys.json`` holds, per committed config of
``experiments/finetune``, ``experiments/paper``, ``experiments/real`` and
``experiments/real/splits``, the SHA-256 of its ``to_dict`` (finetune / partial; the protocol
dict for real sweeps) and of its planned run keys in order, recorded with the code before the
issue-19 config changes (hand-written ``from_dict`` -> `w2s_theory.config.from_mapping`,
``vader_seed`` -> ``split_seed``). Regenerate it only when a key change is intended:
``python tests/test_config_run_keys.py``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "config_keys.json"


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def finetune_files() -> list[Path]:
    return (sorted((ROOT / "experiments" / "finetune").glob("*.toml"))
            + sorted((ROOT / "experiments" / "paper").glob("*.toml")))


def real_files() -> list[Path]:
    return (sorted((ROOT / "experiments" / "real").glob("*.toml"))
            + sorted((ROOT / "experiments" / "real" / "splits").glob("*.toml")))


def finetune_record(path: Path) -> dict:
    from w2s_theory.config import read_toml
    from w2s_theory.pipelines import partial
    from w2s_theory.pipelines.finetune import FinetuneSweepConfig, plan_runs

    if "partial" in read_toml(path):
        pc = partial.PartialConfig.from_toml(path)
        cfg = pc.sweep
        meta = {"subset": cfg.data.subset, "ceiling_split": cfg.data.ceiling_split}
        keys = [r.key for k in pc.blocks for r in partial.plan_block(cfg, meta, k, cfg.train)]
        extra = {"blocks": list(pc.blocks), "out": pc.out, "last_layer": pc.last_layer,
                 "grid": list(pc.head_lr_grid)}
    else:
        cfg = FinetuneSweepConfig.from_toml(path)
        meta = {"subset": cfg.data.subset, "ceiling_split": cfg.data.ceiling_split}
        keys, extra = [r.key for r in plan_runs(cfg, meta)], {}
    return {"dict": _sha([cfg.to_dict(), extra]), "keys": _sha(keys), "n_keys": len(keys)}


def real_record(path: Path) -> dict:
    from w2s_theory.pipelines.real import RealConfig
    from w2s_theory.pipelines.real.runs import enumerate_runs, protocol_dict

    cfg = RealConfig.from_toml(path)
    keys = [r.key for r in enumerate_runs(cfg)]
    return {"dict": _sha(protocol_dict(cfg)), "keys": _sha(keys), "n_keys": len(keys)}


def records() -> dict:
    out = {str(f.relative_to(ROOT)): finetune_record(f) for f in finetune_files()}
    out.update({str(f.relative_to(ROOT)): real_record(f) for f in real_files()})
    return out


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("path", [str(f.relative_to(ROOT)) for f in finetune_files()])
def test_finetune_and_partial_run_keys_unchanged(path, golden):
    assert path in golden, f"{path}: new config, add it: python tests/test_config_run_keys.py"
    assert finetune_record(ROOT / path) == golden[path], path


@pytest.mark.parametrize("path", [str(f.relative_to(ROOT)) for f in real_files()])
def test_real_run_keys_unchanged(path, golden):
    assert path in golden, f"{path}: new config, add it: python tests/test_config_run_keys.py"
    assert real_record(ROOT / path) == golden[path], path


def test_the_check_sees_a_key_change(golden):
    """Control: one changed value (a noise level written 0.2 -> 0.25) moves the hashes."""
    from w2s_theory.pipelines.real import RealConfig
    from w2s_theory.pipelines.real.runs import enumerate_runs

    path = ROOT / "experiments" / "real" / "main.toml"
    cfg = RealConfig.from_toml(path)
    moved = RealConfig.from_dict({**cfg.to_dict(), "noise": [0.25]})
    keys = [r.key for r in enumerate_runs(moved)]
    assert _sha(keys) != golden[str(path.relative_to(ROOT))]["keys"]


def test_split_seed_and_its_old_spelling_vader_seed_are_one_setting():
    """``split_seed`` (issue 19) and ``vader_seed`` (its old spelling) build the same config
    and the same run keys; the keys differ from another seed's (the seed is hashed)."""
    from w2s_theory.pipelines.real import RealConfig
    from w2s_theory.pipelines.real.runs import enumerate_runs

    base = {"name": "t", "datasets": ["vader"], "pairs": [["wordllama", "all-MiniLM-L6-v2"]],
            "losses": ["forward_kl"], "seeds": [0]}
    new, old = RealConfig.from_dict({**base, "split_seed": 3}), RealConfig.from_dict(
        {**base, "vader_seed": 3})
    assert new == old and new.split_seed == 3 and old.vader_seed is None
    keys = [r.key for r in enumerate_runs(new)]
    assert keys == [r.key for r in enumerate_runs(old)]
    assert keys != [r.key for r in enumerate_runs(RealConfig.from_dict({**base, "split_seed": 4}))]
    d = new.to_dict()
    assert d["split_seed"] == 3 and "vader_seed" not in d and RealConfig.from_dict(d) == new
    assert RealConfig.from_dict({**base, "vader_seed": 3, "split_seed": 3}) == new
    with pytest.raises(ValueError, match=r"^vader_seed: the old spelling of split_seed; give one"):
        RealConfig.from_dict({**base, "vader_seed": 3, "split_seed": 4})
    with pytest.raises(ValueError, match=r"^split_seed: must be an integer"):
        RealConfig(name="t", datasets=("vader",), pairs=(("a", "b"),), split_seed=-1)


if __name__ == "__main__":   # regenerate (only for an intended key change)
    GOLDEN.write_text(json.dumps(records(), indent=1, sort_keys=True) + "\n")
    print(f"{GOLDEN}: {len(json.loads(GOLDEN.read_text()))} configs", file=sys.stderr)
