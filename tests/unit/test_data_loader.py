"""The dataset loader: real-dataset golds, skipped rows, template files, stable ids, hub configs, bad rows."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from rlvr.config.loader import load_config
from rlvr.data.loader import load_prompts
from rlvr.errors import RlvrUserError

pytestmark = pytest.mark.unit


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _data(*overrides: str):
    return load_config(list(overrides)).data


def test_gsm8k_preset_on_the_local_file(shared_dir: Path) -> None:
    path = shared_dir / "datasets/math/test_gsm8k.jsonl"
    cfg = _data("data=gsm8k", f"data.source={path}", "data.chat_template=false", "data.shuffle=false")
    prompts = load_prompts(cfg)
    first = json.loads(path.read_text().splitlines()[0])
    assert len(prompts) == 1319
    assert prompts[0].ground_truth == "18"  # Janet's ducks: "... #### 18"
    assert prompts[0].text.startswith(first["question"]) and prompts[0].text.endswith("in \\boxed{}.")
    assert all(p.ground_truth and "####" not in p.ground_truth for p in prompts)
    assert prompts[0].metadata == {"idx": 0}  # other columns stay row metadata


def test_math_preset_reads_the_last_box_of_the_solution(tmp_path: Path) -> None:
    rows = [
        {"problem": "1+1?", "solution": r"So $\boxed{2}$.", "level": "Level 1", "type": "Algebra"},
        {
            "problem": "half?",
            "solution": r"Try \boxed{1}; no: $\boxed{\frac{1}{2}}$",
            "level": "L2",
            "type": "A",
        },
    ]
    cfg = _data("data=math", f"data.source={_jsonl(tmp_path / 'm.jsonl', rows)}", "data.chat_template=false")
    golds = sorted(p.ground_truth for p in load_prompts(cfg))
    assert golds == ["2", r"\frac{1}{2}"]


def test_rows_without_gold_are_skipped_with_one_warning(tmp_path: Path, caplog) -> None:
    rows = [{"question": f"q{i}", "answer": f"work\n#### {i}"} for i in range(3)]
    rows += [{"question": "bad", "answer": "no marker"}, {"question": "none", "answer": None}]
    src = _jsonl(tmp_path / "g.jsonl", rows)
    cfg = _data("data=gsm8k", f"data.source={src}", "data.chat_template=false", "data.shuffle=false")
    with caplog.at_level(logging.WARNING, logger="rlvr.data.loader"):
        prompts = load_prompts(cfg)
    assert [p.ground_truth for p in prompts] == ["0", "1", "2"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipped 2 of 5 rows" in warnings[0] and "'answer'" in warnings[0]


def test_every_row_without_gold_is_an_error_naming_answer_format(tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "g.jsonl", [{"question": "q", "answer": "42"}])
    cfg = _data("data=gsm8k", f"data.source={src}", "data.chat_template=false")
    with pytest.raises(RlvrUserError, match=r"^data\.answer_format: 'gsm8k' found no gold"):
        load_prompts(cfg)


def test_answer_format_is_validated_by_the_config() -> None:
    with pytest.raises(RlvrUserError, match="data.answer_format"):
        _data("data.answer_format=latex")
    # Hydra needs quotes around a value with spaces or parentheses.
    assert _data(r"data.answer_format='regex:is (\d+)'").answer_format == r"regex:is (\d+)"


def test_prompt_template_file_replaces_the_template(tmp_path: Path) -> None:
    template = tmp_path / "t.txt"
    template.write_text("Solve this.\n\n{question}\n\nAnswer in \\boxed{{}}.\n")
    src = _jsonl(tmp_path / "d.jsonl", [{"problem": "1+1", "answer": "2"}])
    cfg = _data(f"data.source={src}", f"data.prompt_template_file={template}", "data.prompt_template=ignored")
    assert load_prompts(cfg)[0].text == "Solve this.\n\n1+1\n\nAnswer in \\boxed{}.\n"
    missing = _data(f"data.source={src}", f"data.prompt_template_file={tmp_path / 'nope.txt'}")
    with pytest.raises(RlvrUserError, match=r"^data\.prompt_template_file: cannot read"):
        load_prompts(missing)
    template.write_text("{question} {answer}")
    with pytest.raises(RlvrUserError, match=r"^data\.prompt_template_file: cannot format"):
        load_prompts(cfg)


def test_prompt_ids_are_deterministic_and_follow_the_row(tmp_path: Path) -> None:
    rows = [{"problem": f"p{i}", "answer": str(i)} for i in range(20)]
    src = _jsonl(tmp_path / "d.jsonl", rows)
    first = {p.ground_truth: p.prompt_id for p in load_prompts(_data(f"data.source={src}", "data.seed=1"))}
    again = {p.ground_truth: p.prompt_id for p in load_prompts(_data(f"data.source={src}", "data.seed=7"))}
    assert first == again  # a different shuffle moves rows, not their ids
    assert len(set(first.values())) == 20
    dup = _jsonl(tmp_path / "dup.jsonl", [{"problem": "same", "answer": "1"}] * 2)
    assert len({p.prompt_id for p in load_prompts(_data(f"data.source={dup}"))}) == 2


def test_hub_config_is_passed_to_load_dataset(monkeypatch) -> None:
    import datasets

    calls = []

    def fake_load_dataset(name, config=None, split=None, **kwargs):
        calls.append((name, config, split))
        return [{"question": "q", "answer": "w\n#### 7"}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    prompts = load_prompts(_data("data=gsm8k", "data.chat_template=false"))
    assert calls == [("openai/gsm8k", "main", "train")]
    assert prompts[0].ground_truth == "7"


def test_bad_rows_keep_their_one_line_errors(tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "1"}])
    with pytest.raises(RlvrUserError, match=r"^data\.question_key: row 0 has no field 'problem'"):
        load_prompts(_data(f"data.source={src}"))
    with pytest.raises(RlvrUserError, match=r"^data\.answer_key: row 0 has no field 'solution'"):
        load_prompts(_data(f"data.source={src}", "data.question_key=question", "data.answer_key=solution"))


def test_procedural_sources_and_old_calls_still_work() -> None:
    cfg = _data("data=arith", "data.max_prompts=5")
    prompts = load_prompts(cfg)
    assert len(prompts) == 5 and all(p.prompt_id.startswith("arith-") for p in prompts)
    assert len(load_prompts(cfg, evaluation=True)) == cfg.eval_max_prompts
    # max_prompts caps the procedural pool; it never grows it past num_procedural.
    assert len(load_prompts(_data("data=arith", "data.max_prompts=100", "data.num_procedural=10"))) == 10


def test_eval_max_prompts_beyond_what_is_loaded_is_refused() -> None:
    with pytest.raises(RlvrUserError, match=r"^eval\.max_prompts=64: .*raise data\.eval_max_prompts"):
        load_config(["eval.max_prompts=64"])
    assert load_config(["eval.max_prompts=64", "data.eval_max_prompts=64"]).eval.max_prompts == 64
