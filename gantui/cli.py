"""The `gantui` command. Thin commands that call into the modules.

Nothing heavy is imported at module level (torch, textual): `gantui --help` stays instant.

One error path for every command (`main`):
- usage errors (a missing argument, an unknown option, `--steps abc`) get Typer's usual short usage
  message and exit 2: Typer shows them itself, whichever copy of click it ships (Typer 0.29 has its own);
- a UserError (bad preset, path, checkpoint, data) is one line on stderr and exit 2;
- anything unexpected is one line naming the file its traceback was saved to, and exit 1.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

from gantui import __version__, limits, paths
from gantui.errors import UserError, one_line, report

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
SeedOpt = Annotated[int, typer.Option("--seed", metavar="S", help="Seed of the generated samples (0 to 2**63 - 1).")]
TrustOpt = Annotated[bool, typer.Option("--trust-code", help="Import the code (your own models or data set) that the checkpoint or run directory names. Only for runs you trust.")]
Target = Annotated[str, typer.Argument(metavar="CHECKPOINT_OR_RUN_DIR", help="A checkpoint file or a run directory (uses its latest checkpoint).")]
BestOpt = Annotated[bool, typer.Option("--best", help="Use the run directory's checkpoints/best.safetensors (the best live quality by run.best_by).")]


def _best(target: str, best: bool) -> str:
    """TARGET, or with --best its run directory's best checkpoint."""
    if not best:
        return target
    from gantui.engine.best import best_checkpoint_of

    return str(best_checkpoint_of(target))


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
    preset: Annotated[Optional[str], typer.Argument(metavar="PRESET", help="A preset TOML file, or a bundled preset name (see `gantui presets`); with --resume, default: the run's own config.")] = None,
    headless: Annotated[bool, typer.Option("--headless", help="No monitor: progress lines only.")] = False,
    steps: Annotated[Optional[int], typer.Option("--steps", metavar="N", help="Total G steps (overrides run.steps).")] = None,
    # str, not Path: Typer turns "" into Path("."), and `--run-dir ""` must be refused, not mean "here"
    run_dir: Annotated[Optional[str], typer.Option("--run-dir", metavar="DIR", help="Use exactly this run directory.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", metavar="KEY=VALUE", help="Override a preset key: SECTION.KEY=VALUE (TOML value). Repeatable.")] = None,
    resume: Annotated[Optional[str], typer.Option("--resume", metavar="RUN_DIR_OR_CHECKPOINT", help="Continue from a checkpoint or a run directory's latest.")] = None,
    device: DeviceOpt = None,
    detach: Annotated[bool, typer.Option("--detach", help="Train in the background (headless, output to the run's console.log) and return at once.")] = False,
    nproc: Annotated[Optional[int], typer.Option("--nproc", metavar="N", help="Train with N processes (DistributedDataParallel; one per GPU), launched with torch's torchrun.")] = None,
    best: Annotated[bool, typer.Option("--best", help="With --resume RUN_DIR: continue from its checkpoints/best.safetensors (in place when it is the newest step, else with --run-dir NEW_DIR).")] = False,
    trust_code: TrustOpt = False,
) -> None:
    """Train a GAN from a preset; opens the live monitor on a terminal, runs headless otherwise."""
    from gantui import config, memory
    from gantui.engine.ownership import Owner
    from gantui.vocab.config_keys import as_event as identity_event
    from gantui.engine.ownership import plan as plan_run

    if steps is not None:
        limits.check_int("--steps", steps, 1, limits.MAX_STEPS)
    if best and resume is None:
        raise UserError("--best: give the run to continue with --resume RUN_DIR --best")
    resume_path = paths.check_input_path(resume, "--resume") if resume is not None else None
    if best and resume_path is not None:
        resume_path = Path(_best(str(resume_path), True))
        resume = str(resume_path)
    if resume_path is None:
        if preset is None:
            raise UserError("missing PRESET: gantui run PRESET (see `gantui presets`), "
                            "or continue a run with gantui run --resume RUN_DIR")
        cfg = config.load(preset, set_ or [])
        if steps is not None:
            cfg = cfg.replace("run", steps=steps)
    else:
        from gantui.engine import resume_config as resuming

        resumed = resuming.resolve(preset, set_ or [], steps, resume_path)
        cfg = resumed.cfg
    device = _check_device(device)
    run_path = paths.check_run_dir(run_dir, "--run-dir") if run_dir is not None else None

    def check_plan(plan) -> None:
        """A resume: refused when it would change what the run is (in place) or train nothing;
        otherwise its changes become a `config_changed` event. Before anything is written."""
        if resume_path is None:
            return
        if plan.mode == "resume":  # a fork is a new run: it may change anything
            resuming.refuse_identity_change(resumed, resume_path, preset, set_ or [], steps)
        resuming.refuse_nothing_to_do(resumed, resume_path, steps is not None)
        plan.config_changes = identity_event(resumed.changes)

    from gantui import nproc as multi

    if multi.torchrun_world() > 1:  # a rank started by torchrun: rank 0 owns the run directory
        from gantui.nproc import run_rank

        raise typer.Exit(run_rank(cfg, run_path, resume_path, device, on_plan=check_plan))
    if nproc is not None and nproc > 1:
        multi.check_devices(nproc, device or cfg.run.device)
    plan = plan_run(cfg.run.name, run_path, resume_path)
    if plan.checkpoint is not None:
        _refuse_untrusted_checkpoint(plan.checkpoint, trust_code, "run --resume")
    check_plan(plan)
    if cfg.data.name == "folder" and not Path(cfg.data.root).is_dir():
        # torch-free and before anything is written: one line, no run directory
        raise UserError(f"[data] root {cfg.data.root!r}: no such folder; set data.root to a folder of images "
                        f"(png, jpg, ...; README: \"Your own images\"), or train offline with --set data.name=digits")
    if run_path is None:
        # the default runs/<name>-<stamp>, or the resumed run's own directory
        paths.check_run_dir(plan.run_dir, "run directory")
    if memory.cpu_for_sure(device or cfg.run.device):
        # Torch-free, so a run that cannot fit is refused before anything is imported or written.
        # The engine checks again on the device it picks (CUDA's free memory).
        memory.check_fits(cfg, memory.data_shape(cfg.data), memory.host_available_bytes(), "this machine (cpu)")
    _note_run_dir(plan.run_dir)
    if nproc is not None and nproc != 1:
        if detach:
            raise UserError("--detach with --nproc: not supported yet; run it with --headless under nohup or tmux")
        args = ["run"] + ([preset] if preset else []) + ["--headless", "--run-dir", str(plan.run_dir)]
        args += (["--steps", str(steps)] if steps else []) + (["--device", device] if device else [])
        args += sum((["--set", s] for s in set_ or []), []) + (["--resume", str(resume_path)] if resume_path else [])
        args += ["--trust-code"] if trust_code else []
        raise typer.Exit(multi.launch(nproc, args, plan.run_dir, headless or not sys.stdout.isatty()))
    if detach:
        from gantui.live.detach import detach_run

        args = ([preset] if preset else []) + [a for s in (set_ or []) for a in ("--set", s)]
        args += ["--steps", str(steps)] if steps is not None else []
        args += ["--device", device] if device is not None else []
        args += ["--resume", str(resume)] if resume is not None else []
        args += ["--trust-code"] if trust_code else []
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


def _refuse_untrusted_checkpoint(path: Path, trust_code: bool, command: str) -> None:
    """`run --resume` of a run whose checkpoint names code: --trust-code or exit 2 (torch-free;
    reads the checkpoint's header only, imports nothing)."""
    from gantui import config, usercode
    from gantui.engine import checkpoint_files

    try:
        cfg = config.loads(checkpoint_files.metadata(path).get("config", ""), source=str(path))
    except (UserError, ValueError, OSError, checkpoint_files.Damaged):  # unreadable: the engine refuses it
        return
    usercode.refuse_untrusted(cfg, trust_code, str(path), command)


@app.command()
def watch(
    run_dir: Annotated[Optional[Path], typer.Argument(help="A run directory (default: the newest under runs/).")] = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Output not a terminal: follow a live run with progress lines until it ends (default), or print one line and leave.")] = True,
    trust_code: Annotated[bool, typer.Option("--trust-code", help="Accepted for symmetry: watch reads files only and never imports a run's code.")] = False,
) -> None:
    """Open the monitor on a live or finished run; q leaves, the run goes on. Output not a terminal: progress lines."""
    target = _run_dir_arg(run_dir)
    if not sys.stdout.isatty():  # never the full screen into a pipe or a file
        from gantui.live.lines import watch_lines

        raise typer.Exit(watch_lines(target, follow=follow))
    from gantui.ui.launch import run_watch

    raise typer.Exit(run_watch(target))


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
    n_samples: Annotated[Optional[int], typer.Option("--n-samples", metavar="N", help="Generated (and real) samples to compare, 10 to 50,000 (default: 2,500 for toy data, 10,000 for images).")] = None,
    device: DeviceOpt = None,
    seed: SeedOpt = 0,
    inception_weights: Annotated[Optional[str], typer.Option("--inception-weights", metavar="FILE", help="Inception-v3 FID weights (.safetensors) for literature-comparable FID.")] = None,
    data_root: Annotated[Optional[str], typer.Option("--data-root", metavar="DIR", help="Where the real images are (default: data/; for a `folder` set, the folder itself). Never taken from the checkpoint.")] = None,
    best: BestOpt = False,
    trust_code: TrustOpt = False,
) -> None:
    """Judge a checkpoint headless: mode coverage, FID/KID, precision/recall."""
    from gantui.evaluate import main as eval_main

    raise typer.Exit(eval_main(_best(target, best), as_json, n_samples, _check_device(device) or "auto", seed, inception_weights,
                               data_root=data_root, trust_code=trust_code))


@app.command()
def sample(
    target: Target,
    out: Annotated[Optional[str], typer.Option("--out", metavar="FILE", help="FILE.png: an image grid (scatter plot for toy data); FILE.npy: the raw samples.")] = None,
    n: Annotated[int, typer.Option("--n", metavar="N", help="How many samples (1 to 50,000).")] = 64,
    seed: SeedOpt = 0,
    ansi: Annotated[bool, typer.Option("--ansi", help="Print the samples to the terminal as half-block characters.")] = False,
    best: BestOpt = False,
    interpolate: Annotated[bool, typer.Option("--interpolate", help="Latent walks: each row a path between two random latents (PNG with --out, the terminal with --ansi).")] = False,
    rows: Annotated[int, typer.Option("--rows", metavar="N", help="--interpolate: how many walks (rows), 1 to 64.")] = 8,
    walk_steps: Annotated[int, typer.Option("--steps", metavar="N", help="--interpolate: samples along each walk, 2 to 64.")] = 10,
    method: Annotated[str, typer.Option("--method", metavar="slerp|linear", help="--interpolate: spherical (slerp, default) or straight-line paths.")] = "slerp",
    classes: Annotated[str, typer.Option("--classes", metavar="fixed|walk", help="--interpolate, conditional models: one class per row (fixed), or walk from class i to i+1 (walk).")] = "fixed",
    trust_code: TrustOpt = False,
) -> None:
    """Draw samples from a checkpoint's generator, or latent walks with --interpolate."""
    if interpolate:
        from gantui.sampling import walk_main

        raise typer.Exit(walk_main(_best(target, best), out, rows, walk_steps, seed, method, classes, ansi,
                                   trust_code=trust_code))
    from gantui.sampling import main as sample_main

    raise typer.Exit(sample_main(_best(target, best), out, n, seed, ansi, trust_code=trust_code))


@app.command(name="runs")
def runs_(
    root: Annotated[Path, typer.Argument(help="Where to look: a folder of run directories, or one run.")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list, one object per run.")] = False,
    trust_code: Annotated[bool, typer.Option("--trust-code", help="Accepted for symmetry: runs reads files only and never imports a run's code.")] = False,
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
    from gantui.ui.compare_view import main as compare_main

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


# --- the one error path -------------------------------------------------------------------

_run_dir: Path | None = None  # the current run's directory, once known: where a traceback belongs


def _note_run_dir(path: Path | None) -> None:
    global _run_dir
    _run_dir = path


def save_traceback(exc: BaseException) -> Path | None:
    """Write exc's traceback to a new file: in the run directory when there is one, else in the cache
    (or the temp folder). None when no place would take it (a full disk)."""
    import tempfile

    text = "".join(traceback.format_exception(exc))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folders = [paths.cache_root() / "tracebacks", Path(tempfile.gettempdir())]
    if _run_dir is not None and _run_dir.is_dir():
        folders.insert(0, _run_dir)
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"traceback-{stamp}-", suffix=".txt", dir=folder)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            return Path(name)
        except OSError:
            continue
    return None


def _suggest_command(argv: list[str]) -> None:
    """`gantui rn`: one line with the close command (click names no suggestion), exit 2."""
    if not argv or argv[0].startswith("-"):
        return
    names = [c.name or c.callback.__name__.rstrip("_") for c in app.registered_commands]
    if argv[0] in names:
        return
    import difflib

    close = difflib.get_close_matches(argv[0], names, n=1, cutoff=0.5)
    hint = f"did you mean `gantui {close[0]}`? " if close else ""
    print(f"gantui: no such command {one_line(argv[0], 60)!r}; {hint}(commands: {', '.join(names)}; "
          f"gantui --help says more)", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    """The console script. Always ends in SystemExit with the command's exit code."""
    _note_run_dir(None)  # main may run more than once in a process (tests, the fuzz suite)
    _suggest_command(sys.argv[1:] if argv is None else argv)
    try:
        # standalone mode: Typer prints usage errors its own way and exits 2, and turns Ctrl-C into 130
        app(args=argv, standalone_mode=True)
    except UserError as e:
        if os.environ.get("RANK", "0") in ("", "0"):  # the ranks of a torchrun launch say it once
            report(e)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the one place an unexpected error is turned into one line
        saved = save_traceback(e)
        where = f"traceback saved to {saved}" if saved else "the traceback could not be saved either"
        print(f"gantui: unexpected error: {type(e).__name__}: {one_line(str(e), 200)} ({where})", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)


def entry() -> None:
    """The console script and `python -m gantui`: main(), then leave without the interpreter's
    teardown once torch is loaded (2-4 s on a small machine: after `q` it looked like a hung,
    blank terminal). By then every run file is written whole (unbuffered appends, fsynced
    checkpoints), the run's lock and socket are released, and stdout/stderr are flushed here."""
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        if "torch" in sys.modules:
            os._exit(code)
        raise


if __name__ == "__main__":
    entry()
