"""The `gantui` command. Thin commands that call into the modules.

Nothing heavy is imported at module level (torch, textual): `gantui --help` stays instant.
Errors a user can fix become one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
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
)

DEVICES = ("auto", "cpu", "cuda")

DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="auto | cpu | cuda (default: the preset's run.device)")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the generated samples.")]
Target = Annotated[str, typer.Argument(help="A checkpoint file or a run directory (uses its latest checkpoint).")]


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
    preset: Annotated[str, typer.Argument(help="A preset TOML file, or a bundled preset name (see `gantui presets`).")],
    headless: Annotated[bool, typer.Option("--headless", help="No monitor: progress lines only.")] = False,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Total G steps (overrides run.steps).")] = None,
    run_dir: Annotated[Optional[Path], typer.Option("--run-dir", help="Use exactly this run directory.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a preset key: SECTION.KEY=VALUE (TOML value). Repeatable.")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue from a checkpoint or a run directory's latest.")] = None,
    device: DeviceOpt = None,
    detach: Annotated[bool, typer.Option("--detach", help="Train in the background (headless, output to the run's console.log) and return at once.")] = False,
    nproc: Annotated[Optional[int], typer.Option("--nproc", help="Train with N processes (DistributedDataParallel; one per GPU), launched with torch's torchrun.")] = None,
) -> None:
    """Train a GAN from a preset; opens the live monitor on a terminal, runs headless otherwise."""
    from gantui import config
    from gantui.engine.ownership import Owner
    from gantui.engine.ownership import plan as plan_run

    cfg = config.load(preset, set_ or [])
    if steps is not None:
        if steps < 1:
            raise UserError(f"--steps {steps}: expected an integer >= 1")
        cfg = cfg.replace("run", steps=steps)
    device = _check_device(device)
    from gantui import nproc as multi

    if multi.torchrun_world() > 1:  # a rank started by torchrun: rank 0 owns the run directory
        from gantui.engine.distributed import run_rank

        raise typer.Exit(run_rank(cfg, run_dir, resume, device))
    plan = plan_run(cfg.run.name, run_dir, resume)
    if nproc is not None and nproc != 1:
        if detach:
            raise UserError("--detach with --nproc: not supported yet; run it with --headless under nohup or tmux")
        args = ["run", preset, "--headless", "--run-dir", str(plan.run_dir)]
        args += (["--steps", str(steps)] if steps else []) + (["--device", device] if device else [])
        args += sum((["--set", s] for s in set_ or []), []) + (["--resume", str(resume)] if resume else [])
        raise typer.Exit(multi.launch(nproc, args, plan.run_dir, headless or not sys.stdout.isatty()))
    if detach:
        from gantui.live.detach import detach_run

        args = [preset] + [a for s in (set_ or []) for a in ("--set", s)]
        args += ["--steps", str(steps)] if steps is not None else []
        args += ["--device", device] if device is not None else []
        args += ["--resume", str(resume)] if resume is not None else []
        raise typer.Exit(detach_run(args, plan.run_dir))

    _terminate_as_interrupt()  # until the runner takes over the signals: clean up, exit 130
    with Owner(plan) as owner:
        if headless or not sys.stdout.isatty():
            from gantui.headless import run_headless

            code = run_headless(cfg, plan.run_dir, device, plan.checkpoint, owner=owner)
        else:
            from gantui.ui.launch import run_monitor

            code = run_monitor(cfg, plan.run_dir, device, plan.checkpoint, owner=owner)
    raise typer.Exit(code)


@app.command()
def watch(
    run_dir: Annotated[Optional[Path], typer.Argument(help="A run directory (default: the newest under runs/).")] = None,
) -> None:
    """Open the monitor on a live or finished run; q leaves, the run goes on."""
    from gantui.ui.launch import run_watch

    raise typer.Exit(run_watch(_run_dir_arg(run_dir)))


@app.command()
def stop(
    run_dir: Annotated[Path, typer.Argument(help="The run directory of a live run.")],
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for the run to end.")] = 120.0,
) -> None:
    """Save a checkpoint and stop a live run (as if q had been pressed in its monitor)."""
    from gantui.live.stop import stop_run

    raise typer.Exit(stop_run(run_dir, wait))


def _terminate_as_interrupt() -> None:
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _run_dir_arg(run_dir: Path | None) -> Path:
    if run_dir is None:
        from gantui.runinfo import newest_run

        found = newest_run(Path("runs"))
        if found is None:
            raise UserError("no run under runs/; give a run directory: gantui watch RUN_DIR")
        return found
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    return run_dir


@app.command(name="eval")
def eval_(
    target: Target,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else.")] = False,
    n_samples: Annotated[Optional[int], typer.Option("--n-samples", help="Generated (and real) samples to compare (default: 2,500 for toy data, 10,000 for images).")] = None,
    device: DeviceOpt = None,
    seed: SeedOpt = 0,
    inception_weights: Annotated[Optional[Path], typer.Option("--inception-weights", help="Inception-v3 FID weights (.safetensors) for literature-comparable FID.")] = None,
) -> None:
    """Judge a checkpoint headless: mode coverage, FID/KID, precision/recall."""
    from gantui.evaluate import main as eval_main

    raise typer.Exit(eval_main(target, as_json, n_samples, _check_device(device) or "auto", seed, inception_weights))


@app.command()
def sample(
    target: Target,
    out: Annotated[Optional[Path], typer.Option("--out", help="FILE.png: an image grid (scatter plot for toy data); FILE.npy: the raw samples.")] = None,
    n: Annotated[int, typer.Option("--n", help="How many samples.")] = 64,
    seed: SeedOpt = 0,
    ansi: Annotated[bool, typer.Option("--ansi", help="Print the samples to the terminal as half-block characters.")] = False,
) -> None:
    """Draw samples from a checkpoint's generator."""
    from gantui.sampling import main as sample_main

    raise typer.Exit(sample_main(target, out, n, seed, ansi))


@app.command(name="runs")
def runs_(
    root: Annotated[Path, typer.Argument(help="Where to look: a folder of run directories, or one run.")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list, one object per run.")] = False,
) -> None:
    """List runs: name, state, step/total, last losses, quality, active alerts, age. Reads files only."""
    import json

    from gantui import runinfo

    if root != Path("runs") and not root.is_dir():
        raise UserError(f"{root}: no such directory")
    summaries = runinfo.summarize_all(root)
    if as_json:
        typer.echo(json.dumps([s.to_json() for s in summaries], indent=1))
    elif not summaries:
        typer.echo(f"no runs under {str(root).rstrip('/')}/ (start one with `gantui run ring8`)")
    else:
        typer.echo(runinfo.table(summaries))


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Two or more run directories.")],
    metric: Annotated[Optional[str], typer.Option("--metric", help="A metrics.jsonl key (default: the quality metric all runs have, else d_loss and g_loss).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the series aligned by step as JSON.")] = False,
) -> None:
    """Overlay one metric of several runs in the terminal, aligned by step."""
    from gantui.compare import main as compare_main

    raise typer.Exit(compare_main(runs, metric, as_json))


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="The run directory to export.")],
    tensorboard: Annotated[Path, typer.Option("--tensorboard", help="Write TensorBoard event files to OUT_DIR/<run name>/.")],
) -> None:
    """Export a run for other tools: TensorBoard event files (scalars, events as text, sample images)."""
    from gantui.export import main as export_main

    raise typer.Exit(export_main(run_dir, tensorboard))


@app.command()
def presets() -> None:
    """List the bundled presets with a one-line description each."""
    from gantui import config

    paths = config.bundled_presets()
    width = max((len(p.stem) for p in paths), default=0)
    for p in paths:
        typer.echo(f"{p.stem:<{width}}  {config.preset_description(p)}")


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except UserError as e:
        if os.environ.get("RANK", "0") in ("", "0"):  # the ranks of a torchrun launch say it once
            print(f"gantui: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
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
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
