"""Where the data live: the project root, the cache folder, the HH-RLHF folder; the data errors."""

from __future__ import annotations

import os
from pathlib import Path

from ..config import UserError

__all__ = ["DataError", "DataNotFound", "SUBSETS", "SPLITS", "N_ROWS", "ENV_HH_RLHF", "ENV_CACHE",
           "project_root", "cache_dir", "hh_rlhf_root", "hh_rlhf_hint"]

#: HH-RLHF subsets and splits (the paper's 4K/4K/4K protocol).
SUBSETS = ("harmless", "helpful")
SPLITS = ("train_gt", "train_w2s", "test")
#: Rows per HH-RLHF file (and per VADER split).
N_ROWS = 4000
#: Environment variable that points at an HH-RLHF folder of the shared layout.
ENV_HH_RLHF = "W2S_HH_RLHF_DIR"
#: Environment variable for the project's cache (VADER archive, computed features, models).
ENV_CACHE = "W2S_CACHE_DIR"

class DataError(UserError, ValueError):
    """A data file that cannot be used (malformed line, wrong digest or size); names file and line."""


class DataNotFound(UserError, FileNotFoundError):
    """A data folder or file that is not there; the message says where it was looked for."""


_GET_DATA = (
    "The data are Anthropic's HH-RLHF single-turn pairs in the 4K/4K/4K splits of arXiv "
    "2502.11107's authors (see ../shared/data/hh_rlhf/README.md): put a folder holding "
    "harmless/{train_gt,train_w2s,test}.jsonl, helpful/... and SHA256SUMS at "
    "<project root>/../shared/data/hh_rlhf, or point $ENV (or the CLI option --data-dir) "
    "at your copy."
)


def hh_rlhf_hint() -> str:
    """How to get the HH-RLHF files (the end of every missing-file message)."""
    return _GET_DATA.replace("ENV", ENV_HH_RLHF)


# --------------------------------------------------------------------------- paths
def project_root() -> Path:
    """The folder holding ``pyproject.toml`` above this package (fallback: the cwd).

    Examples:
        >>> (project_root() / "w2s_theory").is_dir() or True
        True
    """
    here = Path(__file__).resolve().parent
    for d in (here, *here.parents):
        if (d / "pyproject.toml").is_file():
            return d
    return Path.cwd()


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The project's cache folder: ``path`` > ``$W2S_CACHE_DIR`` > ``~/.cache/w2s_theory``.

    Not created here; writers create what they need.

    Examples:
        >>> str(cache_dir("/tmp/x"))
        '/tmp/x'
    """
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "w2s_theory"


def hh_rlhf_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the HH-RLHF folder: ``root`` > ``$W2S_HH_RLHF_DIR`` > ``<project>/../shared/data/hh_rlhf``.

    Raises:
        DataNotFound: (a ``FileNotFoundError``) the resolved folder does not exist; the
            message names the path, the environment variable and how to get the data.

    Examples:
        >>> hh_rlhf_root().name
        'hh_rlhf'
    """
    if root is not None:
        path, how = Path(root).expanduser(), "the explicit root argument"
    elif os.environ.get(ENV_HH_RLHF):
        path, how = Path(os.environ[ENV_HH_RLHF]).expanduser(), f"${ENV_HH_RLHF}"
    else:
        path, how = project_root().parent / "shared" / "data" / "hh_rlhf", "the default location"
    if not path.is_dir():
        raise DataNotFound(
            f"HH-RLHF folder not found: {path} (from {how}). " + _GET_DATA.replace("ENV", ENV_HH_RLHF)
        )
    return path
