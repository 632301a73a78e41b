r"""Where weak-to-strong data come from: every source gives the same three splits.

The protocol needs three disjoint splits (the data's README names them):
``train_gt`` (ground truth: the weak model and the strong ceiling train here),
``train_w2s`` (the weak model labels these; the student trains on those labels) and
``test`` (ground truth, every reported accuracy). A source returns
``{"train_gt": ..., "train_w2s": ..., "test": ...}`` of
`w2s_theory.data.PreferencePairs` (pairwise preference: prompt + chosen /
rejected) or `w2s_theory.data.LabelledTexts` (classification: text, label).

Sources (all through the ``datasets`` library where it fits):

* `from_split_files` -- a folder of split files: the 4K/4K/4K JSONL layout
  (``<root>/<subset>/{train_gt,train_w2s,test}.jsonl``; digests checked against
  ``SHA256SUMS`` when the folder has one, recorded either way), or the authors'
  CAI-Harmless naming (``<root>/<name>_train_gt.jsonl``, ...: ``naming="prefix"``);
* `from_hh_rlhf_hub` -- ``Anthropic/hh-rlhf`` in its hub form (whole multi-turn
  ``chosen`` / ``rejected`` dialogues; a subset folder such as ``harmless-base``), split
  by a documented seeded rule (`split_indices`), optionally single-turn only;
* `from_table` -- any local JSONL / CSV / Parquet file, a ``pandas.DataFrame`` or
  an in-memory ``datasets.Dataset``, with a column mapping, for preference pairs or
  k-class classification, split by the same seeded rule (or by a split column).

Every source records its provenance (``source``, ``sha256`` of the texts or file) in
the returned objects, and every error names the argument, the file or column, and
what to do.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data import SPLITS, LabelledTexts, PreferencePairs, text_digest

__all__ = ["split_indices", "from_split_files", "from_hh_rlhf_hub", "from_table",
           "is_single_turn", "DEFAULT_SIZES", "SOURCE_KINDS", "check_source", "load_source",
           "source_task", "source_name", "describe_source", "feature_tag"]

#: The paper's split sizes (train_gt, train_w2s, test).
DEFAULT_SIZES = (4000, 4000, 4000)
_HUMAN = "\n\nHuman:"


def split_indices(n_train: int, n_test: int | None, sizes: Sequence[int], seed: int
                  ) -> dict[str, np.ndarray]:
    """The seeded split rule: disjoint index sets for train_gt, train_w2s and test.

    With a separate test pool (``n_test`` rows, e.g. the hub's ``test`` split) the
    train pool's permutation ``default_rng([seed, 0]).permutation(n_train)`` gives
    ``train_gt`` (its first ``sizes[0]``) and ``train_w2s`` (the next ``sizes[1]``), and
    ``default_rng([seed, 1]).permutation(n_test)[:sizes[2]]`` gives ``test``. With one
    pool (``n_test=None``) its permutation is cut into the three parts in that order.

    Raises:
        ValueError: a pool smaller than the sizes it must supply (names the split).

    Examples:
        >>> s = split_indices(10, None, (3, 3, 4), seed=0)
        >>> [len(s[k]) for k in ("train_gt", "train_w2s", "test")], len(set(np.concatenate(list(s.values()))))
        ([3, 3, 4], 10)
    """
    sizes = tuple(int(v) for v in sizes)
    if len(sizes) != 3 or any(v < 1 for v in sizes):
        raise ValueError(f"sizes: three positive integers (train_gt, train_w2s, test), got {sizes!r}")
    if n_test is None:
        if n_train < sum(sizes):
            raise ValueError(f"sizes: {sizes} need {sum(sizes)} rows, the data have {n_train}")
        p = np.random.default_rng([int(seed), 0]).permutation(n_train)
        a, b = sizes[0], sizes[0] + sizes[1]
        return {"train_gt": p[:a], "train_w2s": p[a:b], "test": p[b:b + sizes[2]]}
    if n_train < sizes[0] + sizes[1]:
        raise ValueError(f"sizes: train_gt + train_w2s = {sizes[0] + sizes[1]} rows, the train "
                         f"pool has {n_train}")
    if n_test < sizes[2]:
        raise ValueError(f"sizes: test = {sizes[2]} rows, the test pool has {n_test}")
    p = np.random.default_rng([int(seed), 0]).permutation(n_train)
    q = np.random.default_rng([int(seed), 1]).permutation(n_test)
    return {"train_gt": p[:sizes[0]], "train_w2s": p[sizes[0]:sizes[0] + sizes[1]],
            "test": q[:sizes[2]]}


def is_single_turn(dialogue: str) -> bool:
    """True when an HH-RLHF dialogue has exactly one ``Human:`` turn.

    Examples:
        >>> is_single_turn("\\n\\nHuman: hi\\n\\nAssistant: hello"), is_single_turn("\\n\\nHuman: a\\n\\nAssistant: b\\n\\nHuman: c\\n\\nAssistant: d")
        (True, False)
    """
    return dialogue.count(_HUMAN) == 1


def _pairs(chosen: list[str], rejected: list[str], subset: str, split: str, source: str,
           sha: str | None = None) -> PreferencePairs:
    ident = [i for i, (c, r) in enumerate(zip(chosen, rejected)) if c == r]
    digest = sha or text_digest(list(chosen) + list(rejected))
    return PreferencePairs(list(chosen), list(rejected), subset, split, Path(source), digest, ident)


def _require_datasets():
    try:
        import datasets
    except ImportError as e:  # pragma: no cover
        raise ImportError("this data source needs the datasets library: "
                          "pip install 'w2s-theory[hf]'") from e
    return datasets


def _columns(ds, mapping: Mapping[str, str | None], where: str) -> dict[str, list]:
    have = list(ds.column_names)
    out = {}
    for role, col in mapping.items():
        if col is None:
            continue
        if col not in have:
            raise ValueError(f"columns: {role!r} maps to column {col!r}, which {where} does not have; "
                             f"its columns are {have}")
        out[role] = list(ds[col])
    return out


def _read_table(data: Any, where: str):
    """A ``datasets.Dataset`` from a path (.jsonl/.json/.csv/.parquet), a DataFrame or a Dataset."""
    datasets = _require_datasets()
    if isinstance(data, datasets.Dataset):
        return data
    try:
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return datasets.Dataset.from_pandas(data, preserve_index=False)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(data, (str, os.PathLike)):
        p = Path(data).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"{where}: file not found: {p}")
        kind = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(
            p.suffix.lower())
        if kind is None:
            raise ValueError(f"{where}: {p.name}: use a .jsonl, .json, .csv or .parquet file")
        try:
            return datasets.load_dataset(kind, data_files=str(p), split="train")
        except Exception as e:  # noqa: BLE001 -- re-raised with the file named
            raise ValueError(f"{where}: cannot read {p} as {kind}: {e}") from e
    raise ValueError(f"{where}: a file path, a pandas DataFrame or a datasets.Dataset, "
                     f"got {type(data).__name__}")


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def from_split_files(root: str | os.PathLike, name: str, *, naming: str = "folder",
                     columns: Mapping[str, str | None] | None = None,
                     verify: str = "auto") -> dict[str, PreferencePairs]:
    """Preference pairs from three split files.

    Args:
        root: the folder.
        name: ``naming="folder"``: the subset folder (``<root>/<name>/<split>.jsonl``, the
            4K/4K/4K layout); ``naming="prefix"``: the file prefix
            (``<root>/<name>_<split>.jsonl``, the authors' CAI-Harmless files).
        columns: ``{"chosen": ..., "rejected": ..., "prompt": ...}`` (default the
            ``chosen`` / ``rejected`` columns, and ``prompt`` when the file has it; the
            prompt is prepended to both replies).
        verify: ``auto`` (check ``<root>/SHA256SUMS`` when present), ``sha256`` (required)
            or ``none``; the file's sha256 is recorded in every case.

    Examples:
        >>> from w2s_theory.data import hh_rlhf_root
        >>> s = from_split_files(hh_rlhf_root(), "harmless")
        >>> [len(s[k]) for k in ("train_gt", "train_w2s", "test")]
        [4000, 4000, 4000]
    """
    if naming not in ("folder", "prefix"):
        raise ValueError(f"naming: 'folder' or 'prefix', got {naming!r}")
    if verify not in ("auto", "sha256", "none"):
        raise ValueError(f"verify: 'auto', 'sha256' or 'none', got {verify!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: a non-empty subset folder or file prefix, got {name!r}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"root: folder not found: {root}")
    mapping = dict(columns or {"chosen": "chosen", "rejected": "rejected", "prompt": None})
    sums: dict[str, str] = {}
    sums_file = root / "SHA256SUMS"
    if verify == "sha256" and not sums_file.is_file():
        raise FileNotFoundError(f"verify='sha256': {sums_file} not found")
    if verify != "none" and sums_file.is_file():
        for line in sums_file.read_text().splitlines():
            if line.strip():
                digest, rel = line.split(maxsplit=1)
                sums[rel.strip().lstrip("*")] = digest
    out = {}
    for split in SPLITS:
        rel = f"{name}/{split}.jsonl" if naming == "folder" else f"{name}_{split}.jsonl"
        path = root / rel
        if not path.is_file():
            raise FileNotFoundError(f"{split}: {path} not found (naming={naming!r} expects "
                                    f"{rel!r} under {root})")
        sha = _file_sha256(path)
        if rel in sums and sums[rel] != sha:
            raise ValueError(f"{path}: sha256 {sha} does not match {sums[rel]} in {sums_file}")
        if verify == "sha256" and rel not in sums:
            raise ValueError(f"{sums_file}: no digest listed for {rel}")
        ds = _read_table(path, split)
        if not (columns and "prompt" in columns) and "prompt" in ds.column_names:
            mapping["prompt"] = "prompt"   # a prompt column is used when the file has one
        cols = _columns(ds, mapping, str(path))
        chosen, rejected = cols["chosen"], cols["rejected"]
        if "prompt" in cols:
            chosen = [p + c for p, c in zip(cols["prompt"], chosen)]
            rejected = [p + r for p, r in zip(cols["prompt"], rejected)]
        out[split] = _pairs(chosen, rejected, name, split, str(path), sha)
    return out


def from_hh_rlhf_hub(data_dir: str | None = "harmless-base", *,
                     sizes: Sequence[int] = DEFAULT_SIZES, seed: int = 0, single_turn: bool = False,
                     path: str = "Anthropic/hh-rlhf", revision: str | None = None,
                     cache_dir: str | None = None) -> dict[str, PreferencePairs]:
    """``Anthropic/hh-rlhf`` in its hub form, split into train_gt / train_w2s / test.

    The hub data set has a ``train`` and a ``test`` split of whole dialogues
    (``chosen`` / ``rejected``, multi-turn). ``train_gt`` and ``train_w2s`` are drawn
    from the hub's ``train`` and ``test`` from its ``test``, by `split_indices`
    with ``seed`` (after the optional single-turn filter, which keeps pairs whose
    two dialogues both have one ``Human:`` turn, as the shared 4K/4K/4K files do).

    Args:
        data_dir: the subset folder (``harmless-base``, ``helpful-base``, ...; ``None`` = all).
        sizes: rows of train_gt, train_w2s, test.
        path: a hub id, or a local folder in the hub's layout (``<data_dir>/train.jsonl.gz``).
        revision: a hub revision (commit, tag or branch).
        cache_dir: ``datasets``' cache.

    The hub is used as ``datasets.load_dataset`` uses it: set ``HF_HUB_OFFLINE=1`` to
    read only the local cache (this library never forces offline mode).
    """
    datasets = _require_datasets()
    kw = {"data_dir": data_dir, "revision": revision, "cache_dir": cache_dir}
    try:
        dd = datasets.load_dataset(path, **{k: v for k, v in kw.items() if v is not None})
    except Exception as e:  # noqa: BLE001 -- one clear message for a user error
        raise ValueError(f"path: cannot load {path!r} (data_dir={data_dir!r}) with datasets: {e}. "
                         "Offline, the data set must be in the local cache or a local folder.") from e
    for need in ("train", "test"):
        if need not in dd:
            raise ValueError(f"path: {path!r} has splits {list(dd)}, need 'train' and 'test'")
    pools = {}
    for hub_split in ("train", "test"):
        cols = _columns(dd[hub_split], {"chosen": "chosen", "rejected": "rejected"},
                        f"{path} [{hub_split}]")
        c, r = cols["chosen"], cols["rejected"]
        if single_turn:
            keep = [i for i in range(len(c)) if is_single_turn(c[i]) and is_single_turn(r[i])]
            c, r = [c[i] for i in keep], [r[i] for i in keep]
        pools[hub_split] = (c, r)
    idx = split_indices(len(pools["train"][0]), len(pools["test"][0]), sizes, seed)
    subset = data_dir or "all"
    out = {}
    for split, pool in (("train_gt", "train"), ("train_w2s", "train"), ("test", "test")):
        c, r = pools[pool]
        ii = idx[split]
        out[split] = _pairs([c[i] for i in ii], [r[i] for i in ii], subset, split,
                            f"{path}:{subset}:{pool}" + (f"@{revision}" if revision else ""))
    return out


def from_table(data: Any, *, task: str = "preference",
               columns: Mapping[str, str | None] | None = None,
               sizes: Sequence[int] | None = None, seed: int = 0, split_column: str | None = None,
               name: str = "table") -> dict[str, PreferencePairs] | dict[str, LabelledTexts]:
    """Any table as the three splits: preference pairs or k-class classification.

    Args:
        data: a ``.jsonl`` / ``.json`` / ``.csv`` / ``.parquet`` path, a ``pandas.DataFrame``
            or a ``datasets.Dataset``.
        task: ``preference`` (columns ``prompt`` (used when present), ``chosen``, ``rejected``) or
            ``classification`` (columns ``text``, ``label``; labels integers ``0..k-1``).
        columns: maps those roles to the table's column names (default: the role names).
        sizes: rows of train_gt, train_w2s, test, drawn by `split_indices` (one pool);
            or ``split_column``: a column whose values are ``train_gt`` / ``train_w2s`` / ``test``.
        seed: the split's seed.
        name: the subset name recorded in the result.

    Examples:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"q": ["a", "b", "c", "d"], "good": ["1", "2", "3", "4"],
        ...                    "bad": ["x", "y", "z", "w"]})
        >>> s = from_table(df, columns={"prompt": "q", "chosen": "good", "rejected": "bad"},
        ...                sizes=(1, 1, 2))
        >>> [len(s[k]) for k in ("train_gt", "train_w2s", "test")]
        [1, 1, 2]
    """
    if task not in ("preference", "classification"):
        raise ValueError(f"task: 'preference' or 'classification', got {task!r}")
    roles = (("prompt", "chosen", "rejected") if task == "preference" else ("text", "label"))
    mapping = {r: r for r in roles}
    if task == "preference":
        mapping["prompt"] = None
    if columns:
        bad = sorted(set(columns) - set(roles))
        if bad:
            raise ValueError(f"columns: unknown role(s) {bad} for task={task!r}; roles: {list(roles)}")
        mapping.update(columns)
    ds = _read_table(data, "data")
    if task == "preference" and not (columns and "prompt" in columns) and "prompt" in ds.column_names:
        mapping["prompt"] = "prompt"   # a prompt column is used when the table has one
    where = str(data) if isinstance(data, (str, os.PathLike)) else "the table"
    cols = _columns(ds, mapping, where)
    n = len(ds)
    if split_column is not None:
        sc = _columns(ds, {"split": split_column}, where)["split"]
        bad = sorted({str(v) for v in sc} - set(SPLITS))
        if bad:
            raise ValueError(f"split_column: values {bad} in {split_column!r}; use {list(SPLITS)}")
        idx = {s: np.array([i for i, v in enumerate(sc) if v == s], dtype=np.int64) for s in SPLITS}
        for s in SPLITS:
            if idx[s].size == 0:
                raise ValueError(f"split_column: no row of {where} is in split {s!r}")
    else:
        if sizes is None:
            raise ValueError("sizes: give the three split sizes (train_gt, train_w2s, test) or a "
                             "split_column")
        idx = split_indices(n, None, sizes, seed)
    src = f"{where}" if isinstance(data, (str, os.PathLike)) else f"<{type(data).__name__}>"
    out = {}
    if task == "preference":
        chosen, rejected = cols["chosen"], cols["rejected"]
        if "prompt" in cols:
            chosen = [p + c for p, c in zip(cols["prompt"], chosen)]
            rejected = [p + r for p, r in zip(cols["prompt"], rejected)]
        for s in SPLITS:
            ii = idx[s]
            out[s] = _pairs([str(chosen[i]) for i in ii], [str(rejected[i]) for i in ii], name, s, src)
        return out
    labels = cols["label"]
    try:
        lab = np.asarray(labels)
        if lab.dtype.kind not in "iub" or lab.min() < 0:
            raise TypeError
    except (TypeError, ValueError):
        raise ValueError(f"columns: the label column {mapping['label']!r} must hold integers "
                         f"0..k-1 (class indices)") from None
    for s in SPLITS:
        ii = idx[s]
        out[s] = LabelledTexts([str(cols["text"][i]) for i in ii], lab[ii].astype(np.int64), s, src)
    return out


# ----------------------------------------------------------------------------- config specs
#: The source kinds a config's ``source`` table may name, with their allowed keys.
SOURCE_KINDS: dict[str, tuple[str, ...]] = {
    "hh_rlhf": ("kind", "subset", "root", "name"),
    "split_files": ("kind", "root", "name", "naming", "columns", "verify"),
    "hh_rlhf_hub": ("kind", "path", "data_dir", "sizes", "seed", "single_turn", "revision",
                    "cache_dir", "name"),
    "table": ("kind", "data", "task", "columns", "sizes", "seed", "split_column", "name"),
}


def check_source(spec: Mapping, where: str = "source") -> dict:
    """Validate a config's source table (no I/O) and return it as a plain, canonical dict.

    ``kind`` is one of `SOURCE_KINDS`: ``hh_rlhf`` (the local 4K/4K/4K layout:
    ``subset``, ``root``), ``split_files`` (`from_split_files`), ``hh_rlhf_hub``
    (`from_hh_rlhf_hub`) or ``table`` (`from_table`); the other keys are that
    function's arguments.

    Example:
        >>> check_source({"kind": "hh_rlhf_hub", "sizes": [8, 8, 8]})["sizes"]
        [8, 8, 8]
    """
    from .config import check_keys

    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: a table with a 'kind' key, got {spec!r}")
    kind = spec.get("kind")
    if kind not in SOURCE_KINDS:
        raise ValueError(f"{where}.kind: one of {list(SOURCE_KINDS)}, got {kind!r}")
    d = {k: (list(v) if isinstance(v, tuple) else dict(v) if isinstance(v, Mapping) else v)
         for k, v in spec.items()}
    check_keys(d, SOURCE_KINDS[kind], f"[{where}]")
    if kind == "split_files" and not (d.get("root") and d.get("name")):
        raise ValueError(f"{where}: kind 'split_files' needs 'root' and 'name'")
    if kind == "table":
        if not d.get("data"):
            raise ValueError(f"{where}: kind 'table' needs 'data' (a .jsonl/.csv/.parquet file)")
        if d.get("task", "preference") not in ("preference", "classification"):
            raise ValueError(f"{where}.task: 'preference' or 'classification', got {d['task']!r}")
        if d.get("sizes") is None and d.get("split_column") is None:
            raise ValueError(f"{where}: kind 'table' needs 'sizes' or 'split_column'")
    if kind == "hh_rlhf" and d.get("subset", "harmless") not in ("harmless", "helpful"):
        raise ValueError(f"{where}.subset: 'harmless' or 'helpful', got {d['subset']!r}")
    if d.get("sizes") is not None:
        s = d["sizes"]
        if not (isinstance(s, list) and len(s) == 3 and all(isinstance(v, int) and v > 0 for v in s)):
            raise ValueError(f"{where}.sizes: three positive integers (train_gt, train_w2s, test), "
                             f"got {s!r}")
    return d


def source_task(spec: Mapping) -> str:
    """``pairwise`` (preference pairs) or ``classification`` (labelled texts) of a source spec."""
    return "classification" if spec.get("kind") == "table" and \
        spec.get("task", "preference") == "classification" else "pairwise"


def source_name(spec: Mapping) -> str:
    """A short name of the source (its ``name`` key, else derived from its kind and place)."""
    if spec.get("name"):
        return str(spec["name"])
    kind = spec["kind"]
    if kind == "hh_rlhf":
        return spec.get("subset", "harmless")
    if kind == "hh_rlhf_hub":
        return spec.get("data_dir", "harmless-base") or "all"
    if kind == "table":
        return Path(str(spec["data"])).stem
    return str(spec.get("name"))


def describe_source(spec: Mapping) -> str:
    """One line saying where a source's data come from (for ``--dry-run``; no I/O).

    Example:
        >>> describe_source({"kind": "hh_rlhf_hub", "sizes": [4000, 4000, 4000]})
        'Anthropic/hh-rlhf (hub form, data_dir harmless-base, seeded split 4000/4000/4000, seed 0)'
    """
    kind = spec["kind"]
    if kind == "hh_rlhf":
        return (f"HH-RLHF local 4K/4K/4K layout, subset {spec.get('subset', 'harmless')} "
                f"({spec.get('root') or 'default root'})")
    if kind == "split_files":
        naming = spec.get("naming", "folder")
        return (f"split files {spec['root']}/{spec['name']}"
                f"{'/<split>.jsonl' if naming == 'folder' else '_<split>.jsonl'}")
    if kind == "hh_rlhf_hub":
        sizes = "/".join(str(v) for v in spec.get("sizes", DEFAULT_SIZES))
        turn = ", single-turn only" if spec.get("single_turn") else ""
        return (f"{spec.get('path', 'Anthropic/hh-rlhf')} (hub form, data_dir "
                f"{spec.get('data_dir', 'harmless-base')}, seeded split {sizes}, seed "
                f"{spec.get('seed', 0)}{turn})")
    how = (f"split column {spec['split_column']!r}" if spec.get("split_column")
           else "seeded split " + "/".join(str(v) for v in spec["sizes"]))
    return f"table {spec['data']} ({spec.get('task', 'preference')}, {how})"


def load_source(spec: Mapping, *, where: str = "source"):
    """The three splits of a config's source table (see `check_source`)."""
    d = check_source(spec, where)
    kind = d.pop("kind")
    if kind != "split_files":
        d.pop("name", None)     # a label; split_files' name is the subset folder / file prefix
    if kind == "hh_rlhf":
        from .data import load_hh_rlhf

        return {sp: load_hh_rlhf(d.get("subset", "harmless"), sp, d.get("root")) for sp in SPLITS}
    if kind == "split_files":
        return from_split_files(d.pop("root"), d.pop("name"), **d)
    if kind == "hh_rlhf_hub":
        if "sizes" in d:
            d["sizes"] = tuple(d["sizes"])
        return from_hh_rlhf_hub(d.pop("data_dir", "harmless-base"), **d)
    data = d.pop("data")
    return from_table(data, name=source_name(spec), **d)


def feature_tag(spec: Mapping, split: str) -> str:
    """The ``dataset`` tag under which a source split's LM features are cached (the feature
    cache key also holds the texts' digest, so two sources never share an entry).

    Example:
        >>> feature_tag({"kind": "table", "data": "x/reviews.csv", "sizes": [1, 1, 1]}, "test")
        'source-table-reviews-test'
    """
    return f"source-{spec['kind']}-{source_name(spec)}-{split}"
