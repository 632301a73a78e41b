"""``Anthropic/hh-rlhf`` in its hub form, split by the seeded rule."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .._validation import check_bool, check_int, check_path, check_str
from ..data import DataNotFound, PreferencePairs
from .columns import make_pairs, mapped_columns, preference_texts, require_datasets
from .splits import DEFAULT_SIZES, check_sizes, split_indices

__all__ = ["from_hh_rlhf_hub", "is_single_turn"]

_HUMAN = "\n\nHuman:"


def is_single_turn(dialogue: str) -> bool:
    """True when an HH-RLHF dialogue has exactly one ``Human:`` turn.

    Examples:
        >>> is_single_turn("\\n\\nHuman: hi\\n\\nAssistant: hello"), is_single_turn("\\n\\nHuman: a\\n\\nAssistant: b\\n\\nHuman: c\\n\\nAssistant: d")
        (True, False)
    """
    return check_str(dialogue, "dialogue", allow_empty=True).count(_HUMAN) == 1



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
    sizes = check_sizes(sizes)
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
    datasets = require_datasets()
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
        cols = mapped_columns(dd[hub_split], m, where, {}, "path")
        c, r = preference_texts(cols, m, where, "path")
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
        out[split] = make_pairs([c[i] for i in ii], [r[i] for i in ii], subset, split,
                            f"{path}:{subset}:{pool}" + (f"@{revision}" if revision else ""))
    return out
