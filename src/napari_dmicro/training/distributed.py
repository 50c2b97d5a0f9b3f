"""Training on several processes (GPUs or nodes) with torch.distributed: everything the Trainer needs to
know about the other processes, in one place (docs/scale-out.md).

Started by ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``);
without it a run is one process and every method here is the identity.

* The global batch is the stage's ``batch_size``. Every process draws the whole batch from the step's
  seeded generator (cheap: crops of fields in memory) and trains on its own contiguous share of
  ``batch_size / world_size`` samples (``batch_size`` must divide); noise is drawn for the whole
  batch too, so sample k gets the same crop, flips and noise whatever the number of processes.
* The model is wrapped in ``DistributedDataParallel`` for each stage (over the parameters that stage
  trains), so gradients are averaged over the processes: with equal shares that is the gradient of
  the mean loss over the global batch, the same step as one process (to float rounding). Auxiliary
  optimisers (the stage-2 discriminator) average their gradients before each step the same way.
* Backend: NCCL on CUDA (each process on ``cuda:LOCAL_RANK``), gloo on the CPU.
* Only rank 0 writes the run folder (:class:`RunFolder`); the other processes neither write nor read
  it while training (the best weights are restored on rank 0 and broadcast). Resuming reads the folder
  on every process, so it must be visible to all (one node, or a shared filesystem).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from ..io import checkpoints as ck
from ..io.atomic import write_file_atomically, write_text_atomically
from ..io.safetensors_header import file_sha256

__all__ = ["Processes", "RunFolder", "is_main_process"]


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} must be an integer (set by torchrun)") from None


def is_main_process() -> bool:
    """True unless this is a non-zero rank of a torchrun job (``RANK`` > 0): who prints and writes."""
    return _env_int("RANK", 0) == 0


class Processes:
    """The processes of one training run: rank, world size, and the few collective operations the
    Trainer needs. ``Processes.from_environment()`` reads torchrun's variables."""

    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} of world size {world_size}: need 0 <= rank < world_size")
        self.rank, self.world_size, self.local_rank = int(rank), int(world_size), int(local_rank)
        self.ddp: nn.Module | None = None
        self._owns_group = False
        self._hooks: list = []

    @classmethod
    def from_environment(cls) -> Processes:
        world = _env_int("WORLD_SIZE", 1)
        return cls(_env_int("RANK", 0), world, _env_int("LOCAL_RANK", 0))

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ lifetime
    def device(self, requested: torch.device) -> torch.device:
        """This process's device: ``cuda:LOCAL_RANK`` when the run is on CUDA, else ``requested``."""
        if self.active and requested.type == "cuda":
            return torch.device("cuda", self.local_rank)
        if self.active and requested.type == "mps":
            raise ValueError("several processes on MPS are not supported; train on cuda or cpu")
        return requested

    def start(self, device: torch.device) -> None:
        """Join the process group (NCCL on CUDA, gloo on the CPU) unless one is already running."""
        if not self.active or dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=self.rank,
                                world_size=self.world_size)
        self._owns_group = True

    def close(self) -> None:
        self.unwrap()
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
        self._owns_group = False

    # ------------------------------------------------------------------ the batch
    def share(self, batch_size: int) -> slice:
        """This process's contiguous share of a global batch of ``batch_size`` samples."""
        if batch_size % self.world_size:
            raise ValueError(f"the batch of {batch_size} samples cannot be shared equally by {self.world_size} "
                             f"processes; use a batch size that is a multiple of {self.world_size} (the "
                             "global batch is the stage's batch_size)")
        n = batch_size // self.world_size
        return slice(self.rank * n, (self.rank + 1) * n)

    def expose(self, acquisition, camera: torch.Tensor, noise, generator, reference, batch_size: int):
        """``acquisition.expose`` of this process's share of the camera images of a global batch, with
        the noise the whole batch would get (drawn for ``batch_size`` images; the others are dark)."""
        if not self.active:
            return acquisition.expose(camera, noise, generator, reference)
        mine = self.share(batch_size)
        before = camera.new_zeros((mine.start, *camera.shape[1:]))
        after = camera.new_zeros((batch_size - mine.stop, *camera.shape[1:]))
        full = torch.cat([before, camera, after])
        if reference is not None:
            reference = torch.cat([reference.new_ones(mine.start), reference,
                                   reference.new_ones(batch_size - mine.stop)])
        return acquisition.expose(full, noise, generator, reference)[mine]

    # ------------------------------------------------------------------ gradients
    def wrap(self, model: nn.Module, device: torch.device) -> None:
        """Data parallel over the parameters the current stage trains (call after the stage's setup)."""
        self.unwrap()
        if not self.active:
            return
        from torch.nn.parallel import DistributedDataParallel

        self.ddp = DistributedDataParallel(_Step(model), device_ids=[device.index] if device.type == "cuda" else None)

    def unwrap(self) -> None:
        self.ddp = None

    def forward(self, loss_of: Callable[[], tuple[torch.Tensor, dict]]) -> tuple[torch.Tensor, dict]:
        """``loss_of()`` (a stage's loss on this process's share), through DDP so backward averages
        the gradients over the processes."""
        return loss_of() if self.ddp is None else self.ddp(loss_of)

    def average_gradients_of(self, optimizer) -> None:
        """Before each step of ``optimizer`` (outside DDP, e.g. a discriminator's), average its gradients."""
        if not self.active or optimizer is None:
            return

        def average(opt, args, kwargs):
            for group in opt.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        dist.all_reduce(p.grad)
                        p.grad /= self.world_size

        self._hooks.append(optimizer.register_step_pre_hook(average))

    def mean(self, loss: torch.Tensor, terms: dict) -> tuple[float, dict]:
        """The global batch's loss and loss terms: the mean of the processes' (equal shares)."""
        if not self.active:
            return float(loss.detach()), terms
        keys = sorted(k for k, v in terms.items() if isinstance(v, (int, float)))
        values = torch.tensor([float(loss.detach())] + [float(terms[k]) for k in keys], dtype=torch.float64,
                              device=self._collective_device(loss))
        dist.all_reduce(values)
        values = (values / self.world_size).tolist()
        return values[0], {**terms, **dict(zip(keys, values[1:], strict=True))}

    # ------------------------------------------------------------------ agreement
    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every process if it is true on one (a cancel or a time limit stops all together)."""
        if not self.active:
            return bool(flag)
        value = torch.tensor([1.0 if flag else 0.0], device=self._collective_device(device))
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def broadcast(self, module: nn.Module | None) -> None:
        """Rank 0's parameters and buffers to every process (e.g. the best weights it restored)."""
        if not self.active or module is None:
            return
        for tensor in list(module.parameters()) + list(module.buffers()):
            with torch.no_grad():
                dist.broadcast(tensor.data, src=0)

    def _collective_device(self, where) -> torch.device:
        device = where.device if hasattr(where, "device") else torch.device(where)
        return device if dist.get_backend() == "nccl" else torch.device("cpu")

    def folder(self, out_dir) -> RunFolder:
        """The run folder as this process sees it: rank 0 writes it, the others leave it alone."""
        return RunFolder(out_dir, writes=self.is_main)

    def record(self) -> dict:
        """What a run record states about the processes."""
        return {"world_size": self.world_size}


class _Step(nn.Module):
    """DDP's view of a training step: ``forward(loss_of)`` runs a stage's loss on the model's parameters."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, loss_of):
        return loss_of()


class RunFolder:
    """The files of a run folder, written by one process only (``writes``); on the others every write
    is skipped and :meth:`read_best` gives nothing (their weights come from rank 0)."""

    def __init__(self, out_dir, *, writes: bool = True):
        self.path, self.writes = Path(out_dir), bool(writes)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def create(self) -> None:
        if self.writes:
            self.path.mkdir(parents=True, exist_ok=True)

    def write_json(self, name: str, payload: dict) -> None:
        if self.writes:
            write_text_atomically(self.path / name, json.dumps(payload, indent=2, default=str))

    def append_line(self, name: str, line: str) -> None:
        if self.writes:
            with open(self.path / name, "a") as fh:
                fh.write(line + "\n")

    def save_checkpoint(self, name: str, model, card: dict) -> str | None:
        """Write a checkpoint; its SHA-256 (None where this process does not write)."""
        if not self.writes:
            return None
        return file_sha256(ck.save_checkpoint(self.path / name, model, card=card))

    def save_train_state(self, name: str, optimizers: dict, progress: dict, modules=None) -> None:
        if self.writes:
            ck.save_train_state(self.path / name, optimizers, progress, modules)

    def copy(self, source: str, target: str) -> None:
        if self.writes and (self.path / source).exists():
            write_file_atomically(self.path / target, lambda tmp: shutil.copyfile(self.path / source, tmp))

    def read_best(self, name: str):
        """The model saved as ``name`` (None if absent or on a process that does not write)."""
        if not self.writes or not (self.path / name).exists():
            return None
        return ck.load_checkpoint(self.path / name, device="cpu")[0]

    def read_card(self, name: str) -> dict:
        """The card of the checkpoint ``name`` ({} if absent or on a process that does not write)."""
        if not self.writes or not (self.path / name).exists():
            return {}
        return ck.read_checkpoint_info(self.path / name).card
