"""Writing a ledger: its four CSVs, the plain-text summary and the README's results block."""

from __future__ import annotations

from pathlib import Path

from .._validation import (
    ArgumentTypeError,
    check_path,
)
from .records import LEDGER_FILES, README_MARKERS, Ledger, fmt_pts


def write(ledger, out_dir) -> list[Path]:
    """Write a `Ledger`'s four tables as CSV into ``out_dir`` (created if needed):
    ``ledger.csv``, ``ledger_summary.csv``, ``ledger_excluded.csv``, ``ledger_checks.csv``.

    Args:
        ledger: a `Ledger`.
        out_dir: a folder.

    Returns:
        the four paths, in that order.
    """
    if not isinstance(ledger, Ledger):
        raise ArgumentTypeError(f"ledger: must be a Ledger (build), got {type(ledger).__name__}")
    out = check_path(out_dir, "out_dir")
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir: {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"out_dir: cannot create {out} ({exc.strerror or exc})") from None
    paths = []
    for name, frame in zip(LEDGER_FILES, (ledger.rows, ledger.summary, ledger.excluded,
                                          ledger.checks)):
        p = out / name
        frame.to_csv(p, index=False, float_format="%.6g", lineterminator="\n")
        paths.append(p)
    return paths


def summary_text(ledger) -> str:
    """Plain-text lines: one per primary family (word, effect, CI, counts, paper)."""
    if not isinstance(ledger, Ledger):
        raise ArgumentTypeError(f"ledger: must be a Ledger (build), got {type(ledger).__name__}")
    lines = []
    for r in ledger.summary.itertuples(index=False):
        if r.family.startswith("sens."):
            continue
        lines.append(f"{r.family}: {r.word} {fmt_pts(r.effect_pts)} "
                     f"[{fmt_pts(r.ci_low)}, {fmt_pts(r.ci_high)}] pts; "
                     f"{r.n_better}/{r.n_worse}/{r.n_equivalent}/{r.n_inconclusive} "
                     f"(better/worse/equiv/inconcl); paper {r.paper_pts or '-'}")
    n_s = int(ledger.summary["family"].str.startswith("sens.").sum())
    lines.append(f"+ {n_s} sensitivity families; {len(ledger.excluded)} excluded entries; "
                 f"{len(ledger.checks)} claim-6 checks")
    return "\n".join(lines)


def replace_readme_block(readme: Path, block: str) -> Path:
    a, b = README_MARKERS
    text = readme.read_text()
    if a not in text or b not in text:
        raise ValueError(f"{readme}: no results block (the lines {a!r} ... {b!r})")
    head, rest = text.split(a, 1)
    _, tail = rest.split(b, 1)
    readme.write_text(f"{head}{a}\n{block.strip()}\n{b}{tail}")
    return readme
