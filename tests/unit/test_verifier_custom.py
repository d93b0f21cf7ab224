"""The custom-verifier example in docs/VERIFIERS.md, run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rlvr.types import VerifyStatus
from rlvr.verifiers import available, get

pytestmark = pytest.mark.unit
DOC = Path(__file__).resolve().parents[2] / "docs" / "VERIFIERS.md"


def test_docs_example_registers_and_verifies() -> None:
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL).group(1)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # our own documentation, not model output
    assert "exact_word" in available()
    v = get("exact_word")
    assert v.verify("The capital is Paris.", "paris").correct
    assert not v.verify("The capital is Lyon.", "paris").correct
    assert v.verify("   ", "paris").status == VerifyStatus.NO_ANSWER
