"""The README's custom-verifier example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_custom_verifier_block_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(b for b in blocks if "register_verifier" in b)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)  # our own documentation, not model output
    import rlvr.verifiers

    assert "last_word" in rlvr.verifiers.available()
    assert not rlvr.verifiers.get("last_word").verify("", "x").correct
