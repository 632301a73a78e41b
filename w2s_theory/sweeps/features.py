"""``w2s-theory features``: extract and cache LM features; prepare the GPU extraction folder.

Subcommands::

    w2s-theory features info
    w2s-theory features extract --model all-MiniLM-L6-v2 --data hh_rlhf [--subset harmless] [--split test]
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

import argparse
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from .. import data as D
from .. import features as F

__all__ = ["ExtractConfig", "main", "prepare_gpu", "gpu_parts", "split_chunks", "join_chunks"]


@dataclass(frozen=True)
class ExtractConfig:
    """What ``features extract`` computes (TOML keys = field names)."""

    model: str = "all-MiniLM-L6-v2"
    data: str = "hh_rlhf"                      # "hh_rlhf" or "vader"
    subsets: tuple[str, ...] = D.SUBSETS
    splits: tuple[str, ...] = D.SPLITS
    device: str = "auto"
    cache: str | None = None
    data_dir: str | None = None
    vader_seed: int = 0
    max_tokens: int | None = None

    def __post_init__(self):
        F.feature_spec(self.model)
        if self.data not in ("hh_rlhf", "vader"):
            raise ValueError(f"data: must be 'hh_rlhf' or 'vader', got {self.data!r}")
        for s in self.subsets:
            if s not in D.SUBSETS:
                raise ValueError(f"subsets: unknown subset {s!r}; known {D.SUBSETS}")
        for s in self.splits:
            if s not in D.SPLITS:
                raise ValueError(f"splits: unknown split {s!r}; known {D.SPLITS}")

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> "ExtractConfig":
        """Load from a TOML file (top level or a ``[features]`` table); unknown keys fail."""
        try:
            import tomllib
        except ImportError:  # python 3.10
            import tomli as tomllib
        raw = tomllib.loads(Path(path).read_text())
        raw = raw.get("features", raw)
        names = {f.name for f in fields(cls)}
        bad = sorted(set(raw) - names)
        if bad:
            raise ValueError(f"{path}: unknown keys {bad}; allowed {sorted(names)}")
        for k in ("subsets", "splits"):
            if k in raw:
                raw[k] = tuple(raw[k])
        return cls(**raw)


def _cmd_info(args) -> int:
    from .. import models as M

    print("models (registry):")
    for name in M.LADDER:
        info = M.REGISTRY[name]
        ok = M.is_installed(name)
        print(f"  {name:<20} {info.kind:<8} {info.params / 1e6:6.1f}M  hidden {info.hidden:<4} "
              f"{'installed' if ok else 'missing: ' + info.install}")
    roots = F.prebuilt_roots(args.features_dir)
    print("prebuilt feature folders:", ", ".join(map(str, roots)) or "none")
    for r in roots:
        for d in sorted((r / "hh_rlhf").iterdir()):
            n = len(list(d.glob("*/*.npz")))
            print(f"  {d.name:<24} {n} files")
    print("cache:", D.cache_dir(args.cache))
    return 0


def _cmd_extract(args) -> int:
    import time

    if args.config:
        cfg = ExtractConfig.from_toml(args.config)
    else:
        cfg = ExtractConfig(model=args.model, data=args.data,
                            subsets=tuple(args.subset or D.SUBSETS), splits=tuple(args.split or D.SPLITS),
                            device=args.device, cache=args.cache, data_dir=args.data_dir,
                            max_tokens=args.max_tokens)
    t0 = time.perf_counter()
    if cfg.data == "hh_rlhf":
        for subset in cfg.subsets:
            for split in cfg.splits:
                t = time.perf_counter()
                f = F.load_features(cfg.model, subset, split, data_root=cfg.data_dir, cache=cfg.cache,
                                    device=cfg.device, root=args.features_dir)
                print(f"{cfg.model} hh_rlhf/{subset}/{split}: chosen {f['chosen'].shape} "
                      f"({time.perf_counter() - t:.1f} s)")
    else:
        splits = D.load_vader(seed=cfg.vader_seed, cache=cfg.cache)
        for split in cfg.splits:
            t = time.perf_counter()
            x = F.features_for_texts(cfg.model, splits[split].texts, dataset=f"vader-seed{cfg.vader_seed}-{split}",
                                     cache=cfg.cache, device=cfg.device, max_tokens=cfg.max_tokens)
            print(f"{cfg.model} vader/{split}: {x.shape} ({time.perf_counter() - t:.1f} s)")
    print(f"done in {time.perf_counter() - t0:.1f} s; cache {D.cache_dir(cfg.cache)}")
    return 0


def _cmd_fetch_vader(args) -> int:
    path = D.fetch_vader(args.cache)
    splits = D.load_vader(cache=args.cache)
    print(f"{path}: " + ", ".join(f"{k} {len(v)} ({int(v.labels.sum())} positive)" for k, v in splits.items()))
    return 0


def gpu_parts(n_limit: int | None = None, data_root=None) -> tuple[list[dict], list[str]]:
    """The 12 parts (subset x split x side) in prepared order and the concatenated texts.

    Example:
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

    from .. import models as M

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
        "feature_set": name or F._set_name(spec),
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
    from ..sweep import atomic_write_text

    atomic_write_text(out / "w2s_prepared.json", json.dumps(manifest, indent=1))
    return manifest


def split_chunks(folder: str | os.PathLike, chunk_mib: float) -> dict:
    """Split every file of ``folder`` larger than ``chunk_mib`` MiB into ``NAME.partNNN`` files.

    The original is removed; the returned ``{name: {"sha256", "size", "parts"}}`` lets
    :func:`join_chunks` (also used by the GPU script) restore and verify it.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "w.bin").write_bytes(bytes(range(256)) * 9)
        >>> info = split_chunks(d, 1000 / 2**20); info["w.bin"]["parts"]
        ['w.bin.part000', 'w.bin.part001', 'w.bin.part002']
        >>> join_chunks(d, info); len((d / "w.bin").read_bytes())
        2304
    """
    import hashlib

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
    """Rebuild files split by :func:`split_chunks` (sha256-checked); a no-op when present."""
    import hashlib

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


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _cmd_prepare_gpu(args) -> int:
    out = Path(args.out)
    if out.exists() and args.force:
        shutil.rmtree(out)
    man = prepare_gpu(out, model=args.model, limit=args.limit, ref_rows=args.ref_rows,
                      data_root=args.data_dir, features_dir=args.features_dir, cache=args.cache,
                      chunk_mib=args.chunk_mib)
    size = _dir_size(out)
    print(f"prepared {out}: {man['n_texts']} texts, {man['real_tokens']} tokens, "
          f"{man['reference']['rows']} reference rows; {size / 2**20:.1f} MiB")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="w2s-theory features", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cache", default=None, help=f"cache folder (default ${D.ENV_CACHE} or ~/.cache/w2s_theory)")
    common.add_argument("--data-dir", default=None, help=f"HH-RLHF folder (default ${D.ENV_HH_RLHF} or ../shared/data/hh_rlhf)")
    common.add_argument("--features-dir", default=None, help=f"prebuilt features folder (default ${F.ENV_FEATURES} or ../shared/features)")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info", parents=[common], help="installed models, prebuilt features, cache")
    e = sub.add_parser("extract", parents=[common], help="compute + cache features (prebuilt first)")
    e.add_argument("--config", default=None, help="TOML file with ExtractConfig fields")
    e.add_argument("--model", default="all-MiniLM-L6-v2", choices=sorted(F.FEATURE_SETS))
    e.add_argument("--data", default="hh_rlhf", choices=["hh_rlhf", "vader"])
    e.add_argument("--subset", action="append", choices=D.SUBSETS)
    e.add_argument("--split", action="append", choices=D.SPLITS)
    e.add_argument("--device", default="auto")
    e.add_argument("--max-tokens", type=int, default=None, help="padded tokens per batch")
    sub.add_parser("fetch-vader", parents=[common], help="pip-download the VADER ground truth once")
    g = sub.add_parser("prepare-gpu", parents=[common], help="folder for experiments/gpu/extract_features.py")
    g.add_argument("--out", required=True)
    g.add_argument("--model", default="all-MiniLM-L6-v2")
    g.add_argument("--limit", type=int, default=None, help="rows per part (default all 4000)")
    g.add_argument("--ref-rows", type=int, default=8,
                   help="random reference rows per part (+ the first 4 and the longest)")
    g.add_argument("--chunk-mib", type=float, default=None,
                   help="split files above this size into NAME.partNNN (staging under a carry limit)")
    g.add_argument("--force", action="store_true", help="remove --out first")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return {"info": _cmd_info, "extract": _cmd_extract, "fetch-vader": _cmd_fetch_vader,
            "prepare-gpu": _cmd_prepare_gpu}[args.cmd](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
