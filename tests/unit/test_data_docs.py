"""docs/DATA.md's GSM8K example runs as written, on the local GSM8K test file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[2] / "docs" / "DATA.md"


def test_data_doc_gsm8k_example_runs(shared_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "gsm8k_test.jsonl").symlink_to(shared_dir / "datasets/math/test_gsm8k.jsonl")
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    example = next(b for b in blocks if "import" in b)
    namespace: dict = {}
    exec(compile(example, "DATA.md", "exec"), namespace)  # our own documentation, not model output
    prompts = namespace["prompts"]
    assert 1000 < len(prompts) <= 1319  # a few long GSM8K questions exceed the 488-token budget
    assert all(p.ground_truth.lstrip("-").replace(".", "").isdigit() for p in prompts)
    assert prompts[0].text.endswith("put the final answer in \\boxed{}.")
    first_line = capsys.readouterr().out.splitlines()[0]
    assert first_line.split()[1] == prompts[0].ground_truth
