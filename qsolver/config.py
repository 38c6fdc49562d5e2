"""Solver settings: the package defaults, overridden by a system's ``[solver]`` table, then by arguments; their
allowed values (:data:`CHOICES`) and their one check (:func:`check_settings`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Mapping

from .errors import InputError
from .fields import brief, finite_number


@dataclass
class SolverConfig:
    """Settings of one NeuralSVD run (lengths in bohr, energies in hartree)."""

    states: int = 4
    extra_states: int | None = None  # networks trained beyond `states` (a buffer below the next levels), not
                                     # reported; None: qsolver.stopping.buffer_states(states)
    steps: int | None = None      # a fixed schedule of this many steps; None: until the Ritz values settle
                                  # (qsolver.stopping), at most max_steps
    max_steps: int = 50_000       # the cap of a run without `steps`
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
    determinants: int = 4         # Slater determinants per state (networks of three and more electrons)
    jastrow: int = 16             # width of the pair-correlation MLP in the Jastrow factor (three and more
                                  # electrons); 0: the cusp factor only
    backflow: int = 3             # inverse lengths of the orbitals' permutation-equivariant inputs (sums over the
                                  # other electrons; networks of three and more interacting electrons); 0: orbitals
                                  # of one electron each, whose nodes beryllium's 2s2p ¹P needed more of
    spin_shift: float | None = None  # λ (hartree) of λ(Ŝ² - S(S+1)) in the trained operator; None: SPIN_SHIFT for
                                     # networks that are not spin-adapted by construction, else 0
    envelope: str = "auto"        # "auto", "exponential", "gaussian", "box" or "none"
    features: int = 0             # random Fourier features of the inputs (envelope "none"); 0 = none
    feature_scale: float = 0.1    # standard deviation of the Fourier frequencies (1/bohr)
    cusp: str = "learned"         # one particle, one Coulomb centre: the nuclear cusp "learned" by the network or
                                  # "exact" (Kato's, built into the envelope); several particles build it in always
    optimizer: str = "natural"    # "natural" (per-state Gauss–Newton step, qsolver.natural), "adam" or "rmsprop"
    trust: float = 0.05           # natural: largest change of a state per step, relative to its norm (decays too)
    damping: float | None = None  # natural: ε of the B×B solve, relative to the mean diagonal of J Jᵀ; None = the
                                  # network kind's default
    proposal: str = "auto"        # "auto" (matched to the envelopes; N electrons around nuclei blend in one fitted
                                  # to ψ² as they train), "envelope" (matched to the envelopes only) or "gaussian"
                                  # (fixed, proposal_scale)
    proposal_scale: float = 16.0  # standard deviation (bohr) of the fixed Gaussian proposal
    scale: float = 0.0            # length scale (bohr) of envelope and proposal; 0 = derived from the potential
    shift: float | None = None    # c in T = s (c - H); None = the adaptive rule in training.operator_shift
    shift_margin: float | None = None  # fixes the adaptive rule's c = E_top + shift_margin (E_top - E_min); None:
                                       # c from the top reported level and the buffer (training.operator_shift)
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
# Rayleigh–Ritz uses 20000 samples: exact Laplacians of its 2.6M-parameter networks are costly per sample (timed in
# results/bench/README.md, "Constants chosen by hand timings").
PRESETS: dict[str, dict] = {
    "default": {},
    "paper": dict(hidden=128, layers=3, activation="softplus", envelope="none", features=1024, feature_scale=0.1,
                  proposal="gaussian", proposal_scale=16.0, laplacian="fd", fd_step=0.01, dtype="float32",
                  optimizer="rmsprop", lr=1e-4, lr_final=0.0, ema=0.995, shift=0.0, operator_scale=100.0,
                  nesting="sequential", batch=512, gram_batch=0, eval_samples=20000),
    # The package's networks trained by Adam on the NestedLoRA loss (the default before the natural step).
    "adam": dict(optimizer="adam", batch=512, lr=1e-2),
}

# The allowed values of each setting that names a method or kind; the code that implements them (laplacian.py's
# activations, the command line's --dtype) reads them from here so that the lists cannot drift apart.
CHOICES: dict[str, tuple[str, ...]] = {
    "nesting": ("sequential", "joint"),
    "laplacian": ("forward", "hessian", "fd"),
    "dtype": ("auto", "float32", "float64"),
    "envelope": ("auto", "exponential", "gaussian", "box", "none"),
    "optimizer": ("adam", "rmsprop", "natural"),
    "proposal": ("auto", "envelope", "gaussian"),
    "cusp": ("learned", "exact"),
    "activation": ("tanh", "softplus", "silu"),
}
MAX_INT = 2**63          # solver integers are torch/NumPy int64 (seeds, counts); TOML integers are 64-bit too
# trained networks (states + extra_states): far beyond what one run trains, and reference levels are enumerated
# up front, at a cost that grows with their count
MAX_STATES = 1000
# evaluation samples: the energies' statistical error falls as 1/√N, so 1e9 samples already give 1e-5 of the 1e5
# default's; on one CPU core they take days. More is a typo, and would run until stopped.
MAX_EVAL_SAMPLES = 10**9
POSITIVE = ("states", "steps", "max_steps", "batch", "determinants", "hidden", "layers", "eval_samples", "eval_blocks",
            "shift_margin", "trust", "proposal_scale")
# counts, thread numbers and seeds (torch and NumPy generators refuse negative seeds on some paths), a time limit
# and a damping
NON_NEGATIVE = ("extra_states", "gram_batch", "features", "threads", "seed", "budget", "damping", "spin_shift",
                "jastrow", "backflow")
# λ of the default spin shift (hartree): it lifts a wrong-spin level by λ(S'(S'+1) - S(S+1)) ≥ 2λ, beyond the
# valence excitations of light atoms (≲ 0.5 hartree) for which the shift matters
SPIN_SHIFT = 1.0


def check_settings(settings: Mapping[str, Any] | SolverConfig, source: str | None,
                   prefix: str | None = "solver") -> dict:
    """The one check of solver settings, wherever they come from: each one known, of its field's type and in its
    range; a whole SolverConfig (a run's resolved settings) also one of its CHOICES, consistent with the others and
    runnable on this machine. Returns the settings as a dict; errors name ``prefix.KEY`` (no prefix: KEY)."""
    whole = isinstance(settings, SolverConfig)
    table = asdict(settings) if whole else settings
    if not isinstance(table, dict):
        raise InputError("must be a table", source=source, field=prefix)
    for key, value in table.items():
        _check_setting(key, value, source, f"{prefix}.{key}" if prefix else key)
    if whole:
        _check_config(settings, source)
    return dict(table)


def argument_name(key: str) -> str:
    """The Python API's name of a setting: ``n_states`` for ``states`` (solve, reference), else the setting's."""
    return "n_states" if key == "states" else key


def check_arguments(arguments: Mapping[str, Any], name: Callable[[str], str] = str, optional: bool = True) -> None:
    """Settings given as a function's arguments or command-line flags by the rules and messages of
    :func:`check_settings` (None: not given, when ``optional``); errors name the argument, ``name(setting)``, not a
    file."""
    try:
        check_settings({k: v for k, v in arguments.items() if v is not None or not optional}, None, prefix=None)
    except InputError as exc:
        raise InputError(exc.detail, field=name(exc.field)) from None


def _check_setting(key: str, value: Any, source: str | None, field: str) -> None:
    """One setting on its own: a known key, a value of its type (in int64 range) and sign, a device torch runs."""
    if key not in SOLVER_KEYS:
        raise InputError(f"unknown setting (known: {', '.join(SOLVER_KEYS)})", source=source, field=field)
    kind = SOLVER_KEYS[key]
    is_int = isinstance(value, int) and not isinstance(value, bool)
    # "... | None" settings are None in SolverConfig (and in stored results) for their adaptive rule
    ok = {"int": is_int, "float": finite_number(value), "str": isinstance(value, str),
          "float | None": value is None or finite_number(value), "int | None": value is None or is_int}[kind]
    if not ok:
        what = "a finite number" if kind.startswith("float") else f"of type {kind.split(' | ')[0]}"
        raise InputError(f"must be {what}, got {brief(value)}", source=source, field=field)
    if is_int and not -MAX_INT < value < MAX_INT:
        raise InputError(f"out of range, got {brief(value)}", source=source, field=field)
    if key in POSITIVE and value is not None and value <= 0:
        raise InputError(f"must be positive, got {value}", source=source, field=field)
    if key in ("states", "extra_states") and value is not None and value > MAX_STATES:
        raise InputError(f"must be at most {MAX_STATES}, got {value}", source=source, field=field)
    if key == "eval_samples" and value > MAX_EVAL_SAMPLES:
        raise InputError(f"must be at most {MAX_EVAL_SAMPLES:.0e} (the statistical error falls as 1/√N; 1e9 samples "
                         f"take days), got {value}", source=source, field=field)
    if key in NON_NEGATIVE and value is not None and value < 0:
        raise InputError(f"must be non-negative, got {value}", source=source, field=field)
    if key == "device" and not _known_device(value):
        raise InputError(f"unknown device {brief(value)} (cpu or cuda)", source=source, field=field)


def _known_device(name: str) -> bool:
    """Whether torch parses ``name`` as a cpu or cuda device (it also parses "meta", "mps", ..., which qsolver
    does not run on)."""
    import torch      # here, not at the top: the command line reads CHOICES before it needs torch

    try:
        return torch.device(name).type in ("cpu", "cuda")
    except RuntimeError:
        return False


def _check_config(cfg: SolverConfig, source: str | None) -> None:
    """A run's whole settings: each choice allowed, the settings consistent with one another, the device here."""
    import torch

    for key, known in CHOICES.items():
        if getattr(cfg, key) not in known:
            raise InputError(f"unknown {key} {brief(getattr(cfg, key))} ({', '.join(known)})", source=source,
                             field=key)
    if cfg.features and (cfg.envelope != "none" or cfg.features % 2):
        raise InputError("Fourier features need envelope = \"none\" and an even count", source=source,
                         field="features")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("CUDA is not available on this machine", source=source, field="device")
    if cfg.batch < 4 or cfg.batch % 2:      # NestedLoRA multiplies two half-batch estimates
        raise InputError(f"must be an even number >= 4, got {cfg.batch}", source=source, field="batch")


def gaussian_width(cfg: SolverConfig | dict) -> float | None:
    """The width (bohr) the model's proposal density is drawn with: ``proposal_scale`` where ``proposal`` is the
    fixed Gaussian, None (the model's own density, fitted to its envelopes) otherwise; ``cfg`` a SolverConfig or a
    result's stored configuration."""
    get = cfg.get if isinstance(cfg, dict) else lambda key: getattr(cfg, key)
    return get("proposal_scale") if get("proposal") == "gaussian" else None
