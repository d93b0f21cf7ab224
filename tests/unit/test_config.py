"""Config composition, overrides, sweeps and one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rlvr.cli import main
from rlvr.config import expand_sweep, load_config
from rlvr.errors import RlvrUserError

pytestmark = pytest.mark.unit


def test_defaults_validate():
    cfg = load_config([])
    assert cfg.algorithm.name == "grpo"
    assert list(cfg.verifiers.specs) == ["math"]
    assert cfg.model.path == "tiny"


def test_group_and_value_overrides():
    cfg = load_config(["algorithms=simko", "verifiers=[math,logic]", "trainer.max_steps=50"])
    assert cfg.algorithm.name == "simko"
    assert cfg.algorithm.params["alpha"] == 0.01 and cfg.algorithm.params["lam"] == 1.1
    assert set(cfg.verifiers.specs) == {"math", "logic"}
    assert cfg.trainer.max_steps == 50


def test_algorithm_param_override():
    cfg = load_config(["algorithms=simko", "algorithm.params.alpha=0.05"])
    assert cfg.algorithm.params["alpha"] == 0.05


def test_path_shorthand_for_model_and_data(tmp_path):
    cfg = load_config([f"model={tmp_path}", "data=procedural:countdown"])
    assert cfg.model.path == str(tmp_path)
    assert cfg.data.source == "procedural:countdown"


def test_sweep_expansion():
    combos = expand_sweep(["algorithms=grpo,simko", "trainer.max_steps=3"])
    assert combos == [
        ["algorithms=grpo", "trainer.max_steps=3"],
        ["algorithms=simko", "trainer.max_steps=3"],
    ]


@pytest.mark.parametrize(
    "override, needle",
    [
        ("algorithms=simk", "did you mean 'simko'"),
        ("trainer.max_stepz=3", "trainer.max_stepz"),
        ("trainer.max_steps=abc", "trainer.max_steps"),
        ("trainer.max_steps=-1", "trainer.max_steps"),
        ("algorithm.params.alpha=-5", "algorithm.params"),
        ("algorithm.name=nope", "unknown algorithm 'nope'"),
        ("trainer.mode=turbo", "trainer.mode"),
    ],
)
def test_bad_input_is_one_line_error(override, needle):
    with pytest.raises(RlvrUserError) as e:
        load_config([override])
    msg = str(e.value)
    assert needle in msg
    assert "\n" not in msg


def test_cli_bad_input_exit_2_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["config", "show", "algorithms=simk"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "algorithms" in err and "simko" in err


def test_cli_config_show_resolved(capsys):
    main(["config", "show", "algorithms=simko", "verifiers=math"])
    out = capsys.readouterr().out
    assert "name: simko" in out and "alpha: 0.01" in out and "max_steps:" in out


def test_cli_subprocess_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "config", "show", "trainer.max_steps=oops"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "trainer.max_steps" in proc.stderr


def test_python_registered_algorithm_without_preset():
    import rlvr
    from rlvr.algorithms.grpo import GRPO

    @rlvr.register_algorithm("cfg_test_algo", override=True)
    class Mine(GRPO):
        pass

    cfg = load_config(["algorithms=cfg_test_algo"])
    assert cfg.algorithm.name == "cfg_test_algo" and cfg.algorithm.params == {}


def test_timeout_for_an_in_process_verifier_is_refused():
    """countdown, logic and format run in-process without a timeout: setting one would do nothing."""
    base = ["data=countdown", "verifiers=countdown"]
    assert "timeout_s" not in load_config(base).verifiers.specs["countdown"].model_fields_set
    with pytest.raises(RlvrUserError, match=r"^verifiers.specs.countdown.timeout_s: .*takes no timeout"):
        load_config([*base, "+verifiers.specs.countdown.timeout_s=1"])
    assert load_config(["verifiers.specs.math.timeout_s=2"]).verifiers.specs["math"].timeout_s == 2.0


def test_multirun_refuses_a_swept_output_dir(tmp_path):
    from rlvr.pipeline.multirun import run_multirun

    combos = expand_sweep([f"trainer.output_dir={tmp_path}/a,{tmp_path}/b"])
    with pytest.raises(RlvrUserError, match=r"^trainer\.output_dir: one for the whole multirun"):
        run_multirun([(c, load_config(c)) for c in combos])
    assert not list(tmp_path.iterdir())  # refused before any run directory exists


def test_verifier_options_need_no_plus_and_a_typo_is_an_error():
    cfg = load_config(["verifiers.specs.math.precision=3"])  # not in the preset: no Hydra `+` needed
    assert cfg.verifiers.specs["math"].model_extra["precision"] == 3
    with pytest.raises(RlvrUserError, match=r"^verifiers.specs.math.precison: .*did you mean 'precision'"):
        load_config(["verifiers.specs.math.precison=3"])
    with pytest.raises(RlvrUserError, match=r"^verifiers.specs.format.strict: .*it takes no options"):
        load_config(["verifiers=[math,format]", "+verifiers.specs.format.strict=true"])
    with pytest.raises(
        RlvrUserError, match=r"^verifiers.specs.countdown.numbers: "
    ):  # a row field, not an option
        load_config(["verifiers=countdown", "verifiers.specs.countdown.numbers=[1,2]"])
    # An option of a verifier the run does not use must not bring it in.
    with pytest.raises(RlvrUserError, match=r"^verifiers.specs.logic.partial_credit: 'logic' is not one of"):
        load_config(["verifiers.specs.logic.partial_credit=true"])
    logic = load_config(["verifiers=logic", "verifiers.specs.logic.partial_credit=true"]).verifiers.specs[
        "logic"
    ]
    assert logic.model_extra == {"partial_credit": True}


def test_a_catch_all_verifier_takes_any_spec_key():
    from rlvr.verifier_kwargs import takes_any_option
    from rlvr.verifiers import get

    assert takes_any_option(get("reasoning_gym"))  # reads what it needs from **metadata
    assert not takes_any_option(get("math")) and not takes_any_option(get("format"))  # `**_metadata`: ignored


def test_registry_checks_can_wait_for_the_cluster_and_still_fail_with_the_key():
    """`rlvr run` checks the schema at once and the registries (torch, verifiers) while Ray starts."""
    import subprocess

    from rlvr.config.loader import validate_plugins

    bad = ["algorithms=simko", "algorithm.params.alpha=-1"]
    cfg = load_config(bad, plugins=False)
    with pytest.raises(RlvrUserError, match=r"^config key 'algorithm.params.alpha'"):
        validate_plugins(cfg)
    with pytest.raises(RlvrUserError, match="algorithm.params.alpha"):
        load_config(bad)
    code = "import sys; from rlvr.config import load_config; load_config([], plugins=False); print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "False"
