"""User-facing errors: one line, exit status 2, no traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RlvrUserError(ValueError):
    """Bad input from the user (config, CLI flag, data field). The CLI prints it on one line."""

    exit_code = 2


def closest(name: str, options: Iterable[str]) -> str:
    """A ' (did you mean X?)' suffix, or '' when nothing is close."""
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def unknown(kind: str, name: str, options: Iterable[str]) -> RlvrUserError:
    opts = sorted(options)
    return RlvrUserError(f"unknown {kind} '{name}'; registered: {', '.join(opts)}{closest(name, opts)}")


class RlvrRunError(RuntimeError):
    """A run that started but could not finish as asked (learners stopped early, nothing can be learned).
    The CLI prints it on one line and exits 1; the run directory keeps what was done."""

    exit_code = 1
