"""NeuralSVD eigensolver: train ψ_1..ψ_L on T = s (c - H) with NestedLoRA, then Rayleigh–Ritz.

``solve(system, ...)`` returns a :class:`~qsolver.result.Result` with the lowest L energies (hartree,
ascending), jackknife error bars and the wavefunctions. Settings come from the arguments, then the
system's ``[solver]`` table, then :class:`~qsolver.config.SolverConfig`; the networks and proposals from
:mod:`qsolver.ansatz`.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, replace
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .ansatz import build_model, model_config, proposal_for
from .config import SolverConfig
from .errors import InputError
from .hamiltonian import apply_hamiltonian, potential_energy
from .model import EigenNet
from .natural import descent_direction, natural_step
from .nestedlora import lora_objective, nestedlora_loss
from .observables import pair_observables
from .pairnet import PairNet
from .potentials import asymptote
from .result import Result
from .ritz import jackknife_ritz, rayleigh_ritz, residual_norms, span_errors
from .system import System
from .threshold import continuum_threshold

LOG_EVERY = 10


def resolve_config(system: System, **overrides) -> SolverConfig:
    """Package defaults, then the system's [solver] table, then the non-None overrides."""
    cfg = replace(SolverConfig(), **system.solver)
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    for key in ("states", "steps", "batch", "hidden", "layers", "eval_samples", "eval_blocks"):
        if getattr(cfg, key) < 1:
            raise InputError(f"must be positive, got {getattr(cfg, key)}", source=system.source, field=key)
    if cfg.nesting not in ("sequential", "joint"):
        raise InputError(f"unknown nesting '{cfg.nesting}' (sequential, joint)", source=system.source,
                         field="nesting")
    if cfg.laplacian not in ("forward", "hessian", "fd"):
        raise InputError(f"unknown method '{cfg.laplacian}' (forward, hessian, fd)", source=system.source,
                         field="laplacian")
    if cfg.dtype not in ("auto", "float32", "float64"):
        raise InputError(f"unknown dtype '{cfg.dtype}' (auto, float32, float64)", source=system.source,
                         field="dtype")
    choices = {"envelope": ("auto", "exponential", "gaussian", "box", "none"),
               "optimizer": ("adam", "rmsprop", "natural"), "proposal": ("auto", "gaussian"),
               "activation": ("tanh", "softplus", "silu")}
    for key, known in choices.items():
        if getattr(cfg, key) not in known:
            raise InputError(f"unknown {key} '{getattr(cfg, key)}' ({', '.join(known)})", source=system.source,
                             field=key)
    if cfg.features and (cfg.envelope != "none" or cfg.features % 2):
        raise InputError("Fourier features need envelope = \"none\" and an even count", source=system.source,
                         field="features")
    if cfg.trust <= 0 or cfg.damping < 0:
        bad = "trust" if cfg.trust <= 0 else "damping"
        raise InputError(f"must be {'positive' if bad == 'trust' else 'non-negative'}, got {getattr(cfg, bad)}",
                         source=system.source, field=bad)
    if cfg.budget < 0 or cfg.gram_batch < 0 or cfg.proposal_scale <= 0:
        bad = "budget" if cfg.budget < 0 else "gram_batch" if cfg.gram_batch < 0 else "proposal_scale"
        raise InputError(f"must not be negative{' or zero' if bad == 'proposal_scale' else ''}",
                         source=system.source, field=bad)
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("CUDA is not available on this machine", source=system.source, field="device")
    if cfg.batch < 4 or cfg.batch % 2:
        raise InputError(f"must be an even number >= 4, got {cfg.batch}", source=system.source, field="batch")
    return cfg


def operator_shift(ritz: np.ndarray, v_inf: float | None, fixed: float | None) -> tuple[float, float]:
    """(c, s) in T = s (c - H).

    Rule: with E_min, E_max the current lowest and highest Ritz values (E_max ≥ E_L by Courant–Fischer)
    and V_∞ = lim V(x) for |x| → ∞ (0 for Coulomb systems, +∞ for confining ones), let
    E_top = min(E_max, V_∞) and c = E_top + ¼ (E_top - E_min). The lowest L levels are then T's largest
    eigenvalues, all positive, and T's spectrum is compressed: for 2D hydrogen c ≈ ¼ |E_0| shrinks the ratio
    of the ground to the n = 2 eigenvalue of T from 25 to about 5 (states above the continuum threshold keep
    smaller eigenvalues than every bound state). s = 1/(c - E_min) makes the largest eigenvalue 1.
    A user's ``shift`` fixes c.
    """
    e = ritz[np.isfinite(ritz)]
    e_min, e_max = float(e.min()), float(e.max())
    if fixed is not None:
        c = fixed
    else:
        top = min(e_max, v_inf) if v_inf is not None else e_max
        c = top + 0.25 * (top - e_min)
    return c, 1.0 / max(c - e_min, 1e-8)


def _threshold(system: System) -> float | None:
    """The continuum threshold where it is known in closed form, else V_∞ (an upper bound of it)."""
    threshold = continuum_threshold(system)
    return asymptote(system.potential) if threshold is None else threshold


def _dtypes(cfg: SolverConfig) -> tuple[torch.dtype, torch.dtype]:
    """(training, evaluation) dtypes. "auto" trains in float32 (batched matmuls measured 2.8× faster than
    float64 on the 2-core CPU) and evaluates Rayleigh–Ritz and the saved wavefunctions in float64."""
    if cfg.dtype == "float64":
        return torch.float64, torch.float64
    if cfg.dtype == "float32":
        return torch.float32, torch.float32
    return torch.float32, torch.float64


def _averaged_copy(model: EigenNet, averaged: list[torch.Tensor]) -> EigenNet:
    """A detached copy of the model carrying the averaged (EMA) weights."""
    copy = build_model(model.config).to(device=model.centers.device, dtype=averaged[0].dtype)
    copy.load_state_dict(model.state_dict())
    with torch.no_grad():
        for avg, p in zip(averaged, copy.parameters()):
            p.copy_(avg)
    return copy


def solve(system: System, n_states: int | None = None, steps: int | None = None, seed: int | None = None,
          device: str | None = None, dtype: str | None = None, progress: bool = True,
          checkpoints: Sequence[float] = (), on_checkpoint: Callable | None = None, **settings) -> Result:
    """Lowest ``n_states`` eigenpairs of the system's Hamiltonian by NeuralSVD (energies in hartree).

    ``settings`` are further :class:`~qsolver.config.SolverConfig` fields (batch, lr, nesting, ...).
    ``on_checkpoint(model, step, seconds)`` is called with the averaged weights once training time passes
    each of ``checkpoints`` (seconds) and at the end; its own time is not counted as training time.
    Ctrl-C during training stops it and evaluates what was learned so far.
    """
    unknown = set(settings) - set(SolverConfig.__dataclass_fields__)
    if unknown:
        raise InputError(f"unknown solver setting(s): {', '.join(sorted(unknown))}", source=system.source)
    cfg = resolve_config(system, states=n_states, steps=steps, seed=seed, device=device, dtype=dtype, **settings)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dev = torch.device(cfg.device)
    train_dtype, eval_dtype = _dtypes(cfg)
    gen = torch.Generator(device=dev).manual_seed(cfg.seed)
    init_gen = torch.Generator().manual_seed(cfg.seed)
    model = build_model(model_config(system, cfg), generator=init_gen).to(device=dev, dtype=train_dtype)
    kappa, v_inf = system.kinetic, _threshold(system)
    energy = potential_energy(system)

    optimizer = torch.optim.RMSprop if cfg.optimizer == "rmsprop" else torch.optim.Adam
    opt = optimizer(model.parameters(), lr=cfg.lr)          # unused by the natural-gradient step
    averaged = [p.detach().clone() for p in model.parameters()]
    fixed_scale = cfg.proposal_scale if cfg.proposal == "gaussian" else None
    history: dict[str, list] = {"step": [], "loss": [], "energies": [], "shift": [], "time": []}
    s_ema = h_ema = None
    shift = scale = None
    interrupted, step, skipped = False, 0, 0
    pending = sorted(checkpoints)
    start = time.perf_counter()
    paused = 0.0                              # seconds spent in checkpoint callbacks, not counted as training
    bar = tqdm(total=cfg.steps, disable=not progress, desc=system.name, unit="step", dynamic_ncols=True)
    try:
        for step in range(1, cfg.steps + 1):
            elapsed = time.perf_counter() - start - paused
            if cfg.budget and elapsed >= cfg.budget:
                step -= 1
                break
            if pending and elapsed >= pending[0] and on_checkpoint is not None:
                while pending and elapsed >= pending[0]:
                    pending.pop(0)
                tick = time.perf_counter()
                on_checkpoint(_averaged_copy(model, averaged), step - 1, elapsed)
                paused += time.perf_counter() - tick
            progress_fraction = max(step / cfg.steps, elapsed / cfg.budget if cfg.budget else 0.0)
            # cosine decay from lr (or trust) to lr_final times it over the steps or the budget
            decay = cfg.lr_final + (1 - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * min(progress_fraction, 1.0)))
            for group in opt.param_groups:
                group["lr"] = cfg.lr * decay
            proposal = proposal_for(model, train_dtype, fixed_scale)
            x = proposal.sample(cfg.batch, gen)
            root_w = torch.exp(-0.5 * proposal.log_prob(x))[:, None]         # 1/√p
            psi_d, h_psi = apply_hamiltonian(model, energy, kappa, x, cfg.laplacian, cfg.fd_step)
            f_d, hf = psi_d * root_w, h_psi * root_w
            s_b = (f_d.T @ f_d / cfg.batch).double().cpu().numpy()
            h_b = (f_d.T @ hf / cfg.batch).double().cpu().numpy()
            s_ema = s_b if s_ema is None else 0.9 * s_ema + 0.1 * s_b
            h_ema = h_b if h_ema is None else 0.9 * h_ema + 0.1 * h_b
            if shift is None or step % LOG_EVERY == 0:
                ritz = rayleigh_ritz(s_ema, h_ema).energies
                shift, scale = operator_shift(ritz, v_inf, cfg.shift)
                if cfg.operator_scale is not None:
                    scale = cfg.operator_scale
            gram = None
            if cfg.gram_batch:
                with torch.no_grad():
                    xg = proposal.sample(cfg.gram_batch, gen)
                    fg = model(xg) * torch.exp(-0.5 * proposal.log_prob(xg))[:, None]
                    gram = fg.T @ fg / cfg.gram_batch
            if cfg.optimizer == "natural":
                direction = descent_direction(f_d, scale * (shift * f_d - hf), cfg.nesting, gram)
                if torch.isfinite(direction).all():
                    natural_step(model, x, root_w, direction, f_d, decay, cfg.trust * decay, cfg.damping)
                else:
                    skipped += 1
            else:
                loss = nestedlora_loss(model(x) * root_w, scale * (shift * f_d - hf), cfg.nesting, gram=gram)
                opt.zero_grad(set_to_none=True)
                if torch.isfinite(loss):
                    loss.backward()
                    opt.step()
                else:
                    skipped += 1
            with torch.no_grad():
                for avg, p in zip(averaged, model.parameters()):
                    avg.lerp_(p, 1.0 - cfg.ema)
            if step % LOG_EVERY == 0 or step == cfg.steps:
                value = lora_objective(torch.tensor(s_b), torch.tensor(scale * (shift * s_b.diagonal()
                                                                                - h_b.diagonal())))
                history["step"].append(step)
                history["loss"].append(float(value))
                history["energies"].append(ritz)
                history["shift"].append(shift)
                history["time"].append(time.perf_counter() - start - paused)
                bar.set_postfix_str(f"loss {float(value):.4g}  E {np.array2string(ritz[:4], precision=4)}")
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
        step -= 1
    finally:
        bar.close()
    train_time = time.perf_counter() - start - paused
    with torch.no_grad():
        for avg, p in zip(averaged, model.parameters()):
            p.copy_(avg)
    if on_checkpoint is not None and checkpoints:
        on_checkpoint(_averaged_copy(model, averaged), step, train_time)

    model = model.to(dtype=eval_dtype)
    estimate = evaluate(model, system, cfg, gen, eval_dtype)
    hist = {k: np.asarray(v, dtype=float) for k, v in history.items()}
    estimate["diagnostics"].update(steps_done=step, interrupted=interrupted, skipped_steps=skipped,
                                   train_seconds=train_time,
                                   eval_seconds=time.perf_counter() - start - paused - train_time,
                                   train_dtype=str(train_dtype).replace("torch.", ""),
                                   torch=torch.__version__, threads=torch.get_num_threads())
    result = Result(system=system, energies=estimate["energies"], errors=estimate["errors"], model=model,
                    coefficients=estimate["vectors"], config=asdict(cfg), history=hist,
                    diagnostics=estimate["diagnostics"])
    if system.particles == 2:
        lo, hi = result.extent()
        mid, half = 0.5 * (lo + hi), 0.25 * (hi - lo)      # the densities live well inside the envelopes' reach
        result.observables = pair_observables(result.wavefunctions, proposal_for(model, eval_dtype),
                                              max(cfg.eval_samples // 2, 1000), gen, mid - half, mid + half)
    return result


def evaluate(model: EigenNet | PairNet, system: System, cfg: SolverConfig, gen: torch.Generator,
             dtype: torch.dtype, chunk: int = 4096) -> dict:
    """Rayleigh–Ritz with ``cfg.eval_samples`` fresh samples in ``cfg.eval_blocks`` blocks.

    Error bars combine the jackknife standard error (sampling noise) with the Kato–Temple estimate of the
    learned span's error, σ_i²/Δ_i from the residual σ_i = ‖(H - E_i)φ_i‖ (see :func:`qsolver.ritz.span_errors`):
    error_i = √(stat_i² + span_i²).

    Also reports the effective sample size per state, ESS_l = (Σ w ψ_l²)² / Σ (w ψ_l²)² / N, and the
    deviation of the trained networks' normalised Gram matrix from the identity (their orthogonality).
    """
    n_states, n_blocks = cfg.states, cfg.eval_blocks
    symmetry = None
    exact = "hessian" if cfg.laplacian == "hessian" else "forward"   # finite differences only for training
    per_block = max(1, cfg.eval_samples // n_blocks)
    proposal = proposal_for(model, dtype, cfg.proposal_scale if cfg.proposal == "gaussian" else None)
    s_blocks = np.zeros((n_blocks, n_states, n_states))
    h_blocks = np.zeros((n_blocks, n_states, n_states))
    h2 = np.zeros((n_states, n_states))
    w1 = np.zeros(n_states)
    w2 = np.zeros(n_states)
    for b in range(n_blocks):
        done = 0
        while done < per_block:
            n = min(chunk, per_block - done)
            x = proposal.sample(n, gen)
            root_w = torch.exp(-0.5 * proposal.log_prob(x))[:, None]
            psi, h_psi = apply_hamiltonian(model, potential_energy(system), system.kinetic, x, exact)
            if isinstance(model, PairNet) and b == 0 and done == 0:   # exchange symmetry, as built: ψ(Px) = ±ψ(x)
                with torch.no_grad():
                    swapped = model(x.flip(1)) * model.config.exchange
                symmetry = float((psi - swapped).abs().max() / psi.abs().max())
            f, hf = psi * root_w, h_psi * root_w
            s_blocks[b] += (f.T @ f).cpu().numpy()
            h_blocks[b] += (f.T @ hf).cpu().numpy()
            h2 += (hf.T @ hf).cpu().numpy()
            mass = (f * f).cpu().numpy()
            w1 += mass.sum(0)
            w2 += (mass**2).sum(0)
            done += n
        s_blocks[b] /= per_block
        h_blocks[b] /= per_block
    solution, stat_errors = jackknife_ritz(s_blocks, h_blocks)
    s = s_blocks.mean(0)
    residuals = residual_norms(solution, s, h_blocks.mean(0), h2 / (per_block * n_blocks))
    span = span_errors(solution.energies, residuals, _threshold(system))
    errors = np.sqrt(stat_errors**2 + np.nan_to_num(span, nan=np.inf) ** 2)
    norm = np.sqrt(np.diag(s))
    raw_gram = s / np.outer(norm, norm)
    final_gram = solution.vectors.T @ s @ solution.vectors
    return {"energies": solution.energies, "errors": errors, "vectors": solution.vectors,
            "diagnostics": {"eval_samples": per_block * n_blocks, "stat_errors": stat_errors,
                            "residuals": residuals, "span_errors": span,
                            "ess_fraction": w1**2 / w2 / (per_block * n_blocks),
                            "raw_gram_deviation": float(np.abs(raw_gram - np.eye(n_states)).max()),
                            "gram_deviation": float(np.abs(final_gram - np.eye(n_states)).max()),
                            **({"exchange_symmetry_error": symmetry} if symmetry is not None else {})}}
