"""Solver settings: the package defaults, overridden by a system's ``[solver]`` table, then by arguments."""
from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class SolverConfig:
    """Settings of one NeuralSVD run (lengths in bohr, energies in hartree)."""

    states: int = 4
    extra_states: int = 0         # networks trained beyond `states` (a buffer below the next levels), not reported
    steps: int = 3000
    budget: float = 0.0           # training wall-time limit in seconds (0 = none); the schedule follows it
    batch: int = 256              # Monte Carlo samples per step
    lr: float = 1e-2              # Adam / RMSprop learning rate at the start
    lr_final: float = 0.02        # the step sizes decay by a cosine to lr_final times their start
    ema: float = 0.995            # decay of the exponential moving average of the weights used at the end
    gram_batch: int = 0           # extra forward-only samples per step for the Gram factor (0 = half-batches)
    nesting: str = "sequential"   # "sequential" or "joint"
    hidden: int = 48              # width of each state's MLP
    layers: int = 2               # hidden layers of each state's MLP
    activation: str = "tanh"      # "tanh", "softplus" or "silu"
    network: str = "auto"         # kind of wavefunction (qsolver.networks); "auto": the first registered kind that fits
    envelope: str = "auto"        # "auto", "exponential", "gaussian", "box" or "none"
    features: int = 0             # random Fourier features of the inputs (envelope "none"); 0 = none
    feature_scale: float = 0.1    # standard deviation of the Fourier frequencies (1/bohr)
    optimizer: str = "natural"    # "natural" (per-state Gauss–Newton step, qsolver.natural), "adam" or "rmsprop"
    trust: float = 0.05           # natural: largest change of a state per step, relative to its norm (decays too)
    damping: float | None = None  # natural: ε of the B×B solve, relative to the mean diagonal of J Jᵀ; None = the
                                  # network kind's default
    proposal: str = "auto"        # "auto" (matched to the envelopes) or "gaussian" (fixed, proposal_scale)
    proposal_scale: float = 16.0  # standard deviation (bohr) of the fixed Gaussian proposal
    scale: float = 0.0            # length scale (bohr) of envelope and proposal; 0 = derived from the potential
    shift: float | None = None    # c in T = s (c - H); None = the adaptive rule in training.operator_shift
    shift_margin: float = 0.25    # the adaptive rule's c = E_top + shift_margin (E_top - E_min)
    operator_scale: float | None = None  # s in T = s (c - H); None = 1/(c - E_min), largest eigenvalue 1
    laplacian: str = "forward"    # "forward" (exact forward-Laplacian), "hessian" (torch.func trace), "fd"
    fd_step: float = 1e-2         # step (bohr) of the finite-difference Laplacian, for comparison only
    eval_samples: int = 200_000   # fresh samples for the final Rayleigh–Ritz estimate
    eval_blocks: int = 40         # jackknife blocks for the error bars
    seed: int = 0
    device: str = "cpu"
    dtype: str = "auto"           # "auto" (float32 training on CPU, float64 evaluation), "float32", "float64"
    threads: int = 0              # torch intra-op threads; 0 = torch's default (all cores)


SOLVER_KEYS = {f.name: f.type for f in fields(SolverConfig)}

# The ICML 2024 configuration for 2D hydrogen (H = -∇² - 1/r, T = 100·(-H)): one 3×128 softplus MLP per
# state over 1024 random Fourier features of scale 0.1, Gaussian proposal σ = 16 bohr, finite-difference
# Laplacian of step 0.01 in float32, RMSprop 1e-4 with cosine decay to 0, weight EMA 0.995. Its final
# Rayleigh–Ritz uses 20000 samples: exact Laplacians of its 2.6M-parameter networks cost ~2 ms per sample on a CPU.
PRESETS: dict[str, dict] = {
    "default": {},
    "paper": dict(hidden=128, layers=3, activation="softplus", envelope="none", features=1024, feature_scale=0.1,
                  proposal="gaussian", proposal_scale=16.0, laplacian="fd", fd_step=0.01, dtype="float32",
                  optimizer="rmsprop", lr=1e-4, lr_final=0.0, ema=0.995, shift=0.0, operator_scale=100.0,
                  nesting="sequential", batch=512, gram_batch=0, eval_samples=20000),
    # The package's networks trained by Adam on the NestedLoRA loss (the default before the natural step).
    "adam": dict(optimizer="adam", batch=512, lr=1e-2),
}
