"""A training loop of the user's own under gantui: the run directory, the verdict and the controls.

`TrackedRun` is what `gantui.track(...)` returns. It writes the same run directory as `gantui
run` (config.toml, metrics.jsonl with the `health` verdict of the same rules, events.jsonl,
samples/, safetensors checkpoints) and owns the run's lock and control channel
(gantui.engine.ownership), so `gantui watch`, `stop`, `runs`, `compare` and `export` treat it
like any run. Commands from the channel are applied inside `run.step` on the script's own
thread (where its torch calls are): a pause blocks there, the rate keys scale the given
optimisers' param groups, `s` saves, a stop saves and sets `should_stop`.

Ends: leaving the `with` block (or `close()`) writes a final checkpoint and `finished`; Ctrl-C
or SIGTERM inside it, `interrupted` (with a checkpoint); any other exception, `error` with its
traceback saved (and a checkpoint of finite weights); kill -9 leaves `started` with no end,
which `gantui runs` reports as a crash. The history stays readable in every case.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

from gantui import __version__, checkpoint, config, limits
from gantui.diagnostics import Diagnostics
from gantui.engine import events as ev
from gantui.engine import ownership, runlock, sample_files
from gantui.engine.control import (Command, Control, PauseGate, Save, ScaleLr, SetLive, SetLr, SetNCritic, Stop,
                                   new_rate)
from gantui.engine.records import Rate, class_figures, class_reference, mean_pdist
from gantui.engine.rundir import RunDir, default_run_dir
from gantui.engine.state import diagnostics_metadata, restore_diagnostics
from gantui.errors import UserError
from gantui.pictures import save_samples
from gantui.tracking import figures as fig

DEFAULTS = {"steps": limits.MAX_STEPS, "name": None, "log_every": 20, "sample_every": 250,
            "checkpoint_every": 1000, "keep": 3, "n_samples": 16, "latent_dim": None, "latent_shape": "auto",
            "seed": 0, "signals": True, "eval_every": 0, "n_classes": None, "resume": False,
            "generator_args": None}
OPTIONS = tuple(DEFAULTS)


def _name_of(run_dir: Path) -> str:
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in run_dir.name)[: limits.MAX_RUN_NAME]
    return name.strip(".") or "track"


def _plain(value: Any, depth: int = 0) -> Any:
    """The script's config as JSON can hold it: unknown objects by their str(), nesting bounded."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if depth < 8 and isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in list(value.items())[:1000]}
    if depth < 8 and isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in list(value)[:1000]]
    return str(value)[:1000]


def _first_lr(opt) -> float | None:
    return float(opt.param_groups[0]["lr"]) if opt is not None and opt.param_groups else None


class TrackedRun(PauseGate):
    def __init__(self, run_dir: str | Path | None, *, G=None, D=None, opt_g=None, opt_d=None, loss: str = "ns",
                 config: dict | None = None, real=None, **options: Any) -> None:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise TypeError(f"gantui.track(): unknown option {unknown[0]!r} (known: {', '.join(OPTIONS)})")
        o = {**DEFAULTS, **options}
        self.G, self.D, self.opt_g, self.opt_d = G, D, opt_g, opt_d
        self.user_config = config
        self.loss = loss
        self.step_count = 0
        self.should_stop = False
        self.paused = False
        self.state = ev.STARTING
        self.closed = False
        self.last_checkpoint: Path | None = None
        self.control = Control()
        self._single = 0
        self._listeners: list[ev.Listener] = []
        self._figures = fig.Figures()
        self._given: set[str] = set()
        self._user_samples: torch.Tensor | None = None
        self._user_labels: torch.Tensor | None = None
        self._samples_at: int | None = None   # the step whose grid was saved last
        self._previous_sigterm = None
        self._saved_at: int | None = None
        self.quality = None
        self._class_note: str | None = None
        self._diag_note: str | None = None

        self.device = self._device()
        self._no_samples: str | None = None   # why G's fixed-noise batch cannot be drawn
        self.real_images, self.real_labels = self._real_images(real)
        self.fixed_y: torch.Tensor | None = None  # the fixed batch's labels, for a conditional G
        self.class_ref: torch.Tensor | None = None  # the real classes' spread (per-class collapse)
        self.fixed_z, images = self._fixed_noise(o)
        self.real_std, self.real_pdist = self._real_reference(self.real_images)
        name = o["name"] or _name_of(Path(run_dir) if run_dir is not None else Path("track"))
        self.cfg = self._config(o, name, images)
        self._rebuild = self._rebuild_meta(o, images)
        self.every = self.cfg.log.every
        self.diagnostics = Diagnostics(self.cfg.diagnostics, self.cfg.loss.kind, self.real_std)

        target = Path(run_dir) if run_dir is not None else default_run_dir(name)
        self.resumed_from: Path | None = None
        if o["resume"] and ownership.holds_run(target):
            try:
                plan = ownership.plan(name, target, target)  # refused while the run is live; needs a checkpoint
            except UserError as e:
                raise UserError(f"gantui.track(resume=True): {e}") from None
            self._restore(plan.checkpoint)  # everything checked before the history is touched
        else:
            if ownership.holds_run(target) and runlock.holder(target) is None:
                raise UserError(f"gantui.track(): {target} already holds a run; give each run a new directory, "
                                f"or continue it with resume=True (nothing was changed)")
            plan = ownership.plan(name, target, None)
        self.owner = ownership.Owner(plan)
        self.owner.__enter__()  # the lock and the control channel: from before the first write
        try:
            self.rundir = RunDir(target)
            self.rundir.open(self.cfg.to_toml())
            self.owner.attach(self)
            self.rate = Rate(self.step_count)
            self.info = ev.RunInfo(
                name=name, device=str(self.device), run_dir=str(target), total_steps=self.cfg.run.steps,
                start_step=self.step_count, data_name="your data", is_toy=False, data_dim=0,
                loss_kind=self.cfg.loss.kind, n_critic=1, lr_g=_first_lr(opt_g) or 0.0, lr_d=_first_lr(opt_d) or 0.0,
                real_std=self.real_std)
            self._publish(self.info)
            self.record_event("started", resumed_from=str(self.resumed_from) if self.resumed_from else None,
                              device=str(self.device), total_steps=self.cfg.run.steps,
                              source="track", script=os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else None,
                              script_config=_plain(config), modules=self._module_names())
            self._set_state(ev.RUNNING)
            if self._no_samples:
                # the training matters more than this measurement: go on without it, and say so once
                note = (f"gantui.track: no fixed-noise samples or sample spread from G ({self._no_samples}); "
                        f"pass latent_dim=Z and latent_shape=\"flat\"|\"spatial\", or show your own with run.samples()")
                print(note, file=sys.stderr)
                self.record_event("note", message=note)
            if self._diag_note:
                self._say(self._diag_note)
            if self._class_note:
                self._say(self._class_note)
            self.quality = self._quality(int(o["eval_every"]))
            if o["signals"]:
                self._take_sigterm()
        except BaseException:
            self.owner.__exit__(None, None, None)
            raise

    # --- what was given --------------------------------------------------------------------------
    def _device(self) -> torch.device:
        for m in (self.G, self.D):
            if m is not None:
                for p in m.parameters():
                    return p.device
        return torch.device("cpu")

    def _fixed_noise(self, o: dict) -> tuple[torch.Tensor | None, tuple | None]:
        """The fixed noise G is drawn from at every log step (latent size and shape inferred once,
        or given as options); (None, None) without a G, or when G does not take it. A conditional G
        (`n_classes=K`, or a G that fails on the latent alone while `real` has labels: K = the
        largest label + 1) is called G(z, y) with y = 0, 1, ..., K-1, 0, 1, ... as in `gantui run`."""
        if self.G is None:
            return None, None
        dim, shape = fig.latent_guess(self.G)
        if o["latent_dim"] is not None:
            dim = int(o["latent_dim"])
        if o["latent_shape"] != "auto":
            shape = o["latent_shape"]
        if dim is None:
            self._no_samples = "cannot tell the size of G's latent from its layers"
            return None, None
        n = int(o["n_samples"])
        given_k = int(o["n_classes"] or 0)
        labels_k = int(self.real_labels.max()) + 1 if self.real_labels is not None and len(self.real_labels) else 0
        tried = [shape] if o["latent_shape"] != "auto" else [shape, "flat" if shape == "spatial" else "spatial"]
        problem = ""
        for k in ([given_k] if given_k > 0 else [0] + ([labels_k] if labels_k > 1 else [])):
            y = (torch.arange(n) % k).to(self.device) if k else None
            for s in tried:
                z = fig.latent(n, dim, s, int(o["seed"]) + 1, self.device)
                try:
                    out = fig.generate(self.G, z[:2], None if y is None else y[:2])
                except Exception as e:  # noqa: BLE001 - told as one line below
                    problem = problem or f"{type(e).__name__}: {e}"
                    continue
                self.latent_shape = s
                if k:
                    self._conditional(y, k)
                return z, tuple(out.shape[1:])
        self._no_samples = (f"G does not take a latent of size {dim} ({' or '.join(tried)}"
                            f"{', with labels' if given_k or labels_k > 1 else ''}): "
                            f"{problem.splitlines()[0][:200] if problem else '?'}"
                            + ("; a conditional G: pass n_classes=K" if not given_k and labels_k <= 1 else ""))
        return None, None

    def _conditional(self, y: torch.Tensor, k: int) -> None:
        """A conditional G: its fixed batch's labels, and the real classes' spread when real labels
        were given (the per-class collapse reference; gantui.engine.records, as the trainer's)."""
        self.fixed_y = y
        if self.real_labels is None or self.real_images is None:
            self._class_note = (f"a conditional G ({k} classes): no per-class spread without real labels; "
                                f"pass real=(images, labels)")
            return
        with torch.no_grad():
            labels = self.real_labels[:2000].to(self.device)
            self.class_ref = class_reference(self.real_images[:2000].detach().to(self.device), labels, k)

    def _restore(self, path: Path) -> None:
        """resume=True: the run's newest complete checkpoint into the given G, D and optimisers (every
        tensor checked by name, shape and dtype before anything is loaded), the step count, the fixed
        noise, the alert rules' state and the CPU random state, as they were when it was saved."""
        tensors, meta = checkpoint.read(path)
        if meta.get("source") != "track":
            raise UserError(f"gantui.track(resume=True): {path} was written by `gantui run`, not a tracked loop; "
                            f"continue it with `gantui run --resume`, or track into a new directory")
        try:
            step = int(meta.get("step", ""))
        except ValueError:
            raise UserError(f"gantui.track(resume=True): {path}: its step is unreadable") from None
        pairs = [(p, m) for p, m in (("generator", self.G), ("discriminator", self.D)) if m is not None]
        try:
            for prefix, module in pairs:  # all checked first: a mismatch changes nothing
                self._check_module(prefix, tensors, module, path)
            states = [(opt, checkpoint.check_optimizer_state(prefix, tensors, meta, opt, path, allow_fresh=True))
                      for prefix, opt in (("optim_g", self.opt_g), ("optim_d", self.opt_d)) if opt is not None]
            checkpoint.check_rng(tensors, path)
        except UserError as e:
            raise UserError(f"gantui.track(resume=True): {e}") from None
        for prefix, module in pairs:
            checkpoint.take_module(prefix, tensors, module, path)
        for opt, sd in states:
            if sd is not None:
                opt.load_state_dict(sd)
        torch.set_rng_state(tensors["rng.cpu"])
        z = tensors.get("fixed.z")
        if z is not None and self.fixed_z is not None and z.shape == self.fixed_z.shape:
            self.fixed_z = z.to(self.device)
        self._diag_note = restore_diagnostics(self.diagnostics, meta)
        self.step_count = step
        named = RunDir(path.parent.parent).checkpoint_path(step)  # latest.* is overwritten later: name the step's
        self.resumed_from = named if named.is_file() else path
        self.last_checkpoint = path
        self._saved_at = step

    @staticmethod
    def _check_module(prefix: str, tensors: dict[str, torch.Tensor], module, path: Path) -> None:
        head = prefix + "."
        found = {k[len(head):]: v for k, v in tensors.items() if k.startswith(head)}
        expected = module.state_dict()
        wrong = sorted(set(expected) ^ set(found)) or [k for k in expected if found[k].shape != expected[k].shape
                                                       or found[k].dtype != expected[k].dtype]
        if wrong:
            raise UserError(f"{path}: {head}{wrong[0]} does not match the {type(module).__name__} given "
                            f"(its tensors differ from the checkpoint's); pass the model the run was trained with")

    @staticmethod
    def _real_images(real) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(real images, their labels or None) from a tensor, an (images, labels) pair, or a
        DataLoader (its first batch: images, or (images, labels, ...))."""
        if real is None or isinstance(real, torch.Tensor):
            return real, None
        batch = real if isinstance(real, (tuple, list)) else next(iter(real))
        if not isinstance(batch, (tuple, list)):
            return batch, None
        labels = batch[1] if len(batch) > 1 and isinstance(batch[1], torch.Tensor) else None
        if labels is not None and (labels.dim() != 1 or labels.is_floating_point() or len(labels) != len(batch[0])):
            labels = None  # not class labels (a second image, a score): the images alone
        return batch[0], None if labels is None else labels.long()

    def _real_reference(self, real) -> tuple[float, float]:
        """The real data's spread (the collapse reference) from a batch of real images, or 0 = unknown."""
        if real is None:
            return 0.0, 0.0
        with torch.no_grad():
            flat = real[:512].detach().float().flatten(1).cpu()
            return float(flat.std(0).mean()), float(mean_pdist(flat))

    def _config(self, o: dict, name: str, images: tuple | None) -> config.Config:
        lr_g, lr_d = _first_lr(self.opt_g), _first_lr(self.opt_d)
        data: dict[str, Any] = {"name": "folder", "root": "(your script's data)"}
        if images is not None and len(images) == 3:
            c, h, _ = images
            if h in (28, 32, 64):
                data["image_size"] = h
            if c in (1, 3):
                data["channels"] = c
        raw = {
            "run": {"name": name, "steps": int(o["steps"]), "device": self.device.type if self.device.type in ("cpu", "cuda") else "auto",
                    "description": "your own training loop (gantui.track)"},
            "data": data,
            "loss": {"kind": self.loss, "n_critic": 1},
            "optim": {k: v for k, v in (("g_lr", lr_g), ("d_lr", lr_d)) if v},
            "log": {"every": int(o["log_every"]), "sample_every": int(o["sample_every"]),
                    "checkpoint_every": int(o["checkpoint_every"]), "keep": int(o["keep"]),
                    "n_samples": int(o["n_samples"]), "eval_every": int(o["eval_every"])},
        }
        if self.fixed_z is not None:
            raw["model"] = {"latent_dim": int(self.fixed_z.shape[1])}
        return config.from_dict(raw, source="gantui.track()")

    def _rebuild_meta(self, o: dict, images: tuple | None) -> dict[str, str]:
        """What `gantui eval` and `sample` need to rebuild G from a checkpoint (gantui.checkpoint's
        _load_tracked): the image shape and classes, the latent, and the arguments to call G's class
        with (`generator_args`); the class itself is in `modules`."""
        args = o["generator_args"]
        if args is not None and not isinstance(args, dict):
            raise TypeError(f"gantui.track(generator_args=...): expected a dict of keyword arguments, "
                            f"got {type(args).__name__}")
        meta = {"generator_args": json.dumps(_plain(args or {}))}
        data = self.cfg.data
        if self.fixed_z is not None and images is not None and len(images) == 3 and data.channels in (1, 3) \
                and tuple(images) == (data.channels, data.image_size, data.image_size):
            k = int(self.fixed_y.max()) + 1 if self.fixed_y is not None else 0
            meta["data_info"] = json.dumps({"name": "folder", "shape": list(images), "n_classes": k, "is_toy": False})
            meta["latent"] = json.dumps({"dim": int(self.fixed_z.shape[1]), "shape": self.latent_shape})
        return meta

    def _quality(self, every: int):
        """Live quality (FID/KID) when asked for with eval_every and G can be drawn against real images."""
        if every <= 0:
            return None
        real = self.real_images
        if self.fixed_y is not None:
            self._say("live quality is not measured for a conditional G in your loop yet: it is off")
            return None
        if real is None or real.dim() != 4 or self.fixed_z is None:
            self._say("live quality needs real images (real=, N x C x H x W) and a G gantui can draw: it is off")
            return None
        from gantui.tracking.quality import TrackQuality

        return TrackQuality(self.G, real, int(self.fixed_z.shape[1]), self.latent_shape, self.device, every,
                            log=self._say)

    def _say(self, message: str) -> None:
        """A line for the script's terminal and the run's event log."""
        print(f"gantui.track: {message}", file=sys.stderr)
        self.record_event("note", message=message)

    def _module_names(self) -> dict[str, str]:
        return {k: f"{type(m).__module__}:{type(m).__qualname__}" for k, m in (("G", self.G), ("D", self.D))
                if m is not None}

    # --- what the owner and the channel need (the trainer's names) --------------------------------
    def add_listener(self, fn: ev.Listener) -> None:
        self._listeners.append(fn)

    def _publish(self, message: ev.Message) -> None:
        for fn in list(self._listeners):
            try:
                fn(message)
            except Exception:  # noqa: BLE001 - a broken consumer must never stop the training
                self._listeners.remove(fn)

    def record_event(self, kind: str, **data) -> None:
        """Write an event to events.jsonl and publish it. Safe from any thread."""
        event = ev.Event(self.step_count, kind, data, journaled=self.rundir.is_open)
        self.rundir.event(event.record())
        self._publish(event)

    def _set_state(self, state: str) -> None:
        self.state = state
        self._publish(ev.StateChanged(self.step_count, state, _first_lr(self.opt_g) or 0.0,
                                      _first_lr(self.opt_d) or 0.0, 1))

    @property
    def steps(self) -> int:
        """Iterations recorded so far."""
        return self.step_count

    # --- the script's calls -----------------------------------------------------------------------
    def step(self, **figures: Any) -> None:
        """One training iteration done: its figures (tensors or numbers), e.g. d_loss, g_loss,
        d_real, d_fake. Obeys the controls; blocks here while the run is paused."""
        if self.closed:
            return
        self._figures.add(figures)
        self._given.update(figures)
        self.step_count += 1
        if self.control.pending() or self.paused:
            self._commands()
            if self.closed:
                return
        n = self.step_count
        if n % self.every == 0 or self._single:
            self._log()
        if self.closed:
            return
        if n % self.cfg.log.sample_every == 0:
            self._save_samples()
        if n % self.cfg.log.checkpoint_every == 0:
            self.save(reason="scheduled")
        if self._single:
            self._single -= 1
        if self.paused:
            self._set_state(ev.PAUSED)
            self._wait_paused()

    def samples(self, images, labels=None) -> None:
        """Images the script drew itself (N, C, H, W) in [-1, 1], saved and shown now; `labels` (N,) the
        classes they were drawn for (a conditional G): the monitor then shows them class by class."""
        if self.closed:
            return
        self._user_samples = images.detach()
        self._user_labels = None if labels is None else torch.as_tensor(labels).detach().long().reshape(-1)
        self._save_samples()

    def save(self, reason: str = "user") -> Path | None:
        """A checkpoint now: checkpoints/step_*.safetensors and latest.safetensors."""
        if self.closed:
            return None
        params = [p for m in (self.G, self.D) if m is not None for p in m.parameters()]
        if not params and self.opt_g is None and self.opt_d is None:
            return None
        if params and not all(bool(torch.isfinite(p).all()) for p in params):
            return None  # the last good checkpoint stays the newest
        tensors: dict[str, torch.Tensor] = {}
        meta: dict[str, str] = {"gantui_version": __version__, "format_version": str(checkpoint.FORMAT_VERSION),
                                "step": str(self.step_count), "config": self.cfg.to_toml(), "source": "track",
                                "modules": json.dumps(self._module_names()), **self._rebuild,
                                **diagnostics_metadata(self.diagnostics)}
        for prefix, m in (("generator", self.G), ("discriminator", self.D)):
            if m is not None:
                tensors.update(checkpoint.flatten_module(prefix, m))
        for prefix, opt in (("optim_g", self.opt_g), ("optim_d", self.opt_d)):
            if opt is not None:
                t, groups = checkpoint.flatten_optimizer(prefix, opt)
                tensors.update(t)
                meta[f"{prefix}.param_groups"] = groups
        tensors["rng.cpu"] = torch.get_rng_state()
        if self.fixed_z is not None:
            tensors["fixed.z"] = self.fixed_z
        previous = self.state
        self._set_state(ev.SAVING)
        try:
            path = self.rundir.checkpoint_path(self.step_count)
            checkpoint.save(path, tensors, meta)
            checkpoint.save(self.rundir.latest, tensors, meta)
            self.rundir.sync()
            self.rundir.prune_checkpoints(self.cfg.log.keep)
        finally:
            self._set_state(previous)
        self.last_checkpoint = path
        self._saved_at = self.step_count
        self.record_event("checkpoint", path=str(path), reason=reason)
        return path

    def _save_once(self, reason: str) -> None:
        """The end's checkpoint, unless this very step was saved already (a schedule, `s`)."""
        if self._saved_at != self.step_count:
            self.save(reason=reason)

    def close(self) -> None:
        """The run ends here: the last record, samples and a checkpoint, then `finished`."""
        self._end("finished")

    def __enter__(self) -> "TrackedRun":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._end("finished")
        elif issubclass(exc_type, KeyboardInterrupt):
            self._end("interrupted")
        else:
            self._end("error", exc)

    # --- commands -----------------------------------------------------------------------------------
    def _commands(self) -> None:
        for cmd in self.control.drain():
            self._apply(cmd)
            if self.closed:
                return

    def _wait_paused(self) -> None:
        while self.paused and not self._single and not self.closed:
            self.control.wait(0.5)
            self._commands()
        if not self.closed and not self.paused:
            self._set_state(ev.RUNNING)

    def _apply(self, cmd: Command) -> None:
        """A command from the channel (typed at its edge), applied on the script's thread."""
        if self._apply_pause(cmd, self.step_count):
            return None
        if isinstance(cmd, (ScaleLr, SetLr)):
            self._rates(cmd)
        elif isinstance(cmd, (SetNCritic, SetLive)):
            what = "n_critic" if isinstance(cmd, SetNCritic) else cmd.key
            self.record_event("note", message=f"{what} is your script's own setting: gantui cannot change it in "
                                              f"your loop (reason: {cmd.reason or 'user'})")
        elif isinstance(cmd, Save):
            self.save(reason=cmd.reason or "user")
        elif isinstance(cmd, Stop):
            self._end("stopped", save=cmd.save, reason=cmd.reason or "user")

    def _rates(self, cmd: ScaleLr | SetLr) -> None:
        for which in ("g", "d") if cmd.which == "both" else (cmd.which,):
            opt = {"g": self.opt_g, "d": self.opt_d}.get(which)
            if opt is None:
                self.record_event("note", message=f"no {which.upper()} optimiser was given to gantui.track: "
                                                  f"its rate cannot be changed")
                continue
            old = _first_lr(opt)
            new = new_rate(cmd, old)
            if new is None:
                continue
            for group in opt.param_groups:  # every group keeps its ratio to the first
                group["lr"] = group["lr"] * (new / old) if old else new
            self.record_event("lr_changed", which=which, old=old, new=new, reason=cmd.reason or "user")
        self._set_state(self.state)

    # --- records ------------------------------------------------------------------------------------
    def _log(self) -> None:
        if not self._figures and self.G is None and self.D is None:
            return
        numbers, names, values = self._figures.take()
        m_names, m_values, batch = fig.measured(self.G, self.D, self._given, self.fixed_z, self.device,
                                                self.fixed_y, self.class_ref)
        names, values = names + m_names, values + m_values
        flat = torch.cat([v.to(self.device).float().reshape(-1) for v in values]).cpu().tolist() if values else []
        host: dict[str, Any] = {}
        at = 0
        for name, v in zip(names, values):  # the one host copy, split back by name
            host[name] = flat[at] if v.dim() == 0 else flat[at:at + v.numel()]
            at += v.numel()
        weights_ok = math.isfinite(host.pop("_weights", 0.0))
        pdist = host.pop("_sample_pdist", None)
        per_class = host.pop("_class_pdist", None)
        if per_class is not None:
            host.update(class_figures(per_class))
        metrics: dict[str, Any] = {"step": self.step_count, "time": time.time(), **numbers, **host}
        if pdist is not None and self.real_pdist > 0:
            metrics["sample_pdist"] = pdist / self.real_pdist
        if self.cfg.is_critic and "d_real" in metrics and "d_fake" in metrics:
            metrics.setdefault("wasserstein", metrics["d_real"] - metrics["d_fake"])
        for which, opt in (("g", self.opt_g), ("d", self.opt_d)):
            if opt is not None:
                metrics[f"lr_{which}"] = _first_lr(opt)
        metrics["steps_per_s"] = self.rate.update(self.step_count)
        if self.quality is not None and self.quality.due(self.step_count):
            metrics.update(self.quality.measure())
            self.rate.restart(self.step_count)  # the measurement's time is not the training's
        alerts = self.diagnostics.update(metrics)
        finite = all(math.isfinite(v) for v in metrics.values() if isinstance(v, float))
        if finite and not weights_ok:
            alerts += self.diagnostics.report_divergence(self.step_count, "weights", metrics=metrics)
        metrics["health"] = self.diagnostics.health_record()
        self.rundir.metric(metrics)
        rate = self.rate.value
        eta = (self.cfg.run.steps - self.step_count) / rate if rate else None
        self._publish(ev.Snapshot(self.step_count, self.cfg.run.steps, metrics, self.state, 1, eta))
        for alert in alerts:
            self.record_event("alert", **{k: v for k, v in alert.items() if k not in ("step", "kind")})
        if not (finite and weights_ok):
            self._diverge()

    def _diverge(self) -> None:
        """NaN/Inf: the run ends (the script is told by `should_stop`); the last good checkpoint stays."""
        self.record_event("diverged", last_good_checkpoint=str(self.last_checkpoint) if self.last_checkpoint else None)
        self._set_state(ev.DIVERGED)
        self._close(stop=True)

    def _save_samples(self) -> None:
        images, labels = self._user_samples, self._user_labels
        self._user_samples = self._user_labels = None
        if images is None and self.G is not None and self.fixed_z is not None:
            images, labels = fig.generate(self.G, self.fixed_z, self.fixed_y), self.fixed_y
        if labels is not None and len(labels) != len(images):
            labels = None  # not one label per image: the grid without them
        if images is None:
            return
        self._samples_at = self.step_count
        arr = images.detach().float().cpu().numpy()
        samples = ev.Samples(self.step_count, arr, labels=None if labels is None else labels.cpu().numpy(),
                             generator="live")
        self._publish(samples)
        save_samples(self.rundir.sample_path(self.step_count), samples.images, None)
        sample_files.save(sample_files.path_for(self.rundir.samples, self.step_count), samples)

    # --- ends ----------------------------------------------------------------------------------------
    def _end(self, how: str, exc: BaseException | None = None, *, save: bool = True, reason: str = "") -> None:
        if self.closed:
            return
        try:
            if how == "finished":
                if self._figures:
                    self._log()
                if self.closed:
                    return
                if self._samples_at != self.step_count:  # not over a grid this step showed already
                    self._save_samples()
                self._save_once(reason="finished")
                self.record_event("finished", total_steps=self.step_count)
                self._set_state(ev.FINISHED)
            elif how == "interrupted":
                self._end_stopped("interrupted", save=True)
            elif how == "stopped":
                self._end_stopped(reason, save=save)
            else:
                with contextlib.suppress(Exception):
                    self._save_once(reason="crash")
                where = None
                with contextlib.suppress(Exception):
                    where = str(self.rundir.save_traceback(exc))
                self.record_event("error", message=f"{type(exc).__name__}: {exc}"[:500], traceback=where)
                self._set_state(ev.CRASHED)
        finally:
            self._close(stop=True)

    def _end_stopped(self, reason: str, save: bool) -> None:
        if save:
            self._save_once(reason=reason)
        self.record_event("stopped", reason=reason)
        self._set_state(ev.STOPPED)

    def _close(self, stop: bool) -> None:
        if self.closed:
            return
        self.closed = True
        self.should_stop = self.should_stop or stop
        self.paused = False
        self._give_back_sigterm()
        try:
            self.rundir.close()
        finally:
            self.owner.__exit__(None, None, None)

    # --- SIGTERM ---------------------------------------------------------------------------------------
    def _take_sigterm(self) -> None:
        """`kill` (SIGTERM) ends the script as Ctrl-C does, so the run is saved and marked interrupted
        (only where the script has not set its own handler, and from the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def handler(signum, frame):
            raise KeyboardInterrupt

        self._previous_sigterm = signal.signal(signal.SIGTERM, handler)

    def _give_back_sigterm(self) -> None:
        if self._previous_sigterm is not None and threading.current_thread() is threading.main_thread():
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
