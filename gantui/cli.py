"""The `gantui` command. Thin commands that call into the modules.

Nothing heavy is imported at module level (torch, textual): `gantui --help` stays instant.
Errors a user can fix become one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from gantui import __version__
from gantui.errors import UserError

app = typer.Typer(
    name="gantui",
    help="Train GANs in the terminal and see, live, whether the training is healthy.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: flags without Typer's "<bool>", values named below
)

DEVICES = ("auto", "cpu", "cuda")

DeviceOpt = Annotated[Optional[str], typer.Option("--device", metavar="DEVICE", help="auto | cpu | cuda (default: the preset's run.device)")]
SeedOpt = Annotated[int, typer.Option("--seed", metavar="S", help="Seed of the generated samples.")]
Target = Annotated[str, typer.Argument(metavar="CHECKPOINT_OR_RUN_DIR", help="A checkpoint file or a run directory (uses its latest checkpoint).")]


def _check_device(device: str | None) -> str | None:
    if device is not None and device not in DEVICES:
        raise UserError(f"--device {device!r}: expected one of auto, cpu, cuda")
    return device


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gantui {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """Train GANs in the terminal and see, live, whether the training is healthy."""


@app.command()
def run(
    preset: Annotated[str, typer.Argument(metavar="PRESET", help="A preset TOML file, or a bundled preset name (see `gantui presets`).")],
    headless: Annotated[bool, typer.Option("--headless", help="No monitor: progress lines only.")] = False,
    steps: Annotated[Optional[int], typer.Option("--steps", metavar="N", help="Total G steps (overrides run.steps).")] = None,
    run_dir: Annotated[Optional[Path], typer.Option("--run-dir", metavar="DIR", help="Use exactly this run directory.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", metavar="KEY=VALUE", help="Override a preset key: SECTION.KEY=VALUE (TOML value). Repeatable.")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", metavar="RUN_DIR_OR_CHECKPOINT", help="Continue from a checkpoint or a run directory's latest.")] = None,
    device: DeviceOpt = None,
) -> None:
    """Train a GAN from a preset; opens the live monitor on a terminal, runs headless otherwise."""
    from gantui import config
    from gantui.engine.rundir import default_run_dir

    cfg = config.load(preset, set_ or [])
    if steps is not None:
        if steps < 1:
            raise UserError(f"--steps {steps}: expected an integer >= 1")
        cfg = cfg.replace("run", steps=steps)
    device = _check_device(device)
    resume_path = None
    if resume is not None:
        resume_path = _resolve_resume(resume)
        if run_dir is None and resume_path.parent.name == "checkpoints":
            run_dir = resume_path.parent.parent  # carry on in the run's own directory
    run_dir = run_dir or default_run_dir(cfg.run.name)

    if headless or not sys.stdout.isatty():
        from gantui.headless import run_headless

        code = run_headless(cfg, run_dir, device, resume_path)
    else:
        from gantui.ui.launch import run_monitor

        code = run_monitor(cfg, run_dir, device, resume_path)
    raise typer.Exit(code)


def _resolve_resume(resume: Path) -> Path:
    # Resolving here (not in torch-importing code) gives a bad path its one-line answer at once.
    if resume.is_dir():
        latest = resume / "checkpoints" / "latest.safetensors"
        if not latest.is_file():
            raise UserError(f"--resume {resume}: no checkpoints/latest.safetensors in this run directory")
        return latest
    if not resume.is_file():
        raise UserError(f"--resume {resume}: no such checkpoint file or run directory")
    return resume


@app.command(name="eval")
def eval_(
    target: Target,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else.")] = False,
    n_samples: Annotated[Optional[int], typer.Option("--n-samples", metavar="N", help="Generated (and real) samples to compare (default: 2,500 for toy data, 10,000 for images).")] = None,
    device: DeviceOpt = None,
    seed: SeedOpt = 0,
    inception_weights: Annotated[Optional[Path], typer.Option("--inception-weights", metavar="FILE", help="Inception-v3 FID weights (.safetensors) for literature-comparable FID.")] = None,
) -> None:
    """Judge a checkpoint headless: mode coverage, FID/KID, precision/recall."""
    from gantui.evaluate import main as eval_main

    raise typer.Exit(eval_main(target, as_json, n_samples, _check_device(device) or "auto", seed, inception_weights))


@app.command()
def sample(
    target: Target,
    out: Annotated[Optional[Path], typer.Option("--out", metavar="FILE", help="FILE.png: an image grid (scatter plot for toy data); FILE.npy: the raw samples.")] = None,
    n: Annotated[int, typer.Option("--n", metavar="N", help="How many samples.")] = 64,
    seed: SeedOpt = 0,
    ansi: Annotated[bool, typer.Option("--ansi", help="Print the samples to the terminal as half-block characters.")] = False,
) -> None:
    """Draw samples from a checkpoint's generator."""
    from gantui.sampling import main as sample_main

    raise typer.Exit(sample_main(target, out, n, seed, ansi))


@app.command()
def presets() -> None:
    """List the bundled presets with a one-line description each."""
    from gantui import config

    paths = config.bundled_presets()
    width = max((len(p.stem) for p in paths), default=0)
    for p in paths:
        typer.echo(f"{p.stem:<{width}}  {config.preset_description(p)}")


def _exit_process(code: int) -> None:
    """Exit now. Once torch is loaded, the interpreter's own teardown takes 2-4 s on a small
    machine (after `q` that looked like a hung, blank terminal); every file is closed and every
    thread joined by the time a command returns, so skip it."""
    sys.stdout.flush()
    sys.stderr.flush()
    if "torch" in sys.modules:
        import os

        os._exit(code)
    sys.exit(code)


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except UserError as e:
        print(f"gantui: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        _exit_process(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # click's usage errors arrive here with standalone_mode=False
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Abort):
            sys.exit(130)
        raise
    _exit_process(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
