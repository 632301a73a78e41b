"""Every command honours its config's output key the same way (issue 19): ``--out`` as given
(relative to the working folder) > the config's key (``out``, ``[run] out``, ``[partial] out``,
``[sweep] results``; relative to the project root, where the committed configs point) > the
command's default; and a bad config is one line on stderr with exit 2, in every command."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_tiny_real_config
from w2s_theory.cli import finetune as cli_finetune
from w2s_theory.cli import main
from w2s_theory.cli import partial as cli_partial
from w2s_theory.cli.common import output_path
from w2s_theory.config import ConfigError, read_toml

ROOT = Path(__file__).resolve().parents[1]
LEMMA1 = ROOT / "experiments" / "synthetic" / "lemma1.toml"
COMMITTED = 'results = "experiments/synthetic/results/lemma1.csv"'


def _first_line(capsys) -> str:
    return capsys.readouterr().out.splitlines()[0]


def test_output_path_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert output_path("a/b.csv", "x.csv") == Path("a/b.csv")
    assert output_path(None, "experiments/x.csv") == ROOT / "experiments" / "x.csv"
    assert output_path(None, str(tmp_path / "y.csv")) == tmp_path / "y.csv"
    assert output_path(None, None, "results_local/demo") == Path("results_local/demo")
    with pytest.raises(ConfigError, match="^out: "):
        output_path(None, None)


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


def test_finetune_and_partial_resolve_out_the_same_way(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    full = ROOT / "experiments" / "finetune" / "cpu_4k.toml"
    part = ROOT / "experiments" / "finetune" / "cpu_4k_partial.toml"
    want = ROOT / read_toml(full)["run"]["out"]
    cfg = cli_finetune.load(cli_finetune.parser().parse_args(["--config", str(full)]))
    assert cfg.out_path() == want
    cfg = cli_finetune.load(cli_finetune.parser().parse_args(["--config", str(full),
                                                             "--out", "mine.csv"]))
    assert cfg.out_path() == tmp_path / "mine.csv"          # the working folder, as for real
    pc = cli_partial.load(cli_partial.parser().parse_args(["--config", str(part)]))
    assert pc.out_path() == ROOT / read_toml(part)["partial"]["out"]
    pc = cli_partial.load(cli_partial.parser().parse_args(["--config", str(part),
                                                           "--out", "p.csv"]))
    assert pc.out_path() == tmp_path / "p.csv"


@pytest.mark.parametrize("cmd", [["synthetic"], ["real"], ["finetune"], ["partial"], ["demo"],
                                 ["features", "extract"]])
def test_a_bad_config_is_one_line_and_exit_2(tmp_path, capsys, cmd):
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml\n")
    assert main([*cmd, "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"w2s-theory {cmd[0]}: ") and "bad.toml" in err
