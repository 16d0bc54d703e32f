"""How a distributed (DDP) run differs from a single-process one: everything in this file.

A run launched by torch's own launcher (`torchrun --nproc_per_node=N -m gantui run PRESET …`,
or `gantui run PRESET --nproc N`, which starts it) is N processes, the *ranks*, each training
the same G and D on its own batches. The trainer asks its strategy (`Local` for one process,
`DDP` here) at the few points where the two differ:

  what          Local (one process)            DDP (N ranks)
  models        trains G and D directly        G and D each in DistributedDataParallel: the
                                               gradients of every backward are averaged over
                                               the ranks (DDP's own all-reduce, overlapped
                                               with the backward); D frozen for the G step by
                                               running it bare (no DDP hooks, no grads)
  batches       torch's global RNG             each rank its own RNG stream (rank 0 keeps the
                                               single-process stream; rank r > 0 is reseeded
                                               from (seed, r)); `data.batch_size` is per rank
  commands      drained before every step and  rank 0 receives them (keyboard, control socket)
                between critic updates         and they are applied by every rank at the next
                                               log step, in one collective that also carries
                                               a stop asked for by a signal on any rank: no
                                               host sync beyond DDP's all-reduce between log
                                               steps, at the price of up to `log.every` steps
                                               of latency (pause, rates, save, stop, fixes)
  metrics       one host copy per log step     the same vector, summed over the ranks first
                                               (losses and scores are means over every rank's
                                               batch; a NaN on any rank reaches all, so they
                                               diverge together); fixed-noise figures are rank 0's
  buffers       -                              rank-local between log steps (no broadcast per
                                               forward: D runs two to three forwards a step),
                                               made rank 0's at each log step and checkpoint,
                                               so EMA G, BN statistics and checkpoints agree
  files         the run directory              rank 0 only (lock, control channel, metrics,
                                               events, samples, checkpoints); others write nothing
  checkpoints   the RNG state                  every rank's RNG state (gathered at the save),
                                               so a resume with the same N is exact on CPU;
                                               another N is allowed: ranks without a saved
                                               state start fresh streams (said on stderr)

A rank that dies (killed, out of memory) breaks the collectives of the others: torchrun's
elastic agent sees the exit, stops the other ranks (SIGTERM, then SIGKILL after 30 s), and the
survivors end with a line saying so; checkpoints are written whole or not at all, so
`latest.safetensors` stays the last complete one.
"""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from gantui import devices
from gantui.engine.control import Command, Control, Stop, from_record, to_record
from gantui.engine.rundir import RunDir

COMMAND_BYTES = 2048            # commands carried per exchange (a few dozen); the rest wait for the next
RANK_SEED_STRIDE = 1_000_003    # rank r > 0 draws from seed + r * stride
TIMEOUT = timedelta(minutes=10)  # a collective that waits longer than this fails (a rank hung, not dead)


def torchrun_env() -> dict[str, int] | None:
    """RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE when this process is a rank of a torchrun launch of > 1 process."""
    try:
        world = int(os.environ["WORLD_SIZE"])
        rank = int(os.environ["RANK"])
        local = int(os.environ.get("LOCAL_RANK", rank))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    except (KeyError, ValueError):
        return None
    if world <= 1:
        return None
    return {"rank": rank, "world_size": world, "local_rank": local, "local_world_size": local_world}


def rank_seed(seed: int, rank: int) -> int:
    return seed + RANK_SEED_STRIDE * rank


class Local:
    """One process: every hook is a no-op, so single-process runs do exactly what they did."""

    rank = 0
    world_size = 1
    is_main = True
    distributed = False
    commands_between_critics = True

    def device(self, requested: str) -> str | torch.device:
        return requested

    def prepare(self, cfg, parts, resumed: dict | None) -> tuple[Any, Any]:
        """(d_model, g_model) to train through; None = the bare models."""
        return None, None

    def commands(self, control: Control, due: bool) -> list[Command]:
        return control.drain()

    def wait_paused(self, control: Control) -> None:
        control.wait(0.5)

    def combine(self, flat: torch.Tensor, n_mean: int) -> torch.Tensor:
        return flat

    def sync_buffers(self, parts) -> None:
        pass

    def gather_rng(self, parts) -> dict[str, torch.Tensor]:
        return {}

    def metadata(self) -> dict[str, str]:
        return {}

    def explain(self, exc: BaseException) -> str | None:
        return None

    def finish(self, trainer) -> None:
        pass

    def close(self) -> None:
        pass


class DDP(Local):
    """One rank of a torchrun launch. Build with `DDP.start(device)` (joins the process group)."""

    distributed = True
    commands_between_critics = False  # a command inside the critic loop would need a sync per update

    def __init__(self, rank: int, world_size: int, local_rank: int, device: torch.device) -> None:
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.is_main = rank == 0
        self._device = device
        self._outbox: list[Command] = []

    @classmethod
    def start(cls, requested_device: str | None) -> "DDP":
        """Join the process group torchrun set up (gloo on CPU; NCCL for CUDA tensors, with gloo
        beside it for the few CPU tensors exchanged: commands, RNG states, the run plan)."""
        env = torchrun_env()
        if env is None:
            raise RuntimeError("not launched by torchrun with WORLD_SIZE > 1")
        if devices.wants_cuda(requested_device):
            devices.check_gpus_for(env["local_world_size"])
            torch.cuda.set_device(env["local_rank"])
            device = torch.device("cuda", env["local_rank"])
            dist.init_process_group("cpu:gloo,cuda:nccl", timeout=TIMEOUT, device_id=device)
        else:
            device = torch.device("cpu")
            dist.init_process_group("gloo", timeout=TIMEOUT)
        return cls(env["rank"], env["world_size"], env["local_rank"], device)

    def device(self, requested: str) -> torch.device:
        return self._device

    # --- the run plan, decided by rank 0 ---------------------------------------------------
    def share(self, message: dict | None) -> dict:
        """Rank 0's `message` (a small JSON object) on every rank."""
        data = json.dumps(message).encode() if self.is_main else b""
        size = torch.tensor([len(data)], dtype=torch.int64)
        dist.broadcast(size, 0)
        buf = torch.zeros(int(size), dtype=torch.uint8)
        if self.is_main:
            buf.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        dist.broadcast(buf, 0)
        return json.loads(bytes(buf.tolist()).decode())

    # --- setup ------------------------------------------------------------------------------
    def prepare(self, cfg, parts, resumed: dict | None):
        """Give this rank its own RNG stream, then wrap G and D. `resumed`: the checkpoint's
        tensors and metadata when the run continues one."""
        if resumed is None:
            if self.rank:
                torch.manual_seed(rank_seed(cfg.run.seed, self.rank))
        else:
            self._restore_rng(cfg, parts, resumed["tensors"], resumed["meta"], resumed["path"])
        if cfg.model.sync_bn:
            if parts.is_cuda:
                # statistics over every rank's batch; the same state_dict keys as BatchNorm
                parts.G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(parts.G)
                parts.D = torch.nn.SyncBatchNorm.convert_sync_batchnorm(parts.D)
            elif self.is_main:
                print("gantui: model.sync_bn applies to CUDA runs; on the CPU each rank's BatchNorm "
                      "uses its own batch", file=sys.stderr)
        return self._wrap(parts.D), self._wrap(parts.G)

    def _wrap(self, module: torch.nn.Module):
        from torch.nn.parallel import DistributedDataParallel

        # Buffers (BatchNorm statistics, spectral-norm vectors) are not broadcast before each
        # forward: D runs up to three forwards before its backward, and a broadcast between
        # them would be a collective per forward for numbers only eval mode reads. They are
        # made rank 0's at log steps and checkpoints instead (sync_buffers).
        kw: dict[str, Any] = {}
        import inspect
        if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters:
            kw["forward_sync_buffers"] = False
        else:
            kw["broadcast_buffers"] = False
        if self._device.type == "cuda":
            kw["device_ids"] = [self._device.index]
        return DistributedDataParallel(module, **kw)

    def _restore_rng(self, cfg, parts, tensors: dict, meta: dict, path) -> None:
        from gantui.checkpoint import check_tensor
        from gantui.engine.state import set_rng
        from gantui.errors import CheckpointError

        raw = meta.get("world_size", "1")
        if not (isinstance(raw, str) and raw.isdigit() and 1 <= int(raw) <= 1 << 16):
            raise CheckpointError(f"{path}: metadata world_size {raw[:40]!r} is not a process count")
        saved = int(raw)
        prefix = f"rng.rank{self.rank}"
        if self.rank == 0:
            pass  # state.restore set rank 0's stream (`rng.*`, the single-process keys)
        elif f"{prefix}.cpu" in tensors:
            check_tensor(f"{prefix}.cpu", tensors[f"{prefix}.cpu"], tensors["rng.cpu"].shape, torch.uint8, path,
                         "the CPU generator's state is")
            cuda = tensors.get(f"{prefix}.cuda")
            if cuda is not None and (cuda.dtype != torch.uint8 or cuda.dim() != 1 or cuda.numel() > 1 << 20):
                raise CheckpointError(f"{path}: tensor {prefix}.cuda is not a CUDA generator state (uint8, 1-D)")
            set_rng(parts, tensors, prefix)
        else:
            torch.manual_seed(rank_seed(cfg.run.seed, self.rank) + int(meta.get("step", "0")))
        if self.is_main and saved != self.world_size:
            fresh = f"; ranks {saved}-{self.world_size - 1} start fresh random streams" if saved < self.world_size else ""
            print(f"gantui: resuming a checkpoint of {saved} process(es) with {self.world_size}{fresh}; the batch "
                  f"per step is now {self.world_size} x {cfg.data.batch_size}", file=sys.stderr)

    # --- commands ---------------------------------------------------------------------------
    def commands(self, control: Control, due: bool) -> list[Command]:
        """At a log step (or while paused): rank 0's commands, on every rank, in one all-reduce.
        Slot 0 counts the ranks other than 0 that were asked to stop (a signal)."""
        if not due:
            return []
        local = control.drain()
        buf = torch.zeros(2 + COMMAND_BYTES, dtype=torch.int32)
        if self.is_main:
            self._outbox.extend(local)
            n = len(self._outbox)
            while n and len(_encode(self._outbox[:n])) > COMMAND_BYTES:
                n -= 1  # too many at once: send what fits, the rest at the next exchange
            payload = _encode(self._outbox[:n]) if n else b""
            self._outbox = self._outbox[n:]
            buf[1] = len(payload)
            if payload:
                buf[2:2 + len(payload)] = torch.frombuffer(bytearray(payload), dtype=torch.uint8).to(torch.int32)
        elif any(isinstance(c, Stop) for c in local):
            buf[0] = 1
        dist.all_reduce(buf)
        n = int(buf[1])
        cmds = _decode(bytes(buf[2:2 + n].to(torch.uint8).tolist())) if n else []
        if int(buf[0]) and not any(isinstance(c, Stop) for c in cmds):
            cmds.append(Stop(save=True, reason="interrupted"))
        return cmds

    def wait_paused(self, control: Control) -> None:
        if self.is_main:
            control.wait(0.5)  # the other ranks wait in the next exchange: a heartbeat every 0.5 s

    # --- log steps ----------------------------------------------------------------------------
    def combine(self, flat: torch.Tensor, n_mean: int) -> torch.Tensor:
        """Sum `flat` over the ranks; its first `n_mean` entries become means. The rest are
        figures only rank 0 computes (zeros elsewhere), so the sum is rank 0's value."""
        dist.all_reduce(flat)
        flat[:n_mean] /= self.world_size
        return flat

    @torch.no_grad()
    def sync_buffers(self, parts) -> None:
        modules = [parts.G, parts.D] + ([parts.G_ema] if parts.G_ema is not None else [])
        buffers = [b for m in modules for b in m.buffers()]
        for dtype in sorted({b.dtype for b in buffers}, key=str):
            group = [b for b in buffers if b.dtype == dtype]
            flat = torch.cat([b.reshape(-1) for b in group])
            dist.broadcast(flat, 0)
            torch._foreach_copy_(group, [v.view_as(b) for v, b in zip(flat.split([b.numel() for b in group]), group)])

    # --- checkpoints --------------------------------------------------------------------------
    def gather_rng(self, parts) -> dict[str, torch.Tensor]:
        """Every other rank's RNG state, as `rng.rank<r>.cpu` / `.cuda` tensors (on every rank)."""
        states = {"cpu": torch.get_rng_state()}
        if parts.is_cuda:
            states["cuda"] = torch.cuda.get_rng_state(parts.device)
        out = {}
        for kind, state in states.items():
            got = [torch.empty_like(state) for _ in range(self.world_size)]
            dist.all_gather(got, state)
            out.update({f"rng.rank{r}.{kind}": got[r] for r in range(1, self.world_size)})
        return out

    def metadata(self) -> dict[str, str]:
        return {"world_size": str(self.world_size)}

    def explain(self, exc: BaseException) -> str | None:
        """One clear line for a collective broken by a rank that went away (gloo: the peer's
        socket closed; NCCL: an error or a timeout), instead of the backend's message."""
        text = str(exc).strip()
        lost = ("Connection closed by peer", "Connection reset", "Broken pipe", "NCCL", "timed out", "Timed out")
        if not (isinstance(exc, getattr(dist, "DistError", ())) or any(s in text for s in lost)):
            return None
        cause = re.sub(r"^\[[^\]]*\]\s*", "", text.splitlines()[0] if text else type(exc).__name__)
        cause = cause.split(". ")[0][:120]
        return (f"another process of this {self.world_size}-process run stopped (it exited or was killed), "
                f"so rank {self.rank} stops too ({cause})")

    def finish(self, trainer) -> None:
        """GANTUI_RANK_DUMP=DIR: every rank writes its whole state to DIR/rank<r>.safetensors when
        its run ends (a debugging aid, and how the tests compare the ranks tensor for tensor)."""
        folder = os.environ.get("GANTUI_RANK_DUMP")
        if not folder or not getattr(trainer, "_ready", False):
            return
        from pathlib import Path

        from gantui import checkpoint
        from gantui.engine import state

        tensors, meta = state.to_tensors(trainer.cfg, trainer.parts, trainer.rt)
        meta["applied"] = json.dumps(trainer.applied)
        meta["rank"] = str(self.rank)
        checkpoint.save(Path(folder) / f"rank{self.rank}.safetensors", tensors, meta)

    def close(self) -> None:
        if dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:  # noqa: BLE001 - a broken group at exit must not hide the run's result
                pass


def _encode(commands: list[Command]) -> bytes:
    return json.dumps([to_record(c) for c in commands], separators=(",", ":")).encode()


def _decode(data: bytes) -> list[Command]:
    return [from_record(c) for c in json.loads(data.decode())]


class NullRunDir(RunDir):
    """The run directory as ranks other than 0 see it: they write nothing (a crash's traceback
    goes to stderr, where torchrun shows it)."""

    def open(self, config_toml: str) -> None:
        pass

    def save_traceback(self, exc: BaseException):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
        return None

    def sync(self) -> None:
        pass

    def prune_checkpoints(self, keep: int) -> None:
        pass
