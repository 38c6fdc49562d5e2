"""Data-parallel training over torch.distributed: which rank this is, and the collectives a step needs.

Every rank holds the same model and draws its own B/W of the batch. Sums over samples (Gram matrices,
Hamiltonian matrix elements) are all-reduced; the natural-gradient step needs the kernel J Jᵀ of the whole
batch, so the per-sample Jacobian factors are all-gathered and every rank solves the same B×B systems (see
:func:`qsolver.natural.natural_step`). With ``slice_samples`` every rank draws the single-process batch from the
single-process generator and keeps its slice, which makes a W-rank run reproduce a one-rank run (a test mode).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass
class Comm:
    """This process's place in the run: ``rank`` of ``world`` processes (world 1: no collectives)."""

    rank: int = 0
    world: int = 1
    slice_samples: bool = False

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """Σ over ranks of t (every rank gets it)."""
        if self.world > 1:
            moved = t.to(_device()).contiguous()        # NCCL reduces CUDA tensors only, gloo CPU ones best
            dist.all_reduce(moved, op=dist.ReduceOp.SUM)
            t = moved.to(t.device)
        return t

    def max(self, value: float) -> float:
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t)

    def gather(self, t: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Concatenation along ``dim`` of every rank's t, in rank order (all ranks' t have equal shapes)."""
        if self.world == 1:
            return t
        moved = t.to(_device()).contiguous()
        parts = [torch.empty_like(moved) for _ in range(self.world)]
        dist.all_gather(parts, moved)
        return torch.cat(parts, dim=dim).to(t.device)

    def gather_bytes(self, data: np.ndarray) -> np.ndarray:
        """(world, n) uint8: every rank's byte string of equal length (generator states for checkpoints)."""
        t = torch.as_tensor(np.ascontiguousarray(data, dtype=np.uint8))
        if self.world == 1:
            return t[None].numpy()
        return self.gather(t[None], 0).numpy()

    def broadcast(self, values: list[float]) -> list[float]:
        """Rank 0's values on every rank (training time and stop requests, so all ranks stop at the same step)."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=_device())
        dist.broadcast(t, src=0)
        return t.tolist()

    def rank_seed(self, seed: int) -> int:
        """Sampling seed of this rank: the run's seed on rank 0 (so one rank reproduces a plain run), an
        independent stream from (seed, rank) elsewhere; all ranks share it in slice mode."""
        if self.rank == 0 or self.slice_samples:
            return seed
        return int(np.random.SeedSequence([seed, self.rank]).generate_state(1, dtype=np.uint64)[0] >> 1)


def draw(proposal, n: int, generator: torch.Generator, comm: Comm) -> torch.Tensor:
    """This rank's n samples of ``proposal``: its own draw, or in slice mode its slice of the n·W samples that a
    single process would draw."""
    if comm.slice_samples and comm.world > 1:
        return proposal.sample(n * comm.world, generator)[comm.rank * n:(comm.rank + 1) * n]
    return proposal.sample(n, generator)


def _device() -> torch.device:
    """Collectives run on the device of the backend: NCCL needs CUDA tensors, gloo CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def current(slice_samples: bool = False) -> Comm:
    """The process group's rank and size when one is initialised (torchrun, or a user's init_process_group)."""
    if dist.is_available() and dist.is_initialized():
        return Comm(dist.get_rank(), dist.get_world_size(), slice_samples)
    return Comm()


def init_from_environment(device: str) -> bool:
    """Join the process group that torchrun describes in the environment (WORLD_SIZE > 1): NCCL for CUDA,
    gloo otherwise; each CUDA rank takes the GPU of its LOCAL_RANK. Returns whether a group was started."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    return True


def leave() -> None:
    """Leave the process group together: a barrier first, so that no rank tears down its connections while a
    peer is still using them (gloo aborts the process when a pair closes under it)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
