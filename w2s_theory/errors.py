"""The base of the errors a user fixes (`UserError`), apart from the config layer so that the
validation core and the config layer both derive from it without importing each other."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """Base of the errors the user fixes, not the code: a config, a data file, a model, a device.

    The command line prints the message of any of them on one line and exits 2, no traceback
    (``w2s-theory --traceback ...`` re-raises them). Each subclass also derives from the
    built-in it refines (``ValueError``, ``FileNotFoundError``, ``ImportError``), so callers
    that catch those keep working: `ConfigError`,
    `w2s_theory.data.DataError` / `DataNotFound`,
    `w2s_theory.models.ModelNotInstalled`,
    `w2s_theory._validation.DeviceUnavailable`,
    `w2s_theory.results_table.ResultTableError`.
    """


UserError.__module__ = "w2s_theory.config"   # its documented home (re-exported there)
