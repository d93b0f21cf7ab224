"""The `rlvr` command line. User errors print one line and exit 2; nothing here pretends."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from rlvr.errors import RlvrRunError, RlvrUserError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Reinforcement learning with verifiable rewards on Ray."
)
config_app = typer.Typer(no_args_is_help=True, help="Inspect the resolved configuration.")
deploy_app = typer.Typer(no_args_is_help=True, help="Kubernetes (KubeRay) deployment.")
model_app = typer.Typer(no_args_is_help=True, help="Build or import models.")
app.add_typer(config_app, name="config")
app.add_typer(deploy_app, name="deploy")
app.add_typer(model_app, name="model")

OVERRIDES = typer.Argument(None, help="Hydra overrides: algorithms=simko trainer.max_steps=50")


def _ovs(overrides: list[str] | None) -> list[str]:
    return list(overrides or [])


@app.command(context_settings={"allow_extra_args": False})
def run(
    overrides: list[str] = OVERRIDES,
    multirun: bool = typer.Option(False, "--multirun", "-m", help="sweep comma-separated options"),
) -> None:
    """Train a policy."""
    from rlvr.config import expand_sweep, load_config

    ovs = _ovs(overrides)
    if multirun:
        from rlvr.pipeline.multirun import run_multirun

        configs = [(combo, load_config(combo)) for combo in expand_sweep(ovs)]
        run_multirun(configs)
        return
    from rlvr.pipeline.boot import run as run_training  # the cluster starts while the pipeline imports

    # The schema is checked here; the registries (torch, verifiers) while Ray starts, still before any
    # component or run directory exists.
    summary = run_training(load_config(ovs, plugins=False), plugins_checked=False)
    typer.echo(json.dumps(summary, default=str))
    if summary.get("interrupted"):
        sys.exit(130)  # the shell's code for Ctrl-C, though the stop itself was clean


@app.command("eval")
def eval_(overrides: list[str] = OVERRIDES) -> None:
    """pass@K evaluation: rlvr eval model=<folder> data=<dataset> eval.n=64."""
    from rlvr.config import load_config
    from rlvr.pipeline.evaluate import run_eval

    result = run_eval(load_config(_ovs(overrides)))
    typer.echo(json.dumps(result, default=str))


@app.command()
def verify(
    overrides: list[str] = OVERRIDES,
    gold: str = typer.Option(..., "--gold", help="ground-truth answer"),
    response: str = typer.Option(..., "--response", help="model response text"),
    verifier: str | None = typer.Option(
        None, "--verifier", help="which selected verifier (default: the first)"
    ),
) -> None:
    """Check one answer; prints the result as one JSON line (exit 0 whether right or wrong)."""
    from rlvr.config import load_config
    from rlvr.verifiers import get

    cfg = load_config(_ovs(overrides))
    name = verifier or next(iter(cfg.verifiers.specs))
    if name not in cfg.verifiers.specs:
        raise RlvrUserError(
            f"--verifier: '{name}' is not selected; selected: {', '.join(cfg.verifiers.specs)}"
        )
    from rlvr.rewards import verifier_options

    spec = verifier_options(cfg.verifiers.specs[name].model_dump())
    spec.pop("timeout_s", None)
    result = get(name).verify(response, gold, **spec)
    typer.echo(json.dumps(result.to_dict()))


@config_app.command("show")
def config_show(overrides: list[str] = OVERRIDES) -> None:
    """Print the fully resolved, validated config."""
    from rlvr.config import load_config, to_yaml

    typer.echo(to_yaml(load_config(_ovs(overrides))), nl=False)


@deploy_app.command("render")
def deploy_render(
    overrides: list[str] = OVERRIDES,
    out: Path = typer.Option(Path("k8s"), "--out", "-o", help="folder for the manifests"),
) -> None:
    """Render KubeRay manifests (RayJob, RayCluster, ConfigMap, optional PVC) for `rlvr run <overrides>`."""
    from rlvr.config import load_config
    from rlvr.deploy.render import render_to_dir

    ovs = _ovs(overrides)
    for line in render_to_dir(load_config(ovs), ovs, out):
        typer.echo(line)


@model_app.command("tiny")
def model_tiny(
    task: str = typer.Option("arith", "--task", help="procedural task for the warm start"),
    out: Path | None = typer.Option(None, "--out", help="folder (default: the user cache)"),
    sft_steps: int | None = typer.Option(None, "--sft-steps"),
    force: bool = typer.Option(False, "--force", help="rebuild even if cached"),
) -> None:
    """Build (and warm-start) the offline tiny Qwen2 model."""
    from rlvr.config.schema import TinyModelConfig
    from rlvr.models.tiny import build_tiny_model

    cfg = TinyModelConfig(task=task) if sft_steps is None else TinyModelConfig(task=task, sft_steps=sft_steps)
    path = build_tiny_model(cfg, out=out, force=force)
    typer.echo(str(path))


@model_app.command("import")
def model_import(
    gguf_file: Path = typer.Argument(..., help="a .gguf file (llama.cpp format)"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for the Hugging Face model"),
    dtype: str = typer.Option("float32", "--dtype", help="float32 or bfloat16"),
    force: bool = typer.Option(False, "--force", help="replace a non-empty --out folder"),
) -> None:
    """Import a GGUF file as a Hugging Face folder (dequantised); then train with model.path=<out>."""
    from rlvr.models.gguf import import_gguf

    typer.echo(str(import_gguf(gguf_file, out, dtype=dtype, overwrite=force)))


@app.command()
def report(run_dir: Path = typer.Argument(..., help="a run directory")) -> None:
    """Draw PNG plots (reward, pass@K, Lambda^(k)) from a run directory."""
    from rlvr.pipeline.report import make_report

    for p in make_report(run_dir):
        typer.echo(str(p))


def _stacks_on_sigusr1() -> None:
    """`kill -USR1 <pid>` prints every thread's stack to stderr: what a run that looks stuck waits on."""
    import faulthandler
    import signal

    if not hasattr(signal, "SIGUSR1") or sys.__stderr__ is None:
        return
    try:  # the process's own stderr: a replaced sys.stderr (a test's capture) may have no file descriptor
        faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        pass


def main(argv: list[str] | None = None) -> Any:
    _stacks_on_sigusr1()
    try:
        return app(args=argv, standalone_mode=False)
    except RlvrUserError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except RlvrRunError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(1)
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("rlvr."):
            typer.echo(f"error: this command is not built yet ({e.name} is missing)", err=True)
            sys.exit(1)
        raise
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.exceptions.UsageError):
            typer.echo(f"error: {e.format_message()}", err=True)
            sys.exit(2)
        if isinstance(e, click.exceptions.Exit):
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    main()
