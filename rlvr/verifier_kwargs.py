"""The keyword arguments one verifier call gets: options from the verifier spec, row fields from the data.

In: a verifier object, its spec options (`verifiers.specs.<name>` without `timeout_s`) and one row's metadata.
Out: the kwargs for `verify(response, gold, **kwargs)`. A dataset column must never change how a response is
graded, so a row field reaches the verifier only when its name is not one of the verifier's options; options
come only from the spec (or the verifier's defaults).

A verifier's options are the keyword parameters of its `verify` (of the wrapped function for function
verifiers) that have a default, plus `timeout_s` and the spec's keys. A verifier that reads a row field
through a named parameter with a default (countdown's `numbers=None`) lists it in `row_fields`; one that
wants to spell out its options exactly sets `options`. Parameters without a default are row fields: no
option is required.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

ALWAYS_OPTIONS = frozenset({"timeout_s"})  # the pool's per-check limit, never a row's


def option_names(verifier: Any) -> frozenset[str]:
    """Names a row field may not take for this verifier (see the module docstring)."""
    declared = getattr(verifier, "options", None)
    if declared is not None:
        return frozenset(declared) | ALWAYS_OPTIONS
    fn = getattr(verifier, "fn", None) or getattr(verifier, "verify", None)
    names: set[str] = set()
    if fn is not None:
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):  # builtins and C callables have no signature to read
            params = []
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        # (response, ground_truth) come first and are never options.
        skip = {p.name for p in [p for p in params if p.kind in positional][:2]}
        for p in params:
            keyword = p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            if keyword and p.name not in skip and p.default is not inspect.Parameter.empty:
                names.add(p.name)
    row_fields: Iterable[str] = getattr(verifier, "row_fields", ()) or ()
    return frozenset(names - set(row_fields)) | ALWAYS_OPTIONS


def verify_kwargs(
    options: Mapping[str, Any], metadata: Mapping[str, Any] | None, reserved: frozenset[str]
) -> dict[str, Any]:
    """Spec options, plus the row fields whose names are neither reserved nor set in the spec."""
    blocked = reserved | set(options)
    rows = {k: v for k, v in (metadata or {}).items() if k not in blocked}
    return {**rows, **options}


def takes_any_option(verifier: Any) -> bool:
    """Whether a spec key outside `option_names` may still mean something to this verifier: it has a
    `**kwargs` catch-all whose name does not start with "_" (`**_metadata` says: extra keys are ignored)
    and declares no `options`. Otherwise an unknown spec key is a typo, refused at config load."""
    if getattr(verifier, "options", None) is not None:
        return False
    fn = getattr(verifier, "fn", None) or getattr(verifier, "verify", None)
    try:
        params = inspect.signature(fn).parameters.values() if fn is not None else []
    except (TypeError, ValueError):
        return True  # nothing to read: do not refuse what it may take
    return any(p.kind is inspect.Parameter.VAR_KEYWORD and not p.name.startswith("_") for p in params)
