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

from ._validation import (
    ArgumentTypeError,
    PathNotFound,
    check_bool,
    check_choice,
    check_int,
    check_path,
    check_str,
)
from .config import UserError
from .data import SPLITS, DataError, DataNotFound, LabelledTexts, PreferencePairs, text_digest

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
    n_train = check_int(n_train, "n_train", low=0)
    if n_test is not None:
        n_test = check_int(n_test, "n_test", low=0)
    sizes = _check_sizes(sizes)
    seed = check_int(seed, "seed", low=0)
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


def _check_sizes(sizes: Any, name: str = "sizes") -> tuple[int, int, int]:
    """Three positive integers (train_gt, train_w2s, test) from a list, tuple or 1-D int array."""
    if isinstance(sizes, (str, bytes, Mapping, set, frozenset)) or sizes is None or \
            not hasattr(sizes, "__len__") or getattr(sizes, "ndim", 1) != 1:
        raise ArgumentTypeError(f"{name}: three positive integers (train_gt, train_w2s, test), "
                                f"got {sizes!r:.60}")
    if len(sizes) != 3:
        raise ValueError(f"{name}: three positive integers (train_gt, train_w2s, test), got "
                         f"{len(sizes)} values: {sizes!r:.60}")
    return tuple(check_int(v, f"{name}[{i}]", low=1) for i, v in enumerate(sizes))


def is_single_turn(dialogue: str) -> bool:
    """True when an HH-RLHF dialogue has exactly one ``Human:`` turn.

    Examples:
        >>> is_single_turn("\\n\\nHuman: hi\\n\\nAssistant: hello"), is_single_turn("\\n\\nHuman: a\\n\\nAssistant: b\\n\\nHuman: c\\n\\nAssistant: d")
        (True, False)
    """
    return check_str(dialogue, "dialogue", allow_empty=True).count(_HUMAN) == 1


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


def _check_columns(columns: Any, roles: tuple[str, ...], required: tuple[str, ...],
                   task: str) -> dict[str, str | None]:
    """``columns``: ``None`` or a mapping of roles to column names (``None`` = unused, for
    optional roles only); refuses unknown roles, non-string names and one column for two roles."""
    if columns is None:
        return {}
    if not isinstance(columns, Mapping):
        raise ArgumentTypeError(f"columns: a mapping of roles {list(roles)} to column names, "
                                f"got {columns!r:.60} ({type(columns).__name__})")
    bad = sorted(str(r) for r in columns if r not in roles)
    if bad:
        raise ValueError(f"columns: unknown role(s) {bad} for task={task!r}; roles: {list(roles)}")
    out: dict[str, str | None] = {}
    for role, col in columns.items():
        if col is None and role not in required:
            out[role] = None
            continue
        out[role] = check_str(col, f"columns.{role}")
    return out


def _check_distinct(mapping: Mapping[str, str | None]) -> None:
    used = [c for c in mapping.values() if c is not None]
    dup = sorted({c for c in used if used.count(c) > 1})
    if dup:
        roles = [r for r, c in mapping.items() if c == dup[0]]
        raise ValueError(f"columns: column {dup[0]!r} is mapped to the roles {roles}; each role "
                         f"needs its own column")


def _columns(ds, mapping: Mapping[str, str | None], where: str, given: Mapping,
             arg: str) -> dict[str, list]:
    """The mapped columns of a table; a missing column is blamed on ``columns`` when the user
    mapped that role, on the data (``arg``) otherwise."""
    have = list(ds.column_names)
    out = {}
    for role, col in mapping.items():
        if col is None:
            continue
        if col not in have:
            blame = "columns" if role in given else arg
            raise DataError(f"{blame}: {role!r} maps to column {col!r}, which {where} does not "
                            f"have; its columns are {have} (map the roles with columns=...)")
        out[role] = list(ds[col])
    return out


def _describe_cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return f"a missing value ({v!r})"
    return f"{v!r:.40} ({type(v).__name__})"


def _texts(values: list, role: str, col: str, where: str, arg: str, *,
           allow_empty: bool = False) -> list[str]:
    """Check that every cell of a text column is a (non-empty) string; name the first bad one."""
    for i, v in enumerate(values):
        if not isinstance(v, str):
            cls = ValueError if v is None or (isinstance(v, float) and v != v) else TypeError
            raise cls(f"{arg}: column {col!r} row {i} of {where}: expected text for "
                      f"{role!r}, got {_describe_cell(v)}")
        if not v and not allow_empty:
            raise ValueError(f"{arg}: column {col!r} row {i} of {where}: empty text for "
                             f"{role!r}")
    return list(values)


def _preference(cols: dict, mapping: Mapping, where: str, arg: str
                ) -> tuple[list[str], list[str]]:
    chosen = _texts(cols["chosen"], "chosen", mapping["chosen"], where, arg)
    rejected = _texts(cols["rejected"], "rejected", mapping["rejected"], where, arg)
    if "prompt" in cols:
        prompt = _texts(cols["prompt"], "prompt", mapping["prompt"], where, arg,
                        allow_empty=True)
        chosen = [p + c for p, c in zip(prompt, chosen)]
        rejected = [p + r for p, r in zip(prompt, rejected)]
    return chosen, rejected


def _read_table(data: Any, arg: str):
    """A ``datasets.Dataset`` from a path (.jsonl/.json/.csv/.parquet), a DataFrame or a Dataset."""
    datasets = _require_datasets()
    if isinstance(data, datasets.Dataset):
        return data
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        if not data.columns.is_unique:
            raise ValueError(f"{arg}: duplicate column names {list(data.columns)}")
        try:
            return datasets.Dataset.from_pandas(data, preserve_index=False)
        except Exception as e:  # noqa: BLE001 -- pyarrow: mixed kinds in one column
            raise TypeError(f"{arg}: the DataFrame cannot be read as a table ({type(e).__name__}: "
                            f"{str(e)[:200]}); every column must hold one kind of value") from None
    if not isinstance(data, (str, os.PathLike)) or isinstance(data, (bytes, bytearray)):
        raise ArgumentTypeError(f"{arg}: a file path, a pandas DataFrame or a datasets.Dataset, "
                                f"got {type(data).__name__}")
    try:
        p = check_path(data, arg, must="file")
    except PathNotFound as e:
        raise DataNotFound(str(e)) from None
    kind = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(
        p.suffix.lower())
    if kind is None:
        raise ValueError(f"{arg}: {p.name}: use a .jsonl, .json, .csv or .parquet file")
    if p.stat().st_size == 0:
        raise DataError(f"{arg}: {p} is empty (0 bytes)")
    if kind != "parquet":
        try:
            with open(p, encoding="utf-8") as fh:
                for _ in fh:
                    pass
        except UnicodeDecodeError as e:
            raise DataError(f"{arg}: {p} is not UTF-8 text (byte {e.object[e.start]:#04x} at "
                            f"offset {e.start}); re-save it as UTF-8") from None
    try:
        return datasets.load_dataset(kind, data_files=str(p), split="train")
    except Exception as e:  # noqa: BLE001 -- re-raised with the file named
        msg = str(e).split("\n")[0][:300]
        cause = e.__cause__ or e.__context__
        if cause is not None:
            msg += f" ({type(cause).__name__}: {str(cause).splitlines()[0][:200] if str(cause) else ''})"
        raise DataError(f"{arg}: cannot read {p} as {kind}: {msg}") from e


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_sums(sums_file: Path) -> dict[str, str]:
    sums: dict[str, str] = {}
    try:
        text = sums_file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"root: {sums_file} is not UTF-8 text; expected lines "
                        f"'<sha256>  <file>'") from None
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            parts = line.split(maxsplit=1)
            if len(parts) != 2 or len(parts[0]) != 64 or \
                    any(c not in "0123456789abcdefABCDEF" for c in parts[0]):
                raise DataError(f"root: {sums_file}:{i}: expected '<sha256>  <file>', got "
                                f"{line!r:.80}")
            sums[parts[1].strip().lstrip("*")] = parts[0].lower()
    return sums


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

    Raises:
        ValueError, TypeError: a bad argument, or a file whose rows are not all text pairs
            (a ``null``, a number or a list where a reply should be; the message names the
            file, column and row); `w2s_theory.data.DataNotFound`: a missing folder or file.

    Examples:
        >>> from w2s_theory.data import hh_rlhf_root
        >>> s = from_split_files(hh_rlhf_root(), "harmless")
        >>> [len(s[k]) for k in ("train_gt", "train_w2s", "test")]
        [4000, 4000, 4000]
    """
    naming = check_choice(naming, "naming", ("folder", "prefix"))
    verify = check_choice(verify, "verify", ("auto", "sha256", "none"))
    name = check_str(name, "name")
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise ValueError(f"name: a subset folder or file prefix inside root, got {name!r}")
    given = _check_columns(columns, ("chosen", "rejected", "prompt"), ("chosen", "rejected"),
                           "preference")
    try:
        root = check_path(root, "root", must="dir")
    except PathNotFound as e:
        raise DataNotFound(str(e)) from None
    mapping: dict[str, str | None] = {"chosen": "chosen", "rejected": "rejected", "prompt": None}
    mapping.update(given)
    _check_distinct(mapping)
    sums_file = root / "SHA256SUMS"
    if verify == "sha256" and not sums_file.is_file():
        raise DataNotFound(f"verify: 'sha256' needs {sums_file}, which does not exist; use "
                           f"verify='auto' or 'none' to read files without listed digests")
    sums = _read_sums(sums_file) if verify != "none" and sums_file.is_file() else {}
    rels = {sp: (f"{name}/{sp}.jsonl" if naming == "folder" else f"{name}_{sp}.jsonl")
            for sp in SPLITS}
    if not any((root / r).exists() for r in rels.values()):
        raise DataNotFound(f"name: no split files {rels['train_gt']!r}, ... under {root} "
                           f"(naming={naming!r} expects {list(rels.values())})")
    out = {}
    for split in SPLITS:
        rel = rels[split]
        path = root / rel
        if not path.exists():
            raise DataNotFound(f"root: {path} not found (naming={naming!r} expects {rel!r} "
                               f"under {root}, beside the other split files)")
        if not path.is_file():
            raise DataError(f"root: {path} is a folder, not a split file")
        sha = _file_sha256(path)
        if rel in sums and sums[rel] != sha:
            raise DataError(f"root: {path}: sha256 {sha} does not match {sums[rel]} in "
                            f"{sums_file}")
        if verify == "sha256" and rel not in sums:
            raise DataError(f"root: {sums_file}: no digest listed for {rel}")
        ds = _read_table(path, "root")
        if len(ds) == 0:
            raise DataError(f"root: {path} has no rows")
        m = dict(mapping)
        if "prompt" not in given and "prompt" in ds.column_names:
            m["prompt"] = "prompt"   # a prompt column is used when the file has one
        cols = _columns(ds, m, str(path), given, "root")
        chosen, rejected = _preference(cols, m, str(path), "root")
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
        cache_dir: ``datasets``' cache (a folder; created when missing).

    The hub is used as ``datasets.load_dataset`` uses it: set ``HF_HUB_OFFLINE=1`` to
    read only the local cache (this library never forces offline mode). Every argument is
    checked before anything is read or written.
    """
    data_dir = check_str(data_dir, "data_dir", allow_none=True)
    sizes = _check_sizes(sizes)
    seed = check_int(seed, "seed", low=0)
    single_turn = check_bool(single_turn, "single_turn")
    path = check_str(path, "path")
    revision = check_str(revision, "revision", allow_none=True)
    if cache_dir is not None:
        cache_dir = check_path(cache_dir, "cache_dir")
        if cache_dir.exists() and not cache_dir.is_dir():
            raise ValueError(f"cache_dir: {cache_dir} is a file, not a folder")
        cache_dir = str(cache_dir)
    local = Path(path).expanduser()
    if local.is_dir():
        if data_dir is not None and not (local / data_dir).is_dir():
            have = sorted(p.name for p in local.iterdir() if p.is_dir())
            raise DataNotFound(f"data_dir: {local / data_dir} not found; the folders of {local} "
                               f"are {have}")
    elif local.exists():
        raise ValueError(f"path: cannot load {path!r}: a file; give a hub id or a folder in the "
                         f"hub's layout")
    elif path.startswith((".", "/", "~")) or path.count("/") > 1:
        raise ValueError(f"path: cannot load {path!r}: no such local folder (a hub id is "
                         f"'org/name')")
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
        where = f"{path} [{hub_split}]"
        m = {"chosen": "chosen", "rejected": "rejected"}
        cols = _columns(dd[hub_split], m, where, {}, "path")
        c, r = _preference(cols, m, where, "path")
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
            ``classification`` (columns ``text``, ``label``; labels integers ``0..k-1``, at
            least two classes).
        columns: maps those roles to the table's column names (default: the role names).
        sizes: rows of train_gt, train_w2s, test, drawn by `split_indices` (one pool);
            or ``split_column``: a column whose values are ``train_gt`` / ``train_w2s`` / ``test``
            (give one of the two).
        seed: the split's seed.
        name: the subset name recorded in the result.

    Every text cell must be a string (a missing cell, a number or a list is an error naming
    the column and row, never the text ``'None'`` or a sum of numbers), and every label an
    integer class index.

    Examples:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"q": ["a", "b", "c", "d"], "good": ["1", "2", "3", "4"],
        ...                    "bad": ["x", "y", "z", "w"]})
        >>> s = from_table(df, columns={"prompt": "q", "chosen": "good", "rejected": "bad"},
        ...                sizes=(1, 1, 2))
        >>> [len(s[k]) for k in ("train_gt", "train_w2s", "test")]
        [1, 1, 2]
    """
    task = check_choice(task, "task", ("preference", "classification"))
    roles = (("prompt", "chosen", "rejected") if task == "preference" else ("text", "label"))
    required = roles[1:] if task == "preference" else roles
    given = _check_columns(columns, roles, required, task)
    if sizes is not None:
        sizes = _check_sizes(sizes)
    seed = check_int(seed, "seed", low=0)
    split_column = check_str(split_column, "split_column", allow_none=True)
    name = check_str(name, "name")
    if split_column is not None and sizes is not None:
        raise ValueError("sizes: give either the split sizes or a split_column, not both")
    if split_column is None and sizes is None:
        raise ValueError("sizes: give the three split sizes (train_gt, train_w2s, test) or a "
                         "split_column")
    mapping: dict[str, str | None] = {r: r for r in roles}
    if task == "preference":
        mapping["prompt"] = None
    mapping.update(given)
    _check_distinct(mapping)
    ds = _read_table(data, "data")
    if task == "preference" and "prompt" not in given and "prompt" in ds.column_names:
        mapping["prompt"] = "prompt"   # a prompt column is used when the table has one
    where = str(data) if isinstance(data, (str, os.PathLike)) else "the table"
    cols = _columns(ds, mapping, where, given, "data")
    n = len(ds)
    if n == 0:
        raise DataError(f"data: {where} has no rows")
    if split_column is not None:
        if split_column not in ds.column_names:
            raise ValueError(f"split_column: {where} has no column {split_column!r}; its columns "
                             f"are {list(ds.column_names)}")
        sc = list(ds[split_column])
        bad = sorted({str(v) for v in sc} - set(SPLITS))
        if bad:
            raise ValueError(f"split_column: values {bad[:5]} in {split_column!r}; use "
                             f"{list(SPLITS)}")
        idx = {s: np.array([i for i, v in enumerate(sc) if v == s], dtype=np.int64) for s in SPLITS}
        for s in SPLITS:
            if idx[s].size == 0:
                raise ValueError(f"split_column: no row of {where} is in split {s!r}")
    else:
        if n < sum(sizes):
            raise ValueError(f"sizes: {sizes} need {sum(sizes)} rows, the data have {n}")
        idx = split_indices(n, None, sizes, seed)
    src = f"{where}" if isinstance(data, (str, os.PathLike)) else f"<{type(data).__name__}>"
    out = {}
    if task == "preference":
        chosen, rejected = _preference(cols, mapping, where, "data")
        for s in SPLITS:
            ii = idx[s]
            out[s] = _pairs([chosen[i] for i in ii], [rejected[i] for i in ii], name, s, src)
        return out
    texts = _texts(cols["text"], "text", mapping["text"], where, "data")
    labels = cols["label"]
    col = mapping["label"]
    for i, v in enumerate(labels):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 0:
            raise DataError(f"data: column {col!r} row {i} of {where}: the label column must "
                            f"hold integers 0..k-1 (class indices), got {_describe_cell(v)}")
    lab = np.asarray(labels, dtype=np.int64)
    if int(lab.max()) < 1:
        raise DataError(f"data: column {col!r} of {where}: every label is 0; classification "
                        f"needs at least two classes (labels 0..k-1)")
    for s in SPLITS:
        ii = idx[s]
        out[s] = LabelledTexts([texts[i] for i in ii], lab[ii], s, src)
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


def _spec_checks(where: str) -> dict[str, Any]:
    """Per key of a source table: the no-I/O check of its value (``where.key: ...`` messages)."""
    def path(k):
        return lambda v: str(check_path(v, f"{where}.{k}"))

    def text(k, none=False):
        return lambda v: check_str(v, f"{where}.{k}", allow_none=none)

    def choice(k, opts):
        return lambda v: check_choice(v, f"{where}.{k}", opts)

    def columns(v):
        if not isinstance(v, Mapping):
            raise ArgumentTypeError(f"{where}.columns: a table of roles to column names, got "
                                    f"{v!r:.60}")
        for role, col in v.items():
            check_str(role, f"{where}.columns key")
            check_str(col, f"{where}.columns.{role}", allow_none=role == "prompt")
        return dict(v)

    return {"root": path("root"), "data": path("data"), "cache_dir": path("cache_dir"),
            "name": text("name"), "path": text("path"), "revision": text("revision", True),
            "data_dir": text("data_dir", True), "split_column": text("split_column", True),
            "naming": choice("naming", ("folder", "prefix")),
            "verify": choice("verify", ("auto", "sha256", "none")),
            "task": choice("task", ("preference", "classification")),
            "subset": choice("subset", ("harmless", "helpful")),
            "seed": lambda v: check_int(v, f"{where}.seed", low=0),
            "single_turn": lambda v: check_bool(v, f"{where}.single_turn"),
            "sizes": lambda v: list(_check_sizes(v, f"{where}.sizes")),
            "columns": columns}


def check_source(spec: Mapping, where: str = "source") -> dict:
    """Validate a config's source table (no I/O) and return it as a plain, canonical dict.

    ``kind`` is one of `SOURCE_KINDS`: ``hh_rlhf`` (the local 4K/4K/4K layout:
    ``subset``, ``root``), ``split_files`` (`from_split_files`), ``hh_rlhf_hub``
    (`from_hh_rlhf_hub`) or ``table`` (`from_table`); the other keys are that
    function's arguments, each checked for its kind and range (messages start with
    ``<where>.<key>:``).

    Examples:
        >>> check_source({"kind": "hh_rlhf_hub", "sizes": [8, 8, 8]})["sizes"]
        [8, 8, 8]
    """
    from .config import check_keys

    where = check_str(where, "where")
    if not isinstance(spec, Mapping):
        raise ArgumentTypeError(f"{where}: a table with a 'kind' key, got {spec!r:.60} "
                                f"({type(spec).__name__})")
    kind = spec.get("kind")
    if not isinstance(kind, str) or kind not in SOURCE_KINDS:
        raise ValueError(f"{where}.kind: one of {list(SOURCE_KINDS)}, got {kind!r}")
    check_keys(spec, SOURCE_KINDS[kind], f"[{where}]")
    checks = _spec_checks(where)
    d: dict[str, Any] = {"kind": kind}
    for k, v in spec.items():
        if k != "kind":
            d[k] = None if v is None and k in ("sizes", "split_column", "revision", "data_dir",
                                               "cache_dir", "columns") else checks[k](v)
    if kind == "split_files" and not (d.get("root") and d.get("name")):
        raise ValueError(f"{where}: kind 'split_files' needs 'root' and 'name'")
    if kind == "table":
        if not d.get("data"):
            raise ValueError(f"{where}: kind 'table' needs 'data' (a .jsonl/.csv/.parquet file)")
        if d.get("sizes") is None and d.get("split_column") is None:
            raise ValueError(f"{where}: kind 'table' needs 'sizes' or 'split_column'")
        if d.get("sizes") is not None and d.get("split_column") is not None:
            raise ValueError(f"{where}: kind 'table' takes 'sizes' or 'split_column', not both")
    return d


def source_task(spec: Mapping) -> str:
    """``pairwise`` (preference pairs) or ``classification`` (labelled texts) of a source spec
    (checked by `check_source`)."""
    spec = check_source(spec)
    return "classification" if spec.get("kind") == "table" and \
        spec.get("task", "preference") == "classification" else "pairwise"


def source_name(spec: Mapping) -> str:
    """A short name of the source (its ``name`` key, else derived from its kind and place)."""
    spec = check_source(spec)
    if spec.get("name"):
        return str(spec["name"])
    kind = spec["kind"]
    if kind == "hh_rlhf":
        return spec.get("subset", "harmless")
    if kind == "hh_rlhf_hub":
        return spec.get("data_dir", "harmless-base") or "all"
    return Path(str(spec["data"])).stem


def describe_source(spec: Mapping) -> str:
    """One line saying where a source's data come from (for ``--dry-run``; no I/O).

    Examples:
        >>> describe_source({"kind": "hh_rlhf_hub", "sizes": [4000, 4000, 4000]})
        'Anthropic/hh-rlhf (hub form, data_dir harmless-base, seeded split 4000/4000/4000, seed 0)'
    """
    spec = check_source(spec)
    kind = spec["kind"]
    if kind == "hh_rlhf":
        return (f"HH-RLHF local 4K/4K/4K layout, subset {spec.get('subset', 'harmless')} "
                f"({spec.get('root') or 'default root'})")
    if kind == "split_files":
        naming = spec.get("naming", "folder")
        return (f"split files {spec['root']}/{spec['name']}"
                f"{'/<split>.jsonl' if naming == 'folder' else '_<split>.jsonl'}")
    if kind == "hh_rlhf_hub":
        sizes = "/".join(str(v) for v in (spec.get("sizes") or DEFAULT_SIZES))
        turn = ", single-turn only" if spec.get("single_turn") else ""
        return (f"{spec.get('path', 'Anthropic/hh-rlhf')} (hub form, data_dir "
                f"{spec.get('data_dir', 'harmless-base')}, seeded split {sizes}, seed "
                f"{spec.get('seed', 0)}{turn})")
    how = (f"split column {spec['split_column']!r}" if spec.get("split_column")
           else "seeded split " + "/".join(str(v) for v in spec["sizes"]))
    return f"table {spec['data']} ({spec.get('task', 'preference')}, {how})"


def load_source(spec: Mapping, *, where: str = "source"):
    """The three splits of a config's source table (see `check_source`).

    An error of the loader is re-raised (same class) with the key it concerns:
    ``source.data: file not found: ...``.
    """
    d = check_source(spec, where)
    try:
        return _load_checked(d, spec)
    except (ValueError, TypeError, UserError) as exc:
        msg = str(exc)
        key = msg.split(":", 1)[0]
        if key.split(".")[0].split("[")[0] in SOURCE_KINDS[d["kind"]] + ("sizes", "columns"):
            try:
                new = type(exc)(f"{where}.{msg}")
            except Exception:  # noqa: BLE001 -- an exception class with another signature
                raise exc from None
            raise new from exc
        raise


def _load_checked(d: dict, spec: Mapping):
    d = dict(d)
    kind = d.pop("kind")
    if kind != "split_files":
        d.pop("name", None)     # a label; split_files' name is the subset folder / file prefix
    if kind == "hh_rlhf":
        from .data import load_hh_rlhf

        return {sp: load_hh_rlhf(d.get("subset", "harmless"), sp, d.get("root")) for sp in SPLITS}
    if kind == "split_files":
        return from_split_files(d.pop("root"), d.pop("name"), **d)
    if kind == "hh_rlhf_hub":
        if d.get("sizes") is not None:
            d["sizes"] = tuple(d["sizes"])
        else:
            d.pop("sizes", None)
        return from_hh_rlhf_hub(d.pop("data_dir", "harmless-base"), **d)
    data = d.pop("data")
    return from_table(data, name=source_name(spec), **d)


def feature_tag(spec: Mapping, split: str) -> str:
    """The ``dataset`` tag under which a source split's LM features are cached (the feature
    cache key also holds the texts' digest, so two sources never share an entry).

    Examples:
        >>> feature_tag({"kind": "table", "data": "x/reviews.csv", "sizes": [1, 1, 1]}, "test")
        'source-table-reviews-test'
    """
    check_choice(split, "split", SPLITS)
    name = source_name(spec)                      # checks the spec
    return f"source-{spec['kind']}-{name}-{split}"
