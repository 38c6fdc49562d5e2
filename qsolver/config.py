"""Solver settings: the package defaults, overridden by a system's ``[solver]`` table, then by arguments."""
from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class SolverConfig:
    """Settings of one NeuralSVD run (lengths in bohr, energies in hartree)."""

    states: int = 4
    steps: int = 3000
    batch: int = 512              # Monte Carlo samples per step (split in two halves for the quartic term)
    lr: float = 1e-2              # Adam learning rate at the start; cosine decay to lr * lr_final
    lr_final: float = 0.02
    ema: float = 0.995            # decay of the exponential moving average of the weights used at the end
    nesting: str = "sequential"   # "sequential" or "joint"
    hidden: int = 48              # width of each state's MLP
    layers: int = 2               # hidden layers of each state's MLP
    activation: str = "tanh"
    envelope: str = "auto"        # "auto", "exponential", "gaussian" or "box"
    scale: float = 0.0            # length scale (bohr) of envelope and proposal; 0 = derived from the potential
    shift: float | None = None    # c in T = s (c - H); None = the adaptive rule in solver.operator_shift
    laplacian: str = "forward"    # "forward" (exact forward-Laplacian), "hessian" (torch.func trace), "fd"
    fd_step: float = 1e-2         # step (bohr) of the finite-difference Laplacian, for comparison only
    eval_samples: int = 200_000   # fresh samples for the final Rayleigh–Ritz estimate
    eval_blocks: int = 40         # jackknife blocks for the error bars
    seed: int = 0
    device: str = "cpu"
    dtype: str = "auto"           # "auto" (float32 training on CPU, float64 evaluation), "float32", "float64"
    threads: int = 0              # torch intra-op threads; 0 = torch's default (all cores)


SOLVER_KEYS = {f.name: f.type for f in fields(SolverConfig)}
