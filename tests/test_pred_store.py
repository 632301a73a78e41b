"""The fine-tuning prediction store (``<out>.preds.npz``) is validated on read.

A corrupt store never crashes a resume and is never used: an unreadable file is dropped
whole, a bad run alone, each with a :class:`PredStoreWarning` naming the file and the
problem; the sweep then recomputes exactly the dropped runs, to the same values.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from w2s_theory.pipelines.finetune import PredStore, PredStoreWarning

N_TEST = 4


def _rec(i: int) -> dict:
    return {"regime": "full", "role": "student" if i else "ceiling", "seed": i, "config": {}}


def _store(path: Path) -> PredStore:
    s = PredStore(path, n_test=N_TEST)
    s.add({f"k{i}": (np.arange(N_TEST) + i, _rec(i)) for i in range(3)})
    return s


def _savez(path: Path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())


def _members(path: Path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _corrupt(path: Path, case: str) -> None:
    m = _members(path)
    if case == "garbage":
        path.write_bytes(b"\x00garbage\xff" * 50)
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "half_member":       # the zip's central directory intact, a member's data cut
        data = bytearray(path.read_bytes())
        i = data.find(b"\x93NUMPY", 200)
        data[i:i + 60] = b"\x00" * 60
        path.write_bytes(bytes(data))
    elif case == "npy":
        with path.open("wb") as fh:
            np.save(fh, np.zeros(3))
    elif case == "no_logits":
        _savez(path, keys=m["keys"], records=m["records"])
    elif case == "records_not_json":
        _savez(path, keys=m["keys"], records=np.array("{not json"), logits=m["logits"])
    elif case == "records_list":
        _savez(path, keys=m["keys"], records=np.array("[1, 2]"), logits=m["logits"])
    elif case == "rows_mismatch":
        _savez(path, keys=m["keys"], records=m["records"], logits=m["logits"][:2])
    elif case == "logits_not_float":
        _savez(path, keys=m["keys"], records=m["records"], logits=m["logits"].astype(str))
    elif case == "n_test":
        _savez(path, keys=m["keys"], records=m["records"], logits=m["logits"][:, :3])
    elif case == "nan_row":
        lg = m["logits"].copy()
        lg[1, 2] = np.nan
        _savez(path, keys=m["keys"], records=m["records"], logits=lg)
    elif case == "inf_row":
        lg = m["logits"].copy()
        lg[2, 0] = -np.inf
        _savez(path, keys=m["keys"], records=m["records"], logits=lg)
    elif case == "no_record":
        recs = json.loads(str(m["records"]))
        del recs["k1"]
        _savez(path, keys=m["keys"], records=np.array(json.dumps(recs)), logits=m["logits"])
    elif case == "record_lacks_role":
        recs = json.loads(str(m["records"]))
        del recs["k2"]["role"]
        _savez(path, keys=m["keys"], records=np.array(json.dumps(recs)), logits=m["logits"])
    else:  # pragma: no cover
        raise AssertionError(case)


WHOLE = {"garbage": "unreadable", "empty": "unreadable", "truncated": "unreadable",
         "half_member": "unreadable", "npy": "not an .npz", "no_logits": "'logits'",
         "records_not_json": "not JSON", "records_list": "not an object",
         "rows_mismatch": "one row per key", "logits_not_float": "float array",
         "n_test": "3 entries per run"}
RUNS = {"nan_row": ("k1", "non-finite"), "inf_row": ("k2", "non-finite"),
        "no_record": ("k1", "no record"), "record_lacks_role": ("k2", "lacks role")}


def test_a_valid_store_reads_back_without_warnings(tmp_path):
    p = tmp_path / "r.preds.npz"
    _store(p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = PredStore(p, n_test=N_TEST)
        PredStore(tmp_path / "new.preds.npz")          # no file: empty, silent
    assert sorted(s.logits) == ["k0", "k1", "k2"] and s.records["k0"]["role"] == "ceiling"
    np.testing.assert_array_equal(s.logits["k2"], np.arange(N_TEST) + 2)
    empty = PredStore(tmp_path / "e.preds.npz")
    empty.add({})                                       # an empty store reads back empty, silent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert PredStore(empty.path, n_test=N_TEST).logits == {}


@pytest.mark.parametrize("case", sorted(WHOLE))
def test_an_unreadable_store_is_dropped_whole_with_a_warning(tmp_path, case):
    p = tmp_path / "r.preds.npz"
    _store(p)
    _corrupt(p, case)
    with pytest.warns(PredStoreWarning) as w:
        s = PredStore(p, n_test=N_TEST)
    assert len(w) == 1
    msg = str(w[0].message)
    assert msg.startswith(str(p)) and WHOLE[case] in msg and "recomputed" in msg, msg
    assert s.logits == {} and s.records == {} and not s.has("k0")
    s.add({"k0": (np.zeros(N_TEST), _rec(0))})         # the next write replaces the bad file
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(PredStore(p, n_test=N_TEST).logits) == ["k0"]


@pytest.mark.parametrize("case", sorted(RUNS))
def test_a_bad_run_is_dropped_alone_with_a_warning(tmp_path, case):
    p = tmp_path / "r.preds.npz"
    _store(p)
    _corrupt(p, case)
    bad, why = RUNS[case]
    with pytest.warns(PredStoreWarning) as w:
        s = PredStore(p, n_test=N_TEST)
    msg = str(w[0].message)
    assert msg.startswith(str(p)) and why in msg and bad in msg and "1 of 3 runs" in msg, msg
    assert sorted(s.logits) == sorted({"k0", "k1", "k2"} - {bad}) == sorted(s.records)
    assert not s.has(bad)


# ----------------------------------------------------------------------------- a real resume
@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    """A tiny head-only fine-tuning sweep (5 runs, seconds on one CPU thread), run once."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from w2s_theory.cli import main as cli_main
    from w2s_theory.models import model_dir

    tmp = tmp_path_factory.mktemp("store")
    tok = AutoTokenizer.from_pretrained(str(model_dir("all-MiniLM-L6-v2")), local_files_only=True)
    torch.manual_seed(0)
    bb = BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
                   add_pooling_layer=False)
    mdir = tmp / "tiny"
    bb.save_pretrained(str(mdir))
    tok.save_pretrained(str(mdir))
    out = tmp / "res.csv"
    cfg = tmp / "c.toml"
    cfg.write_text(f"""
name = "store"
strong = "{mdir}"
[data]
n_train = 32
n_test = 24
[weak]
l2_grid = [0.1]
[train]
max_length = 24
precision = "fp32"
lr = 1e-3
batch_size = 8
[sweep]
losses = ["forward_kl", "reverse_kl"]
noise = [0.0, 0.4]
seeds = [0]
regimes = ["head_only"]
[run]
out = "{out}"
""")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli_main(["finetune", "--config", str(cfg), "--quiet"]) == 0
    finally:
        torch.set_num_threads(n)
    store = PredStore(out.with_suffix(".preds.npz"))
    assert len(store.logits) == 5
    return cfg, out, store, _table(out)


def _table(out: Path):
    import pandas as pd

    df = pd.read_csv(out, dtype={"run_key": str}).sort_values("run_key").reset_index(drop=True)
    keep = [c for c in df.columns if not any(v in c for v in ("wall", "_utc", "feature_s"))]
    return df[keep]


@pytest.mark.parametrize("case,n_dropped", [("truncated", 5), ("nan_row", 1)])
def test_resume_recomputes_the_dropped_runs_to_the_same_values(tiny_sweep, case, n_dropped,
                                                               capsys):
    import torch

    from w2s_theory.cli import main as cli_main

    cfg, out, ref, ref_table = tiny_sweep
    p = out.with_suffix(".preds.npz")
    if case == "truncated":
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 3])
    else:
        m = _members(p)
        m["logits"][1, :] = np.nan
        _savez(p, **m)
    out.unlink()                               # rows are rebuilt from the store alone
    capsys.readouterr()
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.warns(PredStoreWarning, match=str(p).replace(".", r"\.")):
            assert cli_main(["finetune", "--config", str(cfg), "--quiet"]) == 0
    finally:
        torch.set_num_threads(n)
    assert f"{n_dropped} runs trained" in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("error")         # the rewritten store is clean
        again = PredStore(p, n_test=24)
    assert sorted(again.logits) == sorted(ref.logits)
    for k, z in ref.logits.items():
        np.testing.assert_allclose(again.logits[k], z, rtol=1e-6, atol=1e-6, err_msg=k)
    got = _table(out)
    assert list(got["run_key"]) == list(ref_table["run_key"])
    for c in ref_table.columns:
        if ref_table[c].dtype.kind == "f":
            np.testing.assert_allclose(got[c], ref_table[c], rtol=1e-6, atol=1e-9, equal_nan=True,
                                       err_msg=c)
