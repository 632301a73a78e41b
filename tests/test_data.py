"""Data loaders: HH-RLHF (paths, digests, malformed lines, slot labels) and VADER splits."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from w2s_theory import data as D

SHARED = D.project_root().parent / "shared" / "data" / "hh_rlhf"


def _independent_read(path: Path) -> tuple[list[str], list[str]]:
    chosen, rejected = [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                chosen.append(obj["chosen"])
                rejected.append(obj["rejected"])
    return chosen, rejected


def _copy_layout(tmp_path: Path, subset: str = "harmless", split: str = "test") -> Path:
    root = tmp_path / "hh"
    (root / subset).mkdir(parents=True)
    shutil.copy(SHARED / subset / f"{split}.jsonl", root / subset / f"{split}.jsonl")
    shutil.copy(SHARED / "SHA256SUMS", root / "SHA256SUMS")
    return root


# ------------------------------------------------------------------ root resolution
def test_root_resolution_order(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    monkeypatch.setenv(D.ENV_HH_RLHF, str(b))
    assert D.hh_rlhf_root(a) == a                      # explicit beats env
    assert D.hh_rlhf_root() == b                       # env beats default
    monkeypatch.delenv(D.ENV_HH_RLHF)
    assert D.hh_rlhf_root() == D.project_root().parent / "shared" / "data" / "hh_rlhf"


def test_missing_root_message_names_path_env_and_how(tmp_path, monkeypatch):
    missing = tmp_path / "nope"
    monkeypatch.setenv(D.ENV_HH_RLHF, str(missing))
    with pytest.raises(FileNotFoundError) as e:
        D.load_hh_rlhf("harmless", "test")
    msg = str(e.value)
    assert str(missing) in msg and D.ENV_HH_RLHF in msg and "SHA256SUMS" in msg


def test_bad_subset_split_verify_names_argument():
    for kw, name in [(dict(subset="x", split="test"), "subset"), (dict(subset="helpful", split="x"), "split")]:
        with pytest.raises(ValueError, match=name):
            D.load_hh_rlhf(**kw)
    with pytest.raises(ValueError, match="verify"):
        D.load_hh_rlhf("helpful", "test", verify="md5")


# ------------------------------------------------------------------ real files
@pytest.mark.parametrize("subset", D.SUBSETS)
@pytest.mark.parametrize("split", D.SPLITS)
def test_real_files_match_independent_parse(subset, split):
    p = D.load_hh_rlhf(subset, split)
    path = SHARED / subset / f"{split}.jsonl"
    chosen, rejected = _independent_read(path)
    assert p.chosen == chosen and p.rejected == rejected and len(p) == D.N_ROWS
    assert p.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert p.identical == [i for i in range(len(chosen)) if chosen[i] == rejected[i]]


def test_identical_pairs_of_helpful_are_reported_and_kept():
    got = {split: D.load_hh_rlhf("helpful", split).identical for split in D.SPLITS}
    assert sum(map(len, got.values())) == 3 and len(got["test"]) == 2 and len(got["train_gt"]) == 1
    p = D.load_hh_rlhf("helpful", "test")
    assert all(p.chosen[i] == p.rejected[i] for i in p.identical) and len(p) == 4000


def test_returned_lists_are_copies_of_the_cache():
    p = D.load_hh_rlhf("harmless", "test")
    p.chosen[0] = "mutated"
    assert D.load_hh_rlhf("harmless", "test").chosen[0] != "mutated"


# ------------------------------------------------------------------ integrity
def test_sha256_catches_a_one_character_change(tmp_path):
    root = _copy_layout(tmp_path)
    f = root / "harmless" / "test.jsonl"
    assert len(D.load_hh_rlhf("harmless", "test", root)) == 4000
    raw = f.read_bytes()
    i = raw.index(b"Human:")
    f.write_bytes(raw[:i] + b"human:" + raw[i + 6:])          # same rows, same length
    with pytest.raises(ValueError, match="sha256"):
        D.load_hh_rlhf("harmless", "test", root)
    assert len(D.load_hh_rlhf("harmless", "test", root, verify="counts")) == 4000


def test_counts_catch_a_dropped_row(tmp_path):
    root = _copy_layout(tmp_path)
    f = root / "harmless" / "test.jsonl"
    f.write_text("".join(f.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(ValueError, match="3999 rows"):
        D.load_hh_rlhf("harmless", "test", root, verify="counts")
    assert len(D.load_hh_rlhf("harmless", "test", root, verify="none")) == 3999


def test_malformed_line_names_file_and_line(tmp_path):
    root = _copy_layout(tmp_path)
    f = root / "harmless" / "test.jsonl"
    lines = f.read_text().splitlines(keepends=True)
    lines[2] = lines[2][:40] + "\n"                           # line 3: truncated JSON
    f.write_text("".join(lines))
    with pytest.raises(ValueError, match=r"test\.jsonl:3: malformed JSON"):
        D.load_hh_rlhf("harmless", "test", root, verify="none")
    lines[2] = json.dumps({"chosen": "a", "rejected": 3}) + "\n"
    f.write_text("".join(lines))
    with pytest.raises(ValueError, match=r"test\.jsonl:3: expected an object"):
        D.load_hh_rlhf("harmless", "test", root, verify="none")


def test_missing_sums_file_and_missing_file(tmp_path):
    root = _copy_layout(tmp_path)
    (root / "SHA256SUMS").unlink()
    with pytest.raises(FileNotFoundError, match="SHA256SUMS"):
        D.load_hh_rlhf("harmless", "test", root)
    with pytest.raises(FileNotFoundError, match="train_gt.jsonl"):
        D.load_hh_rlhf("harmless", "train_gt", root, verify="none")


def test_cache_sees_a_rewritten_file(tmp_path):
    root = tmp_path / "hh"
    (root / "harmless").mkdir(parents=True)
    f = root / "harmless" / "test.jsonl"
    f.write_text(json.dumps({"chosen": "c1", "rejected": "r1"}) + "\n")
    assert D.load_hh_rlhf("harmless", "test", root, verify="none").chosen == ["c1"]
    f.write_text(json.dumps({"chosen": "c2", "rejected": "r2"}) + "\n" * 3)   # new size + mtime
    assert D.load_hh_rlhf("harmless", "test", root, verify="none").chosen == ["c2"]


# ------------------------------------------------------------------ slot labels
def test_slots_seeded_balanced_int8():
    a, b = D.preference_slots(4000, 1), D.preference_slots(4000, 1)
    assert a.dtype == np.int8 and np.array_equal(a, b)
    assert not np.array_equal(a, D.preference_slots(4000, 2))
    # fair coin: mean within 4 standard errors of 1/2
    assert abs(a.mean() - 0.5) < 4 * 0.5 / np.sqrt(4000)
    assert set(np.unique(a)) == {0, 1}
    with pytest.raises(ValueError, match="seed"):
        D.preference_slots(3, 1.5)
    with pytest.raises(ValueError, match="n"):
        D.preference_slots(-1, 0)


def test_preference_task_slot_a_is_chosen_iff_label_1():
    p = D.load_hh_rlhf("harmless", "test")
    a, b, y = D.preference_task(p, seed=7)
    assert np.array_equal(y, D.preference_slots(4000, 7))
    for i in range(len(p)):
        assert (a[i], b[i]) == ((p.chosen[i], p.rejected[i]) if y[i] == 1 else (p.rejected[i], p.chosen[i]))


# ------------------------------------------------------------------ VADER
def _sdist(tmp_path: Path, lines: list[str]) -> Path:
    def tar_bytes(members):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    inner = tar_bytes({"hutto_ICWSM_2014/a_GroundTruth.txt": "".join(lines).encode("latin-1"),
                       "hutto_ICWSM_2014/a_anonDataRatings.txt": b"ignored\t1\t2\n"})
    path = tmp_path / D.VADER_SDIST
    path.write_bytes(tar_bytes({D.vader._VADER_INNER: inner}))
    return path


def test_vader_splits_balanced_disjoint_seeded(tmp_path):
    lines = [f"{i}\t{(1 if i % 3 else -1) * (0.5 + i % 7)}\ttext {i}\n" for i in range(60)]
    lines += ["90\t0\tzero rated\n", "91\t1.5\ttext 0\n", "92\t2.0\ttext 1\n"]  # text 0 now has both signs
    s = _sdist(tmp_path, lines)
    d = D.load_vader(seed=3, n_per_split=6, sdist=s, cache=tmp_path)
    texts = [t for v in d.values() for t in v.texts]
    assert len(texts) == len(set(texts)) == 18                     # disjoint
    assert "zero rated" not in texts and "text 0" not in texts     # zeros and ambiguous dropped
    truth = {f"text {i}": int(i % 3 != 0) for i in range(60)}
    for v in d.values():
        assert len(v) == 6 and v.labels.dtype == np.int8 and int(v.labels.sum()) == 3
        assert [truth[t] for t in v.texts] == v.labels.tolist()
    again = D.load_vader(seed=3, n_per_split=6, sdist=s, cache=tmp_path)
    assert all(again[k].texts == d[k].texts for k in d)
    other = D.load_vader(seed=4, n_per_split=6, sdist=s, cache=tmp_path)
    assert any(other[k].texts != d[k].texts for k in d)
    with pytest.raises(ValueError, match="n_per_split"):
        D.load_vader(seed=0, n_per_split=40, sdist=s, cache=tmp_path)
    with pytest.raises(ValueError, match="n_per_split"):
        D.load_vader(seed=0, n_per_split=5, sdist=s, cache=tmp_path)


def test_vader_malformed_row_is_named(tmp_path):
    s = _sdist(tmp_path, ["1\t0.5\tok\n", "2\tnot-a-number\tbad\n"])
    with pytest.raises(ValueError, match=r"a_GroundTruth.txt:2: rating"):
        D.load_vader(sdist=s, cache=tmp_path, n_per_split=2)


def test_vader_real_archive():
    """The real ground truth (fetched once with pip into the cache): sizes, balance, labels."""
    d = D.load_vader(seed=0)
    sdist = D.fetch_vader()
    # independent parse of the archive: every returned label is the sign of the text's rating(s)
    with tarfile.open(sdist) as outer:
        inner = tarfile.open(fileobj=io.BytesIO(outer.extractfile(D.vader._VADER_INNER).read()))
        ratings: dict[str, list[float]] = {}
        n_rows = 0
        for m in inner.getmembers():
            if m.name.endswith("_GroundTruth.txt"):
                for line in inner.extractfile(m).read().decode("latin-1").splitlines():
                    _, r, t = line.split("\t")
                    ratings.setdefault(t.strip(), []).append(float(r))
                    n_rows += 1
    assert n_rows == 23703
    seen = set()
    for _split, v in d.items():
        assert len(v) == 4000 and int(v.labels.sum()) == 2000
        for t, y in zip(v.texts, v.labels):
            rs = ratings[t]
            assert all((r > 0) == bool(y) and r != 0 for r in rs)
        seen |= set(v.texts)
    assert len(seen) == 12000
