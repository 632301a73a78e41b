"""Every command honours its config's output key the same way (issue 19; the rule is
`w2s_theory.cli.common.output_path`, doctested there): ``--out`` as given
(relative to the working folder) > the config's key (``out``, ``[run] out``, ``[partial] out``,
``[sweep] results``; relative to the project root, where the committed configs point) > the
command's default; and a bad config is one line on stderr with exit 2, in every command."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_tiny_real_config
from w2s_theory.cli import main
from w2s_theory.config import read_toml

ROOT = Path(__file__).resolve().parents[1]
LEMMA1 = ROOT / "experiments" / "synthetic" / "lemma1.toml"
COMMITTED = 'results = "experiments/synthetic/results/lemma1.csv"'


def _first_line(capsys) -> str:
    return capsys.readouterr().out.splitlines()[0]


@pytest.mark.parametrize("where", ["absolute", "relative"])
def test_synthetic_writes_where_its_config_points(tmp_path, capsys, where):
    """The synthetic sweep honours ``[sweep] results`` (it used to ignore it); --out wins."""
    results = str(tmp_path / "a" / "syn.csv") if where == "absolute" else "results_local/t/syn.csv"
    want = tmp_path / "a" / "syn.csv" if where == "absolute" else ROOT / results
    cfg = tmp_path / "s.toml"
    text = LEMMA1.read_text()
    assert COMMITTED in text
    cfg.write_text(text.replace(COMMITTED, f'results = "{results}"'))
    main(["synthetic", "--config", str(cfg), "--dry-run", "--no-figures"])
    assert _first_line(capsys).endswith(f"-> {want}")
    main(["synthetic", "--config", str(cfg), "--dry-run", "--no-figures",
          "--out", str(tmp_path / "b.csv")])
    assert _first_line(capsys).endswith(f"-> {tmp_path / 'b.csv'}")


def test_real_writes_where_its_config_points(tmp_path, capsys, hub_env):
    cfg = write_tiny_real_config(tmp_path)
    cfg.write_text(cfg.read_text().replace('name = "t"\n', 'name = "t"\nout = "results_local/t/r.csv"\n'))
    main(["real", "--config", str(cfg), "--dry-run"])
    assert _first_line(capsys).endswith(f"-> {ROOT / 'results_local/t/r.csv'}")
    main(["real", "--config", str(cfg), "--dry-run", "--out", str(tmp_path / "o.csv")])
    assert _first_line(capsys).endswith(f"-> {tmp_path / 'o.csv'}")


def _out_line(capsys, prefix: str) -> str:
    return next(ln for ln in capsys.readouterr().out.splitlines() if prefix in ln)


def test_finetune_and_partial_resolve_out_the_same_way(tmp_path, monkeypatch, capsys):
    """The config's key is read against the project root, ``--out`` against the working folder
    (as for ``real``; both commands used to read ``--out`` against the project root)."""
    monkeypatch.chdir(tmp_path)
    full = ROOT / "experiments" / "finetune" / "cpu_4k.toml"
    part = ROOT / "experiments" / "finetune" / "cpu_4k_partial.toml"
    main(["finetune", "--config", str(full), "--dry-run"])
    assert _out_line(capsys, "  out: ").split()[1] == str(ROOT / read_toml(full)["run"]["out"])
    main(["finetune", "--config", str(full), "--dry-run", "--out", "mine.csv"])
    assert _out_line(capsys, "  out: ").split()[1] == str(tmp_path / "mine.csv")
    main(["partial", "--config", str(part), "--dry-run"])
    assert _out_line(capsys, "partial fine-tuning").endswith(
        f"-> {ROOT / read_toml(part)['partial']['out']}")
    main(["partial", "--config", str(part), "--dry-run", "--out", "p.csv"])
    assert _out_line(capsys, "partial fine-tuning").endswith(f"-> {tmp_path / 'p.csv'}")


@pytest.mark.parametrize("cmd", [["synthetic"], ["real"], ["finetune"], ["partial"], ["demo"],
                                 ["features", "extract"]])
def test_a_bad_config_is_one_line_and_exit_2(tmp_path, capsys, cmd):
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml\n")
    assert main([*cmd, "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"w2s-theory {cmd[0]}: ") and "bad.toml" in err
