"""Bad input at every public entry point of the I/O modules, generated from a registry (issue 17).

The companion of ``tests/test_bad_inputs.py`` (divergences, bounds, noise, metrics, losses)
for :mod:`~w2s_theory.trainers`, :mod:`~w2s_theory.sources`, :mod:`~w2s_theory.hub`,
:mod:`~w2s_theory.ledger`, :mod:`~w2s_theory.plan`, :mod:`~w2s_theory.export`,
:mod:`~w2s_theory.config` and :mod:`~w2s_theory.results_table`. :data:`REGISTRY` holds one `Entry` per public callable
(and per method of a public class): one set of valid keyword arguments and, per argument,
bad values drawn from shared families (``None``, wrong types, strings for numbers, booleans,
NaN/inf, negative, zero, huge, empty, wrong shapes and dtypes, tensors with grad / bf16 /
sparse / meta, lists for arrays, pandas objects with wrong columns, missing paths, files
for folders, non-UTF-8 files, malformed data files, ...).

Each case replaces one argument by one bad value; its outcome is one of

* ``error``: a ``ValueError``, ``TypeError`` or `w2s_theory.config.UserError` whose
  message starts with the argument's name (``"cache_dir: ..."``) or, where the entry says so
  (`Entry.prefixes`), with the file or the config table the error is about (the config
  layer's convention: ``"experiments/x.toml: ..."``, ``"[train] unknown key ..."``);
* ``crash``: any other exception, or one whose message does not name the argument;
* ``silent``: the call returned.

Every case must be an ``error``; `summary` gives the counts per module (cases, clear
errors, crashes, silent), `test_summary_has_no_crash_and_no_silent_result` asserts the
last two are 0 and writes the counts (``python tests/test_bad_inputs_io.py`` prints them).
:data:`VARIANTS` lists accepted alternative forms that must give the plain call's result.
"""

from __future__ import annotations

import atexit
import functools
import gzip
import json
import math
import os
import re
import shutil
import tempfile
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from w2s_theory import config, export, hub, ledger, plan, results_table, sources, trainers
from w2s_theory.config import UserError

MODULES = {"trainers": trainers, "sources": sources, "hub": hub, "ledger": ledger,
           "plan": plan, "export": export, "config": config, "results_table": results_table}

#: Public names that are data, not entry points (constants, exception and result classes,
#: a mixin whose methods have entries of their own), with the reason.
EXEMPT = {
    ("sources", "DEFAULT_SIZES"): "constant",
    ("sources", "SOURCE_KINDS"): "constant",
    ("sources", "KINDS"): "constant",
    ("sources", "SourceKind"): "frozen record of a source kind (KINDS)",
    ("hub", "POOLINGS"): "constant",
    ("hub", "ResolvedModel"): "frozen result record returned by resolve_model",
    ("ledger", "PairedEffect"): "frozen result record returned by paired_effect",
    ("ledger", "PGRInterval"): "frozen result record returned by pgr_interval",
    ("ledger", "Ledger"): "frozen result record returned by build",
    ("ledger", "CLAIMS"): "constant", ("ledger", "REGIMES"): "constant",
    ("ledger", "ROW_COLUMNS"): "constant", ("ledger", "SUMMARY_COLUMNS"): "constant",
    ("ledger", "EXCLUDED_COLUMNS"): "constant", ("ledger", "CHECK_COLUMNS"): "constant",
    ("ledger", "PLAN_PATH"): "constant",
    ("plan", "Plan"): "frozen record returned by load_plan / default_plan",
    ("plan", "Member"): "frozen record of a Plan", ("plan", "Family"): "frozen record of a Plan",
    ("plan", "DuplicatePair"): "frozen record of a Plan",
    ("plan", "Claim6Entry"): "frozen record of a Plan",
    ("plan", "Sensitivity"): "frozen record of a Plan",
    ("plan", "KINDS"): "constant", ("plan", "DEFAULT_TABLE"): "constant",
    ("plan", "REPLICATIONS"): "constant",
    ("config", "UserError"): "exception class", ("config", "ConfigError"): "exception class",
    ("config", "EXIT_USAGE"): "constant", ("config", "SELECTION_RULES"): "constant",
    ("results_table", "ResultTableError"): "exception class",
    ("results_table", "ResultTableWarning"): "warning class",
    ("results_table", "DTYPES"): "constant",
}


class Lazy:
    """A value built when a case runs (files in the shared temporary folder)."""

    def __init__(self, make: Callable[[], object]):
        self.make = make


def _resolve(v):
    return v.make() if isinstance(v, Lazy) else v


@dataclass
class Entry:
    """A callable, its valid keyword arguments, and bad values per argument.

    ``prefixes``: per argument, a function of the call's keyword arguments giving the other
    message starts that name what is wrong (the file, the config table).
    """

    module: str
    name: str
    fn: Callable
    valid: dict
    bad: dict = field(default_factory=dict)
    prefixes: dict = field(default_factory=dict)
    check: Callable | None = None              # a check of the valid call's result


# ----------------------------------------------------------------------------- shared fixtures
@functools.cache
def FX() -> types.SimpleNamespace:
    """Small files and folders shared by every case (one temporary folder per process)."""
    root = Path(tempfile.mkdtemp(prefix="w2s_bad_io_"))
    atexit.register(shutil.rmtree, root, True)
    ns = types.SimpleNamespace(root=root)
    ns.missing = root / "does" / "not" / "exist"
    ns.file = root / "plain.txt"
    ns.file.write_text("x")
    ns.empty_dir = root / "empty_dir"
    ns.empty_dir.mkdir()
    ns.not_utf8 = root / "latin1.toml"
    ns.not_utf8.write_bytes(b"a = '\xe9t\xe9'\n")
    ns.empty_file = root / "empty.csv"
    ns.empty_file.write_bytes(b"")
    # split files: one good folder, and one folder per kind of bad content (in train_gt)
    good = [{"chosen": f" good {i}", "rejected": f" bad {i}"} for i in range(4)]

    def split_root(tag, first=None, raw=None, sums=None):
        r = root / f"split_{tag}"
        (r / "s").mkdir(parents=True)
        for sp in ("train_gt", "train_w2s", "test"):
            p = r / "s" / f"{sp}.jsonl"
            if sp == "train_gt" and raw is not None:
                if raw == "dir":
                    p.mkdir()
                else:
                    p.write_bytes(raw)
            else:
                rows = (first if sp == "train_gt" and first is not None else good)
                p.write_text("".join(json.dumps(x) + "\n" for x in rows))
        if sums is not None:
            (r / "SHA256SUMS").write_text(sums)
        return r

    ns.split = split_root("good")
    ns.split_bad = {
        "chosen_null": split_root("null", [{"chosen": None, "rejected": "x"}] + good),
        "chosen_int": split_root("int", [{"chosen": 5, "rejected": "x"}] * 4),
        "chosen_list": split_root("list", [{"chosen": ["a"], "rejected": "x"}] * 4),
        "chosen_mixed": split_root("mixed", [{"chosen": 5, "rejected": "x"}] + good),
        "no_rejected": split_root("norej", [{"chosen": "a"}] * 4),
        "prompt_int": split_root("pint", [dict(g, prompt=7) for g in good]),
        "chosen_empty": split_root("cempty", [{"chosen": "", "rejected": "x"}] + good),
        "zero_rows": split_root("zero", raw=b""),
        "not_utf8": split_root("latin", raw=b'{"chosen": "\xe9", "rejected": "x"}\n'),
        "bad_json": split_root("json", raw=b'{"chosen": "a", "rejected"\n'),
        "not_object": split_root("array", raw=b'[1, 2]\n'),
        "split_is_dir": split_root("dir", raw="dir"),
        "sums_mismatch": split_root("sums", sums="0" * 64 + "  s/test.jsonl\n"),
        "sums_malformed": split_root("sumsbad", sums="deadbeef\n"),
        "sums_not_utf8": split_root("sumslatin", sums=None),
    }
    (ns.split_bad["sums_not_utf8"] / "SHA256SUMS").write_bytes(b"\xff\xfe  s/test.jsonl\n")
    # tables
    ns.pref_df = pd.DataFrame({"prompt": [f"Q{i}" for i in range(6)],
                               "chosen": [f" a{i}" for i in range(6)],
                               "rejected": [f" b{i}" for i in range(6)]})
    ns.cls_df = pd.DataFrame({"text": [f"t{i}" for i in range(6)], "label": [0, 1, 2] * 2})
    ns.csv = root / "pref.csv"
    ns.pref_df.to_csv(ns.csv, index=False)
    ns.txt = root / "pref.txt"
    ns.txt.write_text("a,b\n")
    ns.csv_latin = root / "latin.csv"
    ns.csv_latin.write_bytes(b"chosen,rejected\n\xe9,x\n\xe9,y\n\xe9,z\n")
    ns.csv_missing_cell = root / "missing_cell.csv"
    ns.csv_missing_cell.write_text("chosen,rejected\na,x\n,y\nc,z\nd,w\ne,v\nf,u\n")
    # the hub layout of Anthropic/hh-rlhf (gzipped JSONL per split)
    ns.hub = root / "hh-rlhf"
    (ns.hub / "harmless-base").mkdir(parents=True)
    for sp, n in (("train", 12), ("test", 6)):
        with gzip.open(ns.hub / "harmless-base" / f"{sp}.jsonl.gz", "wt") as fh:
            for i in range(n):
                d = f"\n\nHuman: q{i}\n\nAssistant: a{i}"
                fh.write(json.dumps({"chosen": d + " yes", "rejected": d + " no"}) + "\n")
    ns.hub_cache = root / "hf_datasets_cache"
    # model folders
    ns.no_config = root / "model_no_config"
    ns.no_config.mkdir()
    ns.bad_config = root / "model_bad_config"
    ns.bad_config.mkdir()
    (ns.bad_config / "config.json").write_text("not json")
    # TOML
    ns.toml = root / "ok.toml"
    ns.toml.write_text("[train]\nlr = 0.001\n")
    ns.toml_bad = root / "bad.toml"
    ns.toml_bad.write_text("[train\nlr = \n")
    ns.toml_bin = root / "bin.toml"
    ns.toml_bin.write_bytes(b"\x00\x01\x02")
    # a repository root for the ledger (a folder with experiments/ in it)
    ns.ledger_root = root / "ledger_root"
    (ns.ledger_root / "experiments").mkdir(parents=True)
    ns.paper_ref = Path(ledger.__file__).resolve().parents[2] / "experiments" / "paper_reference"
    ns.analysis_plan = ns.paper_ref.parent / "analysis.toml"
    # result tables on disk
    ns.rt_garbled = root / "garbled.csv"
    ns.rt_garbled.write_text('run_key,acc\n"a,0.5\n')
    ns.rt_nokey = root / "nokey.csv"
    ns.rt_nokey.write_text("acc\n0.5\n")
    return ns


@functools.cache
def tiny_model_dir() -> Path:
    """A seeded 2-layer BERT (hidden 32) with all-MiniLM-L6-v2's tokenizer (as golden.py)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from w2s_theory.models import model_dir

    path = FX().root / "tiny_bert"
    tok = AutoTokenizer.from_pretrained(str(model_dir("all-MiniLM-L6-v2")), local_files_only=True)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg, add_pooling_layer=False).save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


@functools.cache
def model_without_tokenizer() -> Path:
    src = tiny_model_dir()
    dst = FX().root / "tiny_bert_no_tokenizer"
    dst.mkdir()
    for f in src.iterdir():
        if f.name in ("config.json",) or f.suffix in (".safetensors", ".bin"):
            shutil.copy(f, dst / f.name)
    return dst


@functools.cache
def model_without_weights() -> Path:
    src = tiny_model_dir()
    dst = FX().root / "tiny_bert_no_weights"
    dst.mkdir()
    for f in src.iterdir():
        if f.suffix not in (".safetensors", ".bin"):
            shutil.copy(f, dst / f.name)
    return dst


def fx(attr, *keys):
    """A lazy fixture value: ``fx("split_bad", "chosen_null")``."""
    def make():
        v = getattr(FX(), attr)
        for k in keys:
            v = v[k]
        return v
    return Lazy(make)


# ----------------------------------------------------------------------------- bad value families
def _meta(shape):
    return torch.empty(shape, device="meta")


def _sparse(n):
    return torch.eye(n, dtype=torch.float64).to_sparse()


def obj_bad(*, none=True) -> list:
    """Values of no sensible kind for any argument."""
    out = [("object", object()), ("function", len), ("set", {1}), ("complex", 1j)]
    return out + ([("none", None)] if none else [])


def text_bad(*, empty=True, none=True) -> list:
    out = [("int", 5), ("float", 1.5), ("bool", True), ("bytes", b"x"), ("list", ["x"]),
           ("dict", {"x": 1}), ("tuple", ("x",)), ("ndarray", np.array(["x"])),
           ("tensor", torch.tensor([1.0])), ("nan", float("nan"))] + obj_bad(none=none)
    return out + ([("empty", "")] if empty else [])


def choice_bad(valid: str) -> list:
    return [("none", None), ("int", 1), ("list", [valid]), ("unknown", "bogus"),
            ("bytes", valid.encode()), ("upper", valid.upper()), ("padded", f" {valid} "),
            ("empty", "")]


def bool_bad(*, none=True) -> list:
    out = [("int_one", 1), ("int_zero", 0), ("string_true", "true"), ("string_false", "false"),
           ("float", 1.0), ("list", [True]), ("array", np.array([True, False])),
           ("tensor_1d", torch.tensor([True, False]))]
    return out + ([("none", None)] if none else [])


def num_bad(low=None, high=None, low_open=False, extra=(), none=True) -> list:
    out = [("numeric_string", "0.01"), ("true", True), ("false", False),
           ("nan", float("nan")), ("inf", float("inf")), ("-inf", -float("inf")),
           ("complex", 1j), ("list", [0.1]), ("array_1d", np.array([0.1])),
           ("tensor_1d", torch.tensor([0.1])), ("bool_tensor", torch.tensor(True)),
           ("meta_tensor", _meta(())), ("dict", {}), ("np_str", np.str_("0.1"))]
    if none:
        out.append(("none", None))
    if low is not None:
        out.append(("below_low", low - 1.0))
        out.append(("far_below", low - 1e12))
        if low_open:
            out.append(("at_open_low", low))
    if high is not None:
        out.append(("above_high", high + 1.0))
        out.append(("huge", 1e300))
    return out + list(extra)


def int_bad(low=None, high=None, none=True) -> list:
    out = [("float", 2.5), ("integral_float", 3.0), ("string", "3"), ("true", True),
           ("false", False), ("np_float", np.float64(3.0)), ("float_tensor", torch.tensor(3.0)),
           ("list", [3]), ("nan", float("nan")), ("inf", float("inf")), ("complex", 3j),
           ("array_1d", np.array([3]))]
    if none:
        out.append(("none", None))
    if low is not None:
        out.append(("below_low", low - 1))
        out.append(("very_negative", -10**12))
    if high is not None:
        out.append(("above_high", high + 1))
    return out


SEED_BAD = int_bad(low=0)


def sizes_bad() -> list:
    """Bad (train_gt, train_w2s, test) sizes."""
    return [("none", None), ("string", "444"), ("int", 4), ("float", 4.0), ("two", (4, 4)),
            ("four", (4, 4, 4, 4)), ("floats", (4.0, 4, 4)), ("fractional", (4.5, 4, 3)),
            ("bools", (True, 4, 4)), ("zero", (0, 4, 4)), ("negative", (-1, 4, 4)),
            ("strings", ("4", "4", "4")), ("nested", ((4,), 4, 4)), ("dict", {"a": 4}),
            ("set", {4, 5, 6}), ("float_array", np.array([4.0, 4.0, 4.0])),
            ("huge", (10**12, 4, 4)), ("nan", (float("nan"), 4, 4)),
            ("tensor_float", torch.tensor([4.0, 4.0, 4.0])), ("none_inside", (None, 4, 4))]


def path_bad(kind: str, *, none=True) -> list:
    """Bad paths: ``kind`` is ``dir`` (an existing folder), ``file`` (an existing file) or
    ``out`` (a file to write) or ``any`` (a folder or file that may be missing)."""
    out = [("int", 5), ("float", 1.5), ("bool", True), ("list", ["x"]), ("dict", {"x": 1}),
           ("tensor", torch.tensor(1.0)), ("empty", ""), ("nul_byte", "a\x00b"),
           ("bytes", b"/tmp"), ("object", object())]
    if none:
        out.append(("none", None))
    if kind == "dir":
        out += [("missing", fx("missing")), ("file_not_dir", fx("file"))]
    elif kind == "file":
        out += [("missing", fx("missing")), ("dir_not_file", fx("empty_dir"))]
    elif kind == "out":
        out += [("dir_not_file", fx("empty_dir")),
                ("parent_is_file", Lazy(lambda: FX().file / "sub" / "x.csv"))]
    return out


def series_bad(n: int, *, low=None, high=None) -> list:
    out = [("nan", np.array([0.1, np.nan] + [0.3] * (n - 2))), ("inf", np.full(n, np.inf)),
           ("strings", np.array(["a"] * n)), ("numeric_strings", ["0.5"] * n), ("none", None),
           ("two_d", np.zeros((n, 2))), ("object", np.array([None] * n, dtype=object)),
           ("meta_tensor", _meta((n,))), ("string", "0.5"), ("scalar", 0.5),
           ("complex", np.full(n, 0.5 + 1j)), ("dict", {"a": 1}),
           ("bool_array", np.array([True, False] * n)[:n]), ("ragged", [[0.1], [0.2, 0.3]])]
    if low is not None:
        out.append(("below_low", np.full(n, low - 0.5)))
    if high is not None:
        out.append(("above_high", np.full(n, high + 0.5)))
    return out


def tensor_bad(z: torch.Tensor) -> list:
    """Bad float tensors for an argument whose valid value is ``z``."""
    a = z.clone()
    a.view(-1)[0] = float("nan")
    b = z.clone()
    b.view(-1)[0] = float("inf")
    return [("nan", a), ("inf", b), ("numpy", z.numpy()), ("int_tensor", z.long()),
            ("bool_tensor", z > 0), ("none", None), ("string", "0.1"), ("number", 0.5),
            ("meta_tensor", _meta(tuple(z.shape))), ("complex", z.to(torch.complex128)),
            ("ndim_plus", z.unsqueeze(0).unsqueeze(0)), ("empty", z[:0]),
            ("sparse", z.to_sparse()), ("dict", {"x": z})]


# ----------------------------------------------------------------------------- helpers for entries
Z = torch.tensor([0.1, -2.0, 3.0], dtype=torch.float64)
Y = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)


def _w2s_forward(logits, weak_probs):
    return trainers.W2SLoss("reverse_kl")(logits, weak_probs)


def _conf_forward(logits, weak_probs, alpha):
    m = trainers.ConfidenceW2SLoss("forward_ce", buffer_size=8, min_count=2)
    m(Z, Y, 0.5)                                          # fill the buffer past min_count
    return m(logits, weak_probs, alpha)


def _soft_call(outputs, labels, num_items_in_batch):
    return trainers.soft_label_loss("forward_ce")(outputs, labels,
                                                  num_items_in_batch=num_items_in_batch)


def _collate(examples):
    return trainers.weak_preference_collator(0)(examples)


def _ex(**over):
    base = {"chosen_ids": [1, 2], "rejected_ids": [1, 3], "weak_label": 0.7}
    return [dict(base, **over), base]


def _training_args():
    from transformers import TrainingArguments

    return TrainingArguments(output_dir=str(FX().root / "trainer_out"), report_to=[],
                             use_cpu=True, per_device_train_batch_size=2)


class _TinyReg(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 1)

    def forward(self, x, labels=None):
        return {"logits": self.lin(x)}


def _soft_trainer(w2s_loss, w2s_eps, compute_loss_func):
    return trainers.SoftLabelTrainer(model=_TinyReg(), args=_training_args(), w2s_loss=w2s_loss,
                                     w2s_eps=w2s_eps, compute_loss_func=compute_loss_func)


@functools.cache
def _minilm_tokenizer():
    from transformers import AutoTokenizer

    from w2s_theory.models import model_dir

    return AutoTokenizer.from_pretrained(str(model_dir("all-MiniLM-L6-v2")), local_files_only=True)


def _reward_trainer(w2s_loss, w2s_eps, processing_class):
    import datasets
    from transformers import BertConfig, BertForSequenceClassification
    from trl import RewardConfig

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32, num_labels=1)
    model = BertForSequenceClassification(cfg)
    ds = datasets.Dataset.from_dict({"chosen_ids": [[5, 6, 7], [8, 9]],
                                     "rejected_ids": [[5, 6], [8, 9, 10]],
                                     "weak_label": [0.7, 0.4]})
    args = RewardConfig(output_dir=str(FX().root / "reward_out"), report_to=[], use_cpu=True,
                        save_strategy="no", logging_strategy="no", max_length=None,
                        per_device_train_batch_size=2)
    return trainers.WeakRewardTrainer(model=model, args=args, train_dataset=ds,
                                      processing_class=processing_class, w2s_loss=w2s_loss,
                                      w2s_eps=w2s_eps)


class _NoPad:
    pad_token_id = None


def _pool(hidden, mask, how):
    return hub.pool(hidden, mask, how)


H = torch.arange(12.0).view(2, 3, 2)
M = torch.tensor([[1, 1, 0], [0, 1, 1]])


def _bert_config():
    from transformers import BertConfig

    return BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=8)


def _fresh_csv() -> Path:
    return Path(tempfile.mkdtemp(dir=FX().root)) / "r.csv"


def _rt(path, lock_timeout=1.0, schema=None):
    return results_table.ResultTable(path, lock_timeout=lock_timeout, schema=schema)


def _rt_filled():
    t = _rt(_fresh_csv())
    t.append({"run_key": "a", "acc": 0.5, "loss": "reverse_kl"})
    return t


def _written_table() -> Path:
    t = _rt(_fresh_csv())
    t.extend([{"run_key": "a", "acc": 0.5, "loss": "reverse_kl"},
              {"run_key": "b", "acc": 0.6, "loss": "forward_kl"}])
    return t.path


def _rt_has(key):
    return _rt_filled().has(key)


def _rt_append(row):
    t = _rt(_fresh_csv())
    t.append(row)
    return t.frame()


def _rt_extend(rows):
    t = _rt(_fresh_csv())
    t.extend(rows)
    return t.frame()


def _rt_to_latex(columns, float_format):
    return _rt_filled().to_latex(columns, float_format=float_format)


def _rt_to_markdown(columns, float_format):
    return _rt_filled().to_markdown(columns, float_format=float_format)


ROWS = [{"loss": "reverse_kl", "acc": 0.91234, "n": 3}, {"loss": "forward_kl", "acc": 0.9, "n": 4}]


def _result():
    from w2s_theory.bounds import theorem2

    return theorem2([0.9, 0.2], [0.6, 0.5], [0.9, 0.2])


def _te_latex(caption, label, float_format):
    return _result().to_latex(caption=caption, label=label, float_format=float_format)


def _te_markdown(float_format):
    return _result().to_markdown(float_format=float_format)


FLOAT_FORMAT_BAD = [("percent_style", "%.3f"), ("no_field", "acc"), ("two_fields", "{:.3f} {:.2f}"),
                    ("int_spec", "{:d}"), ("named_field", "{x:.3f}"), ("index_1", "{1}"),
                    ("unclosed", "{:.3f"), ("empty", ""), ("none", None), ("int", 3),
                    ("bytes", b"{:.3f}"), ("list", ["{:.3f}"]), ("callable", "{:.3f}".format),
                    ("string_spec", "{:s}"), ("attr_field", "{0.real}")]


def table_bad() -> list:
    return [("none", None), ("int", 5), ("string", "loss,acc"), ("bytes", b"x"),
            ("empty_list", []), ("empty_dict", {}), ("list_of_int", [1, 2]),
            ("list_of_list", [["a", 1]]), ("ragged_columns", {"a": [1, 2], "b": [1]}),
            ("scalar_columns", {"a": 1, "b": 2}), ("string_column", {"a": "xyz"}),
            ("ndarray", np.zeros((2, 2))), ("series", pd.Series([1, 2])),
            ("empty_frame", pd.DataFrame()), ("set", {1, 2}), ("generator", (r for r in ROWS)),
            ("array_cell", [{"a": np.zeros(3)}]), ("tensor_cell", [{"a": torch.zeros(2)}]),
            ("list_of_none", [None]), ("tensor", torch.zeros(2, 2)), ("object", object())]


def _frame_dup_cols():
    return pd.DataFrame([[1, 2]], columns=["a", "a"])


def _file_path(kwargs):
    v = kwargs.get("path")
    return [str(v)] if isinstance(v, (str, os.PathLike)) and str(v) else []


def _where(kwargs):
    w = kwargs.get("where")
    return [w, f"[{w}]"] if isinstance(w, str) and w else []


def _source_spec(**over):
    return {"kind": "table", "data": str(FX().csv), "sizes": [2, 2, 2]} | over


def _spec_bad() -> list:
    L = Lazy

    def csv():
        return str(FX().csv)

    return [("none", None), ("int", 5), ("string", "table"), ("list", [("kind", "table")]),
            ("empty", {}), ("unknown_kind", {"kind": "bogus"}), ("kind_int", {"kind": 5}),
            ("kind_list", {"kind": ["table"]}),
            ("table_no_data", {"kind": "table", "sizes": [1, 1, 1]}),
            ("table_no_sizes", L(lambda: {"kind": "table", "data": csv()})),
            ("sizes_two", L(lambda: _source_spec(sizes=[1, 1]))),
            ("sizes_bool", L(lambda: _source_spec(sizes=[True, 1, 1]))),
            ("sizes_str", L(lambda: _source_spec(sizes="111"))),
            ("data_int", {"kind": "table", "data": 5, "sizes": [1, 1, 1]}),
            ("data_list", {"kind": "table", "data": ["x.csv"], "sizes": [1, 1, 1]}),
            ("task_bogus", L(lambda: _source_spec(task="regression"))),
            ("task_list", L(lambda: _source_spec(task=["preference"]))),
            ("seed_negative", L(lambda: _source_spec(seed=-1))),
            ("seed_string", L(lambda: _source_spec(seed="0"))),
            ("seed_float", L(lambda: _source_spec(seed=1.5))),
            ("columns_string", L(lambda: _source_spec(columns="chosen"))),
            ("columns_int_value", L(lambda: _source_spec(columns={"chosen": 5}))),
            ("split_column_int", L(lambda: _source_spec(split_column=3, sizes=None))),
            ("name_int", L(lambda: _source_spec(name=5))),
            ("unknown_key", L(lambda: _source_spec(lr=0.1))),
            ("split_files_root_int", {"kind": "split_files", "root": 5, "name": "s"}),
            ("split_files_name_list", {"kind": "split_files", "root": "x", "name": ["s"]}),
            ("split_files_naming", {"kind": "split_files", "root": "x", "name": "s",
                                    "naming": "flat"}),
            ("split_files_verify", {"kind": "split_files", "root": "x", "name": "s",
                                    "verify": True}),
            ("hub_single_turn_str", {"kind": "hh_rlhf_hub", "single_turn": "yes"}),
            ("hub_cache_dir_int", {"kind": "hh_rlhf_hub", "cache_dir": 5}),
            ("hub_path_int", {"kind": "hh_rlhf_hub", "path": 5}),
            ("hub_revision_int", {"kind": "hh_rlhf_hub", "revision": 5}),
            ("hub_data_dir_int", {"kind": "hh_rlhf_hub", "data_dir": 5}),
            ("hh_subset", {"kind": "hh_rlhf", "subset": "harmful"}),
            ("hh_root_int", {"kind": "hh_rlhf", "root": 5})]


def _split_content_bad() -> list:
    return [(f"content_{k}", fx("split_bad", k)) for k in (
        "chosen_null", "chosen_int", "chosen_list", "chosen_mixed", "no_rejected", "prompt_int",
        "chosen_empty", "zero_rows", "not_utf8", "bad_json", "not_object", "split_is_dir",
        "sums_mismatch", "sums_malformed", "sums_not_utf8")]


def _frame_bad() -> list:
    df = FX().pref_df
    return [
        ("missing_cell_none", df.assign(chosen=[None] + list(df.chosen[1:]))),
        ("missing_cell_nan", df.assign(rejected=[np.nan] + list(df.rejected[1:]))),
        ("int_columns", pd.DataFrame({"prompt": [1] * 6, "chosen": list(range(6)),
                                      "rejected": list(range(6, 12))})),
        ("int_prompt", df.assign(prompt=list(range(6)))),
        ("float_reply", df.assign(chosen=[0.5] * 6)),
        ("list_cells", df.assign(chosen=[["a"]] * 6)),
        ("bytes_cells", df.assign(chosen=[b"a"] * 6)),
        ("empty_reply", df.assign(rejected=[""] + list(df.rejected[1:]))),
        ("missing_column", df.drop(columns="rejected")),
        ("no_rows", df.iloc[:0]),
        ("series", df["chosen"]),
        ("records", df.to_dict("records")),
        ("columns_dict", df.to_dict("list")),
        ("ndarray", df.to_numpy()),
    ]


def _cls_frame_bad() -> list:
    df = FX().cls_df
    return [("string_labels", df.assign(label=["pos", "neg"] * 3)),
            ("float_labels", df.assign(label=[0.0, 1.0, 2.0] * 2)),
            ("fractional_labels", df.assign(label=[0.5] * 6)),
            ("negative_labels", df.assign(label=[-1, 0, 1] * 2)),
            ("nan_labels", df.assign(label=[np.nan, 1.0, 0.0] * 2)),
            ("bool_labels", df.assign(label=[True, False] * 3)),
            ("one_class", df.assign(label=[0] * 6)),
            ("missing_text", df.assign(text=[None] + list(df.text[1:]))),
            ("int_text", df.assign(text=list(range(6)))),
            ("missing_label_column", df.drop(columns="label"))]


def _columns_bad(task="preference") -> list:
    role = "chosen" if task == "preference" else "text"
    return [("string", role), ("int", 5), ("list", [role]), ("value_int", {role: 5}),
            ("value_list", {role: [role]}), ("value_missing_column", {role: "nope"}),
            ("unknown_role", {"answer": role}), ("role_int", {5: role}),
            ("value_empty", {role: ""}), ("both_same", {"chosen": "chosen", "rejected": "chosen"}
                                          if task == "preference" else {"text": "label"})]


def _user_table() -> pd.DataFrame:
    """A researcher's own result table: two losses, two splits, two seeds."""
    return pd.DataFrame({"loss": ["forward_kl", "reverse_kl"] * 4, "seed": [0, 0, 1, 1] * 2,
                         "split": [0] * 4 + [1] * 4,
                         "student_acc": [.60, .61, .60, .62, .61, .62, .60, .61]})


@functools.cache
def _user_plan():
    return plan.default_plan(_user_table())


@functools.cache
def _user_ledger():
    return ledger.build(_user_plan(), {plan.DEFAULT_TABLE: _user_table()})


def _check_user_ledger(led):
    r = led.rows.iloc[0]                               # reverse - forward: +1, +2, +1, +1 pts
    assert r["setting"] == "all" and int(r["n_splits"]) == 2
    assert float(r["effect_pts"]) == pytest.approx(1.25)


def _check_written(paths):
    assert [p.name for p in paths] == list(ledger.LEDGER_FILES)
    assert all(p.is_file() for p in paths)


def _check_committed_plan(p):
    assert isinstance(p, plan.Plan) and len(p.families) > 0


def _check_user_plan(p):
    assert [f.id for f in p.families] == ["reverse_kl.vs.forward_kl.noise0"]


def _check_true(r):
    assert r is True


def _user_frame_bad() -> list:
    t = _user_table()
    return [("none", None), ("int", 5), ("string", "results.csv"), ("list", [{"loss": "x"}]),
            ("dict", {"loss": ["forward_kl"]}), ("series", t["loss"]),
            ("ndarray", np.zeros((2, 2))), ("empty_frame", pd.DataFrame()),
            ("no_loss", t.drop(columns="loss")), ("no_seed", t.drop(columns="seed")),
            ("no_student_acc", t.drop(columns="student_acc")),
            ("unknown_loss", t.assign(loss=["forward_kl", "bogus_loss"] * 4))]


def _ledger_bad() -> list:
    return [("none", None), ("int", 5), ("string", "ledger.csv"), ("dict", {"rows": []}),
            ("frame", pd.DataFrame({"family": ["x"]})), ("plan", Lazy(_user_plan))]


@dataclass(frozen=True)
class _MappedConfig:
    """A one-field config for `config.from_mapping`'s entry."""

    a: int = 1


# ----------------------------------------------------------------------------- the registry
def _registry() -> list[Entry]:
    E: list[Entry] = []

    # ---------------------------------------------------------------- trainers
    eps_bad = num_bad(low=0.0, high=0.5, low_open=True, extra=[("at_half", 0.5)])
    loss_bad = choice_bad("reverse_kl") + [("confidence", "confidence")]
    E.append(Entry("trainers", "W2SLoss", trainers.W2SLoss,
                   {"loss": "reverse_kl", "eps": 1e-6, "reduction": "mean", "check": True},
                   {"loss": loss_bad, "eps": eps_bad, "reduction": choice_bad("mean"),
                    "check": bool_bad()}))
    E.append(Entry("trainers", "W2SLoss.forward", _w2s_forward, {"logits": Z, "weak_probs": Y},
                   {"logits": tensor_bad(Z) + [("list", Z.tolist()), ("short", Z[:2])],
                    "weak_probs": tensor_bad(Y)[:1] + [
                        ("above_one", torch.tensor([0.2, 1.5, 0.9])),
                        ("negative", torch.tensor([-0.2, 0.5, 0.9])),
                        ("short", torch.tensor([0.2, 0.5])), ("none", None), ("string", "0.5"),
                        ("strings", ["a", "b", "c"]), ("meta_tensor", _meta((3,))),
                        ("complex", Y.to(torch.complex128)), ("object", np.array([None] * 3)),
                        ("kclass_for_binary", torch.full((3, 3), 1 / 3))]}))
    E.append(Entry("trainers", "ConfidenceW2SLoss", trainers.ConfidenceW2SLoss,
                   {"base": "forward_ce", "buffer_size": 8, "min_count": 2, "eps": 1e-6},
                   {"base": choice_bad("forward_ce"), "buffer_size": int_bad(low=1),
                    "min_count": int_bad(low=1) + [("above_buffer", 9)], "eps": eps_bad}))
    E.append(Entry("trainers", "ConfidenceW2SLoss.forward", _conf_forward,
                   {"logits": Z, "weak_probs": Y, "alpha": 0.5},
                   {"logits": tensor_bad(Z), "alpha": num_bad(low=0.0, high=1.0),
                    "weak_probs": [("above_one", torch.tensor([0.2, 1.5, 0.9])), ("none", None),
                                   ("string", "0.5"), ("meta_tensor", _meta((3,))),
                                   ("nan", torch.tensor([0.2, float("nan"), 0.9]))]}))
    E.append(Entry("trainers", "soft_label_loss", trainers.soft_label_loss,
                   {"loss": "forward_ce", "eps": 1e-6, "check": True},
                   {"loss": loss_bad, "eps": eps_bad, "check": bool_bad()}))
    out_ok = types.SimpleNamespace(logits=torch.zeros(3, 1, dtype=torch.float64))
    E.append(Entry("trainers", "soft_label_loss.call", _soft_call,
                   {"outputs": out_ok, "labels": Y, "num_items_in_batch": 3},
                   {"outputs": [("none", None), ("int", 5), ("dict_no_logits", {"x": 1}),
                                ("object_no_logits", object()), ("list", [[0.0]] * 3),
                                ("dict_logits_list", {"logits": [0.1, 0.2, 0.3]}),
                                ("nan_logits", {"logits": torch.tensor([[float("nan")]] * 3)})],
                    "labels": [("strings", ["a", "b", "c"]), ("none", None), ("string", "0.5"),
                               ("above_one", torch.tensor([0.2, 1.5, 0.9])),
                               ("short", torch.tensor([0.2, 0.5])),
                               ("meta_tensor", _meta((3,)))],
                    # a 0-d float tensor holding a whole count is accepted (Trainer's gathered
                    # counts); see VARIANTS
                    "num_items_in_batch": [c for c in int_bad(low=1, none=False)
                                           if c[0] != "float_tensor"] + [
                        ("zero", 0), ("negative_tensor", torch.tensor(-3)),
                        ("fractional_tensor", torch.tensor(2.5))]}))
    # align only reshapes: the values (NaN, inf) are checked by the losses on every call, or
    # once with check=False (no host synchronisation per step); W2SLoss.forward has those cases
    E.append(Entry("trainers", "align", trainers.align, {"logits": Z, "labels": Y},
                   {"logits": [c for c in tensor_bad(Z) if c[0] not in ("nan", "inf")] + [
                       ("list", Z.tolist()),
                                               ("three_class", torch.zeros(3, 3))],
                    "labels": [("strings", ["a", "b", "c"]), ("none", None), ("string", "0.5"),
                               ("meta_tensor", _meta((3,))), ("short", torch.tensor([0.2])),
                               ("complex", Y.to(torch.complex128)),
                               ("two_d_mismatch", torch.full((3, 4), 0.25))]}))
    E.append(Entry("trainers", "weak_preference_collator", trainers.weak_preference_collator,
                   {"pad_token_id": 0}, {"pad_token_id": int_bad(low=0)}))
    # a bad example is reported by the column it lacks or holds wrongly (weak_label)
    E.append(Entry("trainers", "weak_preference_collator.call", _collate, {"examples": _ex()},
                   {"examples": [("none", None), ("empty", []), ("dict", _ex()[0]),
                                 ("no_weak_label", [{"chosen_ids": [1], "rejected_ids": [2]}]),
                                 ("label_string", _ex(weak_label="0.7")),
                                 ("label_nan", _ex(weak_label=float("nan"))),
                                 ("label_above_one", _ex(weak_label=1.5)),
                                 ("label_negative", _ex(weak_label=-0.1)),
                                 ("label_none", _ex(weak_label=None)),
                                 ("label_bool", _ex(weak_label=True)),
                                 ("label_list", _ex(weak_label=[0.7]))]},
                   prefixes={"examples": lambda kw: ["weak_label:"]}))
    E.append(Entry("trainers", "WeakRewardTrainer", _reward_trainer,
                   {"w2s_loss": "reverse_kl", "w2s_eps": 1e-6,
                    "processing_class": Lazy(_minilm_tokenizer)},
                   {"w2s_loss": loss_bad, "w2s_eps": eps_bad,
                    "processing_class": [("none", None), ("no_pad_token", _NoPad()),
                                         ("string", "bert")]}))
    E.append(Entry("trainers", "SoftLabelTrainer", _soft_trainer,
                   {"w2s_loss": "reverse_kl", "w2s_eps": 1e-6, "compute_loss_func": None},
                   {"w2s_loss": choice_bad("reverse_kl"), "w2s_eps": eps_bad,   # "confidence" is valid here
                    "compute_loss_func": [("function", len), ("string", "x")]}))
    E.append(Entry("trainers", "confidence_loss_func", trainers.confidence_loss_func,
                   {"alpha": lambda: 0.5, "base": "forward_ce", "buffer_size": 8, "min_count": 2,
                    "eps": 1e-6},
                   {"alpha": [("none", None), ("number", 0.5), ("string", "x")],
                    "base": choice_bad("forward_ce"), "buffer_size": int_bad(low=1),
                    "min_count": int_bad(low=1) + [("above_buffer", 9)], "eps": eps_bad}))

    # ---------------------------------------------------------------- sources
    E.append(Entry("sources", "split_indices", sources.split_indices,
                   {"n_train": 12, "n_test": None, "sizes": (4, 4, 4), "seed": 0},
                   {"n_train": int_bad(low=0), "n_test": int_bad(low=0, none=False),
                    "sizes": sizes_bad(), "seed": SEED_BAD}))
    E.append(Entry("sources", "split_indices[two_pools]", sources.split_indices,
                   {"n_train": 8, "n_test": 5, "sizes": (4, 4, 5), "seed": 0},
                   {"n_test": [("negative", -1), ("string", "5"), ("float", 5.0)],
                    "sizes": [("test_too_big", (4, 4, 6)), ("train_too_big", (5, 4, 5))]}))
    E.append(Entry("sources", "is_single_turn", sources.is_single_turn,
                   {"dialogue": "\n\nHuman: hi\n\nAssistant: hello"},
                   {"dialogue": text_bad(empty=False)}))
    E.append(Entry("sources", "from_split_files", sources.from_split_files,
                   {"root": fx("split"), "name": "s", "naming": "folder", "columns": None,
                    "verify": "auto"},
                   {"root": path_bad("dir") + _split_content_bad(),
                    "name": text_bad() + [("missing_subset", "nope"), ("traversal", "../x"),
                                          ("absolute", "/etc")],
                    "naming": choice_bad("folder"),
                    "columns": _columns_bad() + [("dict_none_value", {"chosen": None})],
                    "verify": choice_bad("auto") + [("sha256_without_sums", "sha256"),
                                                    ("bool", True)]}))
    E.append(Entry("sources", "from_hh_rlhf_hub", sources.from_hh_rlhf_hub,
                   {"data_dir": "harmless-base", "path": Lazy(lambda: str(FX().hub)),
                    "sizes": (4, 4, 3), "seed": 0, "single_turn": False, "revision": None,
                    "cache_dir": Lazy(lambda: str(FX().hub_cache))},
                   {"data_dir": text_bad(none=False) + [("missing", "nope")],
                    "sizes": sizes_bad() + [("too_big", (8, 8, 3))],
                    "seed": SEED_BAD, "single_turn": bool_bad(),
                    "path": path_bad("any") + [("missing_folder", Lazy(lambda: str(FX().missing)))],
                    "revision": text_bad(none=False),
                    "cache_dir": path_bad("any", none=False) + [("file", fx("file"))]}))
    E.append(Entry("sources", "from_table", sources.from_table,
                   {"data": fx("pref_df"), "task": "preference", "columns": None,
                    "sizes": (2, 2, 2), "seed": 0, "split_column": None, "name": "table"},
                   {"data": path_bad("file") + [
                       ("txt_file", fx("txt")), ("csv_not_utf8", fx("csv_latin")),
                       ("empty_csv", fx("empty_file")), ("csv_missing_cell", fx("csv_missing_cell"))]
                    + [(lab, Lazy(lambda lab=lab: dict(_frame_bad())[lab])) for lab in (
                        "missing_cell_none", "missing_cell_nan", "int_columns", "int_prompt",
                        "float_reply", "list_cells", "bytes_cells", "empty_reply",
                        "missing_column", "no_rows", "series", "records",
                        "columns_dict", "ndarray")],
                    "task": choice_bad("preference"), "columns": _columns_bad(),
                    "sizes": sizes_bad(), "seed": SEED_BAD,
                    "split_column": text_bad(none=False),
                    "name": text_bad()}))
    E.append(Entry("sources", "from_table[classification]", sources.from_table,
                   {"data": fx("cls_df"), "task": "classification", "columns": None,
                    "sizes": (2, 2, 2), "seed": 0, "split_column": None, "name": "table"},
                   {"data": [(lab, Lazy(lambda lab=lab: dict(_cls_frame_bad())[lab]))
                             for lab in ("string_labels", "float_labels", "fractional_labels",
                                         "negative_labels", "nan_labels", "bool_labels",
                                         "one_class", "missing_text", "int_text",
                                         "missing_label_column")],
                    "columns": _columns_bad("classification")}))
    E.append(Entry("sources", "from_table[split_column]", sources.from_table,
                   {"data": Lazy(lambda: FX().pref_df.assign(
                       part=["train_gt", "train_gt", "train_w2s", "train_w2s", "test", "test"])),
                    "sizes": None, "split_column": "part"},
                   {"split_column": [("int", 3), ("missing", "nope"), ("text_column", "chosen"),
                                     ("list", ["part"])],
                    "sizes": [("also_given", (2, 2, 2))]}))
    spec_pref = {"spec": _spec_bad()}
    E.append(Entry("sources", "check_source", sources.check_source,
                   {"spec": Lazy(_source_spec), "where": "source"},
                   spec_pref | {"where": text_bad()}, prefixes={"spec": _where}))
    E.append(Entry("sources", "load_source", sources.load_source,
                   {"spec": Lazy(_source_spec), "where": "source"},
                   spec_pref | {"where": text_bad()} | {"spec": _spec_bad() + [
                       ("data_missing", Lazy(lambda: _source_spec(data=str(FX().missing)))),
                       ("split_root_missing", Lazy(lambda: {"kind": "split_files",
                                                            "root": str(FX().missing), "name": "s"}))]},
                   prefixes={"spec": _where}))
    for nm in ("source_task", "source_name", "describe_source"):
        E.append(Entry("sources", nm, getattr(sources, nm), {"spec": Lazy(_source_spec)},
                       {"spec": _spec_bad()}, prefixes={"spec": lambda kw: ["source", "[source]"]}))
    E.append(Entry("sources", "feature_tag", sources.feature_tag,
                   {"spec": Lazy(_source_spec), "split": "test"},
                   {"spec": _spec_bad(), "split": choice_bad("test")},
                   prefixes={"spec": lambda kw: ["source", "[source]"]}))

    # ---------------------------------------------------------------- hub
    spec_text_bad = text_bad() + [("blank", "   "), ("only_revision", "@main"),
                                  ("empty_revision", "gpt2@"), ("path_object_int", 5)]
    E.append(Entry("hub", "parse_spec", hub.parse_spec, {"spec": "org/name@rev"},
                   {"spec": spec_text_bad}))
    E.append(Entry("hub", "resolve_model", hub.resolve_model,
                   {"spec": "all-MiniLM-L6-v2", "cache_dir": None},
                   {"spec": spec_text_bad + [
                       ("missing_folder", Lazy(lambda: str(FX().missing))),
                       ("file", Lazy(lambda: str(FX().file))),
                       ("folder_without_config", Lazy(lambda: str(FX().no_config))),
                       ("config_not_json", Lazy(lambda: str(FX().bad_config))),
                       ("not_an_id", "not a hub id!"), ("nul_byte", "a\x00b")],
                    "cache_dir": path_bad("any", none=False) + [("file", fx("file"))]}))
    E.append(Entry("hub", "pool", _pool, {"hidden": H, "mask": M, "how": "mean"},
                   {"hidden": tensor_bad(H) + [("two_d", H[0]), ("list", H.tolist())],
                    "mask": [("none", None), ("list", M.tolist()), ("numpy", M.numpy()),
                             ("wrong_shape", M[:, :2]), ("three_d", M[None]),
                             ("all_zero_row", torch.tensor([[1, 1, 0], [0, 0, 0]])),
                             ("fractional", torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 1.0]])),
                             ("negative", torch.tensor([[1, -1, 0], [0, 1, 1]])),
                             ("two", torch.tensor([[2, 1, 0], [0, 1, 1]])),
                             ("nan", torch.tensor([[1.0, float("nan"), 0.0], [0.0, 1.0, 1.0]])),
                             ("meta_tensor", _meta((2, 3))), ("string", "1"),
                             ("sparse", M.to_sparse())],
                    "how": choice_bad("mean")}))
    E.append(Entry("hub", "pool[last]", _pool, {"hidden": H, "mask": M, "how": "last"},
                   {"mask": [("all_zero_row", torch.tensor([[0, 0, 0], [0, 1, 1]])),
                             ("fractional", torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 1.0]]))]}))
    cfg_bad = [("none", None), ("int", 5), ("string", "gpt2"), ("dict", {"model_type": "gpt2"}),
               ("object", object()), ("list", ["gpt2"])]
    for nm in ("is_decoder", "default_pooling"):
        E.append(Entry("hub", nm, getattr(hub, nm), {"config": Lazy(_bert_config)},
                       {"config": cfg_bad}))
    E.append(Entry("hub", "load_auto_model", hub.load_auto_model,
                   {"spec": Lazy(lambda: str(tiny_model_dir())), "dtype": "float32",
                    "cache_dir": None},
                   {"spec": text_bad() + [
                       ("no_tokenizer", Lazy(lambda: str(model_without_tokenizer()))),
                       ("no_weights", Lazy(lambda: str(model_without_weights()))),
                       ("missing_folder", Lazy(lambda: str(FX().missing))),
                       ("folder_without_config", Lazy(lambda: str(FX().no_config)))],
                    "dtype": choice_bad("float32") + [("torch_int", torch.int64),
                                                      ("float64", "float64")],
                    "cache_dir": path_bad("any", none=False)}))
    E.append(Entry("hub", "load", hub.load,
                   {"spec": Lazy(lambda: str(tiny_model_dir())), "auto_class": "AutoModel",
                    "dtype": "float32"},
                   {"spec": text_bad() + [
                       ("no_tokenizer", Lazy(lambda: str(model_without_tokenizer()))),
                       ("no_weights", Lazy(lambda: str(model_without_weights()))),
                       ("missing_folder", Lazy(lambda: str(FX().missing))),
                       ("bare_unknown_name", "no-such-model")],
                    "auto_class": [("none", None), ("int", 5), ("unknown", "AutoBogus"),
                                   ("not_auto", "BertModel"), ("empty", "")],
                    "dtype": [("int", 1), ("unknown", "bogus"), ("upper", "FLOAT32"),
                              ("torch_int", torch.int64), ("float64", "float64")]}))

    # ---------------------------------------------------------------- export
    caption_bad = [("int", 5), ("bytes", b"x"), ("list", ["x"]), ("dict", {}), ("nan", math.nan)]
    label_bad = caption_bad + [("brace", "tab:a}"), ("space", "tab a"), ("empty", ""),
                               ("backslash", "tab\\x"), ("percent", "tab%")]
    E.append(Entry("config", "from_mapping", config.from_mapping,
                   {"cls": _MappedConfig, "data": {"a": 2}},
                   {"cls": [("none", None), ("int", 5), ("plain_class", int)],
                    "data": [("none", None), ("list", [1]), ("string", "a"),
                             ("unknown_key", {"b": 1}), ("wrong_type", {"a": "x"})]},
                   # a config table's errors name the table ("config" at the top level) or the key
                   prefixes={"data": lambda kw: ["config:", "unknown key", "a:"]}))
    E.append(Entry("export", "text_table", export.text_table,
                   {"title": "R", "rows": [("n", "3"), ("holds", "True")]},
                   {"title": [("none", None), ("int", 5), ("bytes", b"R")],
                    "rows": [("none", None), ("empty", []), ("string", "n 3"),
                             ("triple", [("n", "3", "x")]), ("number", [("n", 3)]),
                             ("dict", {"n": "3"})]}))
    E.append(Entry("export", "frame_to_latex", export.frame_to_latex,
                   {"table": ROWS, "caption": None, "label": None, "float_format": "{:.4g}"},
                   {"table": table_bad() + [("duplicate_columns", Lazy(_frame_dup_cols))],
                    "caption": caption_bad, "label": label_bad,
                    "float_format": FLOAT_FORMAT_BAD}))
    E.append(Entry("export", "frame_to_markdown", export.frame_to_markdown,
                   {"table": ROWS, "float_format": "{:.4g}"},
                   {"table": table_bad() + [("duplicate_columns", Lazy(_frame_dup_cols))],
                    "float_format": FLOAT_FORMAT_BAD}))
    res_bad = [("none", None), ("int", 5), ("string", "x"), ("list", [1]),
               ("class", export.TableExport), ("empty_dict", {}), ("object", object()),
               ("array_only", {"a": np.zeros(3)}),
               ("to_dict_not_mapping", types.SimpleNamespace(to_dict=lambda: [1, 2]))]
    E.append(Entry("export", "result_to_latex", export.result_to_latex,
                   {"result": Lazy(_result), "caption": None, "label": None,
                    "float_format": "{:.6g}"},
                   {"result": res_bad, "caption": caption_bad, "label": label_bad,
                    "float_format": FLOAT_FORMAT_BAD}))
    E.append(Entry("export", "result_to_markdown", export.result_to_markdown,
                   {"result": Lazy(_result), "float_format": "{:.6g}"},
                   {"result": res_bad, "float_format": FLOAT_FORMAT_BAD}))
    E.append(Entry("export", "latex_escape", export.latex_escape, {"text": "a_b & 50%"},
                   {"text": [("none", None), ("bytes", b"a_b"), ("list", ["a"]), ("dict", {"a": 1}),
                             ("object", object()), ("ndarray", np.array(["a"])),
                             ("tensor", torch.tensor(1.0)), ("set", {"a"})]}))
    E.append(Entry("export", "TableExport.to_latex", _te_latex,
                   {"caption": None, "label": None, "float_format": "{:.6g}"},
                   {"caption": caption_bad, "label": label_bad, "float_format": FLOAT_FORMAT_BAD}))
    E.append(Entry("export", "TableExport.to_markdown", _te_markdown, {"float_format": "{:.6g}"},
                   {"float_format": FLOAT_FORMAT_BAD}))

    # ---------------------------------------------------------------- config
    toml_path_bad = path_bad("file") + [("not_utf8", fx("not_utf8")), ("not_toml", fx("toml_bad")),
                                        ("binary", fx("toml_bin"))]
    E.append(Entry("config", "read_toml", config.read_toml, {"path": fx("toml")},
                   {"path": toml_path_bad}, prefixes={"path": _file_path}))
    E.append(Entry("config", "load_config", config.load_config,
                   {"path": fx("toml"), "build": dict},
                   {"path": toml_path_bad,
                    "build": [("none", None), ("int", 5), ("string", "dict"), ("dict", {})]},
                   prefixes={"path": _file_path}))
    allowed_bad = [("none", None), ("int", 5), ("string", "lr"), ("list_of_int", [1, 2]),
                   ("dict_values", {"lr": 1}), ("nested", [["lr"]]), ("bytes", b"lr")]
    E.append(Entry("config", "check_keys", config.check_keys,
                   {"table": {"lr": 1}, "allowed": ["lr", "epochs"], "where": "[train]"},
                   {"table": [("none", None), ("int", 5), ("string", "lr"),
                              ("list", [("lr", 1)]), ("unknown_key", {"lrr": 1}),
                              ("int_key", {5: 1}), ("series", pd.Series({"lr": 1}))],
                    "allowed": allowed_bad, "where": text_bad(empty=False)},
                   prefixes={"table": lambda kw: [kw["where"]] if isinstance(kw["where"], str)
                             else []}))
    E.append(Entry("config", "check_selection", config.check_selection,
                   {"table": {"rule": "paper", "params": ["lr"]}, "where": "[selection]"},
                   {"table": [("none", None), ("int", 5), ("string", "paper"),
                              ("unknown_rule", {"rule": "test"}), ("rule_none", {"rule": None}),
                              ("rule_list", {"rule": ["paper"]}), ("rule_dict", {"rule": {}}),
                              ("no_rule", {}), ("source_int", {"rule": "paper", "source": 5}),
                              ("note_list", {"rule": "paper", "note": ["x"]}),
                              ("params_string", {"rule": "paper", "params": "lr"}),
                              ("params_ints", {"rule": "paper", "params": [1]}),
                              ("unknown_key", {"rule": "paper", "why": "x"})],
                    "where": text_bad(empty=False)},
                   prefixes={"table": lambda kw: [kw["where"]] if isinstance(kw["where"], str)
                             else []}))
    E.append(Entry("config", "toml_module", config.toml_module, {}))

    # ---------------------------------------------------------------- ledger
    a3, b3 = [0.70, 0.72, 0.71], [0.60, 0.61, 0.63]
    conf_bad = num_bad(low=0.0, high=1.0, low_open=True, extra=[("at_one", 1.0)])
    E.append(Entry("ledger", "paired_effect", ledger.paired_effect,
                   {"a": a3, "b": b3, "confidence": 0.95},
                   {"a": series_bad(3), "b": series_bad(3) + [("short", [0.1, 0.2])],
                    "confidence": conf_bad}))
    E.append(Entry("ledger", "gap_filter", ledger.gap_filter,
                   {"ceiling": a3, "weak": b3, "confidence": 0.95},
                   {"ceiling": series_bad(3), "weak": series_bad(3) + [("short", [0.1])],
                    "confidence": conf_bad}))
    E.append(Entry("ledger", "pgr_interval", ledger.pgr_interval,
                   {"student": [0.66, 0.67, 0.65], "weak": [0.60, 0.61, 0.60],
                    "ceiling": [0.70, 0.70, 0.71], "confidence": 0.95},
                   {"student": series_bad(3), "weak": series_bad(3),
                    "ceiling": series_bad(3) + [("short", [0.7, 0.7])], "confidence": conf_bad}))
    E.append(Entry("ledger", "holm", ledger.holm, {"pvalues": [0.01, 0.04, 0.03, float("nan")]},
                   {"pvalues": [("inf", [0.01, 0.04, float("inf")]), ("-inf", [0.01, -math.inf]),
                                ("negative", [0.01, -0.1]), ("above_one", [0.01, 1.5]),
                                ("strings", ["0.01", "0.04"]), ("none", None), ("scalar", 0.01),
                                ("two_d", [[0.01, 0.02]]), ("object", np.array([None, 0.1])),
                                ("meta_tensor", _meta((2,))), ("string", "0.01"),
                                ("complex", [0.01 + 1j]), ("dict", {"a": 0.01}),
                                ("bools", [True, False])]}))
    E.append(Entry("ledger", "symmetric_loss_defect", ledger.symmetric_loss_defect,
                   {"loss": "reverse_kl", "y": 0.3, "n_grid": 11},
                   {"loss": choice_bad("reverse_kl"), "y": num_bad(low=0.0, high=1.0),
                    "n_grid": int_bad(low=2) + [("one", 1), ("zero", 0), ("huge", 10**12)]}))
    E.append(Entry("ledger", "paper_patterns", ledger.paper_patterns, {"ref_dir": fx("paper_ref")},
                   {"ref_dir": path_bad("dir", none=False) + [("empty_dir", fx("empty_dir"))]}))
    E.append(Entry("ledger", "build", ledger.build,
                   {"plan": Lazy(_user_plan),
                    "tables": Lazy(lambda: {plan.DEFAULT_TABLE: _user_table()}),
                    "root": fx("ledger_root")},
                   {"plan": [("none", None), ("int", 5), ("path_string", "experiments/analysis.toml"),
                             ("path", fx("analysis_plan")), ("dict", {"family": []}),
                             ("frame", Lazy(_user_table)), ("ledger", Lazy(_user_ledger))],
                    "tables": [("int", 5), ("string", "results.csv"), ("list", [1, 2]),
                               ("frame", Lazy(_user_table)),
                               ("list_value", Lazy(lambda: {plan.DEFAULT_TABLE: [1, 2]})),
                               ("series_value", Lazy(lambda: {plan.DEFAULT_TABLE:
                                                              _user_table()["loss"]})),
                               ("dict_value", Lazy(lambda: {plan.DEFAULT_TABLE:
                                                            _user_table().to_dict()})),
                               ("none_value", {plan.DEFAULT_TABLE: None}),
                               # keys are table paths; the dict holds every table of the plan
                               ("int_key", Lazy(lambda: {5: _user_table()})),
                               ("bytes_key", Lazy(lambda: {plan.DEFAULT_TABLE.encode():
                                                           _user_table()})),
                               ("empty_dict", {}),
                               ("other_table", Lazy(lambda: {"other.csv": _user_table()}))],
                    "root": path_bad("dir", none=False)
                    + [("not_a_repository", fx("empty_dir"))]},
                   check=_check_user_ledger))
    E.append(Entry("ledger", "write", ledger.write,
                   {"ledger": Lazy(_user_ledger), "out_dir": Lazy(lambda: Path(
                       tempfile.mkdtemp(dir=FX().root)) / "out")},
                   {"ledger": _ledger_bad(),
                    "out_dir": path_bad("any") + [("a_file", fx("file")),
                       ("under_a_file", Lazy(lambda: FX().file / "sub"))]},
                   check=_check_written))
    E.append(Entry("ledger", "summary_text", ledger.summary_text, {"ledger": Lazy(_user_ledger)},
                   {"ledger": _ledger_bad()}))

    # ---------------------------------------------------------------- plan
    # load_plan's errors are about the plan file: "plan: <path>: ..." (the config convention)
    plan_file = {"path": lambda kw: ["plan:"]}
    E.append(Entry("plan", "load_plan", plan.load_plan, {"path": fx("analysis_plan")},
                   {"path": [("missing", fx("missing")), ("missing_str", "/nope/analysis.toml"),
                             ("folder", fx("empty_dir")), ("not_toml", fx("toml_bad")),
                             ("binary", fx("toml_bin")), ("not_utf8", fx("not_utf8")),
                             ("csv_not_toml", fx("csv")), ("empty_file", fx("empty_file")),
                             ("toml_not_a_plan", fx("toml"))]
                   + path_bad("any")},
                   prefixes=plan_file,
                   check=_check_committed_plan))
    E.append(Entry("plan", "default_plan", plan.default_plan,
                   {"frame": Lazy(_user_table), "margin": 0.5, "reference": "forward_kl",
                    "table": plan.DEFAULT_TABLE},
                   {"frame": _user_frame_bad(),
                    "table": path_bad("any"),
                    "margin": num_bad(low=0.0, low_open=True)
                    + [("zero", 0.0), ("negative", -0.5)],
                    "reference": text_bad() + [("not_in_table", "reverse_ce"),
                                               ("unknown", "bogus_loss")]},
                   check=_check_user_plan))
    # a predicate over column names (any pandas column label, str()'d): no bad values
    E.append(Entry("plan", "is_test_measured", plan.is_test_measured, {"column": "student_acc"},
                   check=_check_true))

    # ---------------------------------------------------------------- results_table
    E.append(Entry("results_table", "ResultTable", _rt,
                   {"path": Lazy(_fresh_csv), "lock_timeout": 1.0, "schema": None},
                   {"path": path_bad("out") + [("not_utf8", fx("csv_latin")),
                                               ("empty_file", fx("empty_file")),
                                               ("garbled", fx("rt_garbled")),
                                               ("no_run_key", fx("rt_nokey"))],
                    "lock_timeout": num_bad(low=0.0),
                    "schema": [("unknown_dtype", {"acc": "floaty"}), ("int", 5),
                               ("string", "float"), ("dtype_int", {"acc": 5}),
                               ("column_int", {5: "float"}), ("list", [("acc", "float")]),
                               ("tuple_bad", {"acc": ("float", "yes")})]},
                   prefixes={"path": _file_path}))
    table_path_bad = path_bad("file") + [("not_utf8", fx("csv_latin")),
                                         ("empty_file", fx("empty_file")),
                                         ("garbled", fx("rt_garbled")), ("no_run_key", fx("rt_nokey"))]
    E.append(Entry("results_table", "read_table", results_table.read_table,
                   {"path": Lazy(_written_table), "strict": True},
                   {"path": table_path_bad, "strict": bool_bad()}, prefixes={"path": _file_path}))
    E.append(Entry("results_table", "record_schema", results_table.record_schema,
                   {"path": Lazy(_written_table)}, {"path": table_path_bad},
                   prefixes={"path": _file_path}))
    E.append(Entry("results_table", "schema_path", results_table.schema_path,
                   {"path": "results/main.csv"},
                   {"path": path_bad("any") + [("folder", fx("empty_dir")), ("dot", ".")]}))
    E.append(Entry("results_table", "ResultTable.has", _rt_has, {"key": "a"},
                   {"key": text_bad()}))
    row_bad = [("none", None), ("int", 5), ("string", "row"), ("list", [("run_key", "a")]),
               ("empty", {}), ("key_int", {"run_key": 5}), ("key_empty", {"run_key": ""}),
               ("key_none", {"run_key": None}), ("key_nan", {"run_key": float("nan")}),
               ("key_bytes", {"run_key": b"a"}),
               ("list_cell", {"run_key": "a", "x": [1, 2]}),
               ("dict_cell", {"run_key": "a", "x": {"b": 1}}),
               ("array_cell", {"run_key": "a", "x": np.array([1, 2])}),
               ("tensor_cell", {"run_key": "a", "x": torch.tensor([1.0, 2.0])}),
               ("object_cell", {"run_key": "a", "x": object()}),
               ("int_column_name", {"run_key": "a", 5: 1}),
               ("complex_cell", {"run_key": "a", "x": 1 + 2j})]
    E.append(Entry("results_table", "ResultTable.append", _rt_append, {"row": {"run_key": "a",
                                                                               "acc": 0.5}},
                   {"row": row_bad}))
    E.append(Entry("results_table", "ResultTable.extend", _rt_extend,
                   {"rows": [{"run_key": "a", "acc": 0.5}, {"run_key": "b", "acc": 0.6}]},
                   {"rows": [("none", None), ("int", 5), ("string", "abc"),
                             ("dict", {"run_key": "a"})] + [(f"one_{k}", [v]) for k, v in row_bad
                                                            if k not in ("none",)] + [
                       ("list_of_none", [None])]}))
    cols_bad = [("string", "acc"), ("int", 5), ("list_of_int", [5]), ("unknown", ["nope"]),
                ("list_of_none", [None]), ("empty", []), ("dict", {"acc": 1})]
    for nm, fn in (("ResultTable.to_latex", _rt_to_latex),
                   ("ResultTable.to_markdown", _rt_to_markdown)):
        E.append(Entry("results_table", nm, fn, {"columns": None, "float_format": "{:.4g}"},
                       {"columns": cols_bad, "float_format": FLOAT_FORMAT_BAD}))
    return E


def _dedupe(entries: list[Entry]) -> list[Entry]:
    """Families overlap (``none`` in two of them): keep each label's first value."""
    for e in entries:
        for arg, vals in e.bad.items():
            seen: dict = {}
            for lab, v in vals:
                seen.setdefault(lab, v)
            e.bad[arg] = list(seen.items())
    return entries


REGISTRY = _dedupe(_registry())
_BY_NAME = {e.name: e for e in REGISTRY}
assert len(_BY_NAME) == len(REGISTRY), "entry names must be unique"


def _cases():
    for e in REGISTRY:
        for arg, vals in e.bad.items():
            labels = [lab for lab, _ in vals]
            assert len(set(labels)) == len(labels), f"{e.name}.{arg}: duplicate labels"
            for label in labels:
                yield (e.name, arg, label)


CASES = list(_cases())


# ----------------------------------------------------------------------------- running a case
def _named(msg: str, arg: str, e: Entry, kwargs: dict) -> bool:
    starts = [f"{arg}:", f"{arg}[", f"{arg}.", f"{arg} "]
    if arg in e.prefixes:
        starts += [p for p in e.prefixes[arg](kwargs) if p]
    if any(msg.startswith(s) for s in starts):
        return True
    # two arguments that do not fit each other (shapes): the message starts with the other
    # one and names this one too ("labels: shape (3,) ... for logits of shape (3, 3)")
    first = msg.split(":", 1)[0]
    return first in e.valid and first != arg and re.search(rf"\b{re.escape(arg)}\b", msg) is not None


_OUTCOMES: dict[tuple, tuple[str, str]] = {}


def outcome(name: str, arg: str, label: str) -> tuple[str, str]:
    """``(kind, detail)`` of one case: ``error``, ``crash`` or ``silent`` (memoised)."""
    key = (name, arg, label)
    if key in _OUTCOMES:
        return _OUTCOMES[key]
    e = _BY_NAME[name]
    kwargs = {k: _resolve(v) for k, v in e.valid.items()}
    kwargs[arg] = _resolve(dict(e.bad[arg])[label])
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = e.fn(**kwargs)
    except (ValueError, TypeError, UserError) as exc:
        msg = str(exc)
        if _named(msg, arg, e, kwargs):
            out = ("error", f"{type(exc).__name__}: {msg[:300]}")
        else:
            out = ("crash", f"{type(exc).__name__} does not name {arg!r}: {msg[:300]}")
    except Exception as exc:  # noqa: BLE001 - every other exception is a crash
        out = ("crash", f"{type(exc).__name__}: {str(exc)[:300]}")
    else:
        r = repr(res)
        out = ("silent", f"returned {r[:200]}")
    _OUTCOMES[key] = out
    return out


def summary() -> dict[str, dict[str, int]]:
    """Per module: ``cases``, ``error`` (clear errors), ``crash``, ``silent``."""
    out = {m: {"cases": 0, "error": 0, "crash": 0, "silent": 0} for m in MODULES}
    for name, arg, label in CASES:
        kind, _ = outcome(name, arg, label)
        m = _BY_NAME[name].module
        out[m]["cases"] += 1
        out[m][kind] += 1
    out["total"] = {k: sum(v[k] for m, v in out.items() if m != "total")
                    for k in ("cases", "error", "crash", "silent")}
    return out


def format_summary(s: dict) -> str:
    lines = [f"{'module':<14} {'cases':>6} {'errors':>7} {'crash':>6} {'silent':>7}"]
    lines += [f"{m:<14} {v['cases']:>6} {v['error']:>7} {v['crash']:>6} {v['silent']:>7}"
              for m, v in s.items()]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- tests
def test_registry_is_large_and_covers_every_public_callable():
    assert len(CASES) >= 1000
    names = {e.name.split("[")[0].split(".")[0] for e in REGISTRY}
    for mname, mod in MODULES.items():
        for nm in mod.__all__:
            if (mname, nm) in EXEMPT:
                obj = getattr(mod, nm)
                assert not callable(obj) or isinstance(obj, type), f"{mname}.{nm} is a function"
                continue
            assert nm in names, f"{mname}.{nm} has no registry entry and no exemption"
    for (mname, nm) in EXEMPT:
        assert nm in MODULES[mname].__all__, f"exemption for {mname}.{nm}, not public"


@pytest.mark.parametrize("name", list(_BY_NAME))
def test_valid_call_succeeds(name):
    e = _BY_NAME[name]
    res = e.fn(**{k: _resolve(v) for k, v in e.valid.items()})
    if e.check is not None:
        e.check(res)


# one test per (entry, argument): its bad values run as one loop (pytest's per-test overhead
# on ~2,000 tiny cases would dominate the run time); a failure lists every bad case
@pytest.mark.parametrize("name, arg", [pytest.param(e.name, a, id=f"{e.name}-{a}")
                                       for e in REGISTRY for a in e.bad])
def test_bad_input_is_refused_naming_the_argument(name, arg):
    bad = []
    for label, _ in _BY_NAME[name].bad[arg]:
        kind, detail = outcome(name, arg, label)
        if kind != "error":
            bad.append(f"{label}: {kind}: {detail}")
    assert not bad, f"{len(bad)} bad value(s) of {arg!r} not refused clearly:\n" + "\n".join(bad)


def test_summary_has_no_crash_and_no_silent_result(tmp_path):
    s = summary()
    text = format_summary(s)
    print("\n" + text)
    (tmp_path / "bad_inputs_io_summary.json").write_text(json.dumps(s, indent=1))
    dest = os.environ.get("W2S_BAD_INPUTS_SUMMARY")
    if dest:
        Path(dest).write_text(json.dumps(s, indent=1))
    assert s["total"]["cases"] >= 1000
    assert s["total"]["crash"] == 0 and s["total"]["silent"] == 0, text


# ----------------------------------------------------------------------------- accepted variants
def _same(a, b):
    if isinstance(a, torch.Tensor):
        torch.testing.assert_close(a.detach().double(), b.detach().double(), rtol=1e-6, atol=1e-6)
    elif isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    elif hasattr(a, "chosen") and hasattr(a, "rejected"):
        assert (a.chosen, a.rejected) == (b.chosen, b.rejected)
    elif hasattr(a, "texts"):
        assert a.texts == b.texts and np.array_equal(a.labels, b.labels)
    else:
        assert a == b


VARIANTS = [
    ("W2SLoss.forward", "weak_probs", "list", [0.2, 0.5, 0.9]),
    ("W2SLoss.forward", "logits", "requires_grad", Z.clone().requires_grad_(True)),
    ("align", "logits", "column", Z[:, None]),
    ("soft_label_loss.call", "num_items_in_batch", "tensor", torch.tensor(3)),
    ("soft_label_loss.call", "outputs", "logits_tensor", torch.zeros(3, 1, dtype=torch.float64)),
    ("soft_label_loss.call", "outputs", "dict", {"logits": torch.zeros(3, 1, dtype=torch.float64)}),
    ("soft_label_loss.call", "labels", "list", [0.2, 0.5, 0.9]),
    ("align", "labels", "list", [0.2, 0.5, 0.9]),
    ("soft_label_loss.call", "num_items_in_batch", "np_int", np.int64(3)),
    ("soft_label_loss.call", "num_items_in_batch", "float_tensor", torch.tensor(3.0)),
    ("split_indices", "sizes", "list", [4, 4, 4]),
    ("split_indices", "sizes", "np_int_array", np.array([4, 4, 4])),
    ("split_indices", "n_train", "np_int", np.int64(12)),
    ("split_indices", "seed", "np_int", np.int64(0)),
    ("from_table", "data", "dataset", Lazy(lambda: __import__("datasets").Dataset.from_pandas(
        FX().pref_df, preserve_index=False))),
    ("from_table", "data", "csv_file", fx("csv")),
    ("from_table", "data", "csv_file_str", Lazy(lambda: str(FX().csv))),
    ("from_table", "sizes", "list", [2, 2, 2]),
    ("from_split_files", "root", "str", Lazy(lambda: str(FX().split))),
    ("pool", "hidden", "requires_grad", H.clone().requires_grad_(True)),
    ("pool", "mask", "bool", M.bool()),
    ("pool", "mask", "float", M.double()),
    ("parse_spec", "spec", "np_str", np.str_("org/name@rev")),
    ("read_toml", "path", "str", Lazy(lambda: str(FX().toml))),
    ("frame_to_markdown", "table", "frame", pd.DataFrame(ROWS)),
    ("frame_to_markdown", "table", "columns", {k: [r[k] for r in ROWS] for k in ROWS[0]}),
    ("frame_to_latex", "table", "frame", pd.DataFrame(ROWS)),
    ("frame_to_markdown", "table", "np_float_cells",
     [{k: (np.float64(v) if isinstance(v, float) else v) for k, v in r.items()} for r in ROWS]),
    ("frame_to_markdown", "table", "tensor_0d_cells",
     [{k: (torch.tensor(v, dtype=torch.float64) if isinstance(v, float) else v)
       for k, v in r.items()} for r in ROWS]),
    ("check_keys", "allowed", "tuple", ("lr", "epochs")),
    ("check_keys", "allowed", "set", {"lr", "epochs"}),
    ("paired_effect", "a", "tensor", torch.tensor([0.70, 0.72, 0.71], dtype=torch.float64)),
    ("paired_effect", "a", "series", pd.Series([0.70, 0.72, 0.71])),
    ("holm", "pvalues", "array", np.array([0.01, 0.04, 0.03, np.nan])),
    ("ResultTable", "path", "str", Lazy(lambda: str(Path(tempfile.mkdtemp(dir=FX().root))
                                                     / "r.csv"))),
]


def _plain(x):
    """Results made comparable: dataclasses and frames as dicts, tensors as they are."""
    if hasattr(x, "to_dict") and not isinstance(x, (pd.DataFrame, pd.Series)):
        return x.to_dict()
    if isinstance(x, results_table.ResultTable):
        return {"rows": x.frame().to_dict("list")}
    if isinstance(x, hub.ResolvedModel):
        return {"path": str(x.path), "digest": x.digest}
    return x


@pytest.mark.parametrize("name, arg, value",
                         [pytest.param(n, a, v, id=f"{n}-{a}-{lab}") for n, a, lab, v in VARIANTS])
def test_accepted_variants_give_the_plain_result(name, arg, value):
    e = _BY_NAME[name]
    kw = {k: _resolve(v) for k, v in e.valid.items()}
    want = _plain(e.fn(**kw))
    got = _plain(e.fn(**(kw | {arg: _resolve(value)})))
    _same(got, want)


def test_issue_examples():
    """The examples of issue 17, one by one."""
    with pytest.raises(ValueError, match=r"^sizes: "):
        sources.split_indices(12, None, "444", 0)
    with pytest.raises(TypeError, match=r"^cache_dir: "):
        sources.from_hh_rlhf_hub("harmless-base", path=str(FX().hub), sizes=(4, 4, 3),
                                 cache_dir=5)
    assert not Path("5").exists()
    with pytest.raises(ValueError, match=r"^float_format: .*'%\.3f'"):
        export.frame_to_markdown(ROWS, float_format="%.3f")
    with pytest.raises(ValueError, match=r"^mask: row 1 has no real token"):
        hub.pool(H, torch.tensor([[1, 1, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match=r"^spec: .*tokenizer"):
        hub.load_auto_model(str(model_without_tokenizer()))
    df = FX().pref_df.assign(chosen=[None] + list(FX().pref_df.chosen[1:]))
    with pytest.raises(ValueError, match=r"^data: column 'chosen' row 0 .*missing"):
        sources.from_table(df, sizes=(2, 2, 2))
    with pytest.raises(TypeError, match=r"^data: column 'prompt'"):
        sources.from_table(FX().pref_df.assign(prompt=list(range(6))), sizes=(2, 2, 2))
    for k in ("chosen_null", "chosen_int", "chosen_list"):
        with pytest.raises((TypeError, ValueError), match=r"^root: .*train_gt\.jsonl.*'chosen'"):
            sources.from_split_files(FX().split_bad[k], "s")


if __name__ == "__main__":           # python tests/test_bad_inputs_io.py [module ...]: the counts
    import sys
    import time

    only = set(sys.argv[1:]) or set(MODULES)
    t0 = time.perf_counter()
    slow = []
    for c in CASES:
        if _BY_NAME[c[0]].module in only:
            t = time.perf_counter()
            kind, detail = outcome(*c)
            slow.append((time.perf_counter() - t, "-".join(c)))
            if kind != "error":
                print(kind, "-".join(c), detail[:240])
    s = summary() if only == set(MODULES) else None
    if s:
        print(format_summary(s))
    print(f"{time.perf_counter() - t0:.1f} s; slowest:", sorted(slow)[-5:])
