"""The absorption spectrum of a result: oscillator strengths between its degenerate levels, with error bars.

States are grouped into levels by :func:`qsolver.compare.close_groups`, the rule of ``qsolver compare``: by the
reference's levels where it has them (equal to 1e-9 relative, or closer than the sum of their stated errors), and
past its last level by the result's own energies and error bars. Between levels G → H,
f_GH = (Ē_H - Ē_G) Σ_{i∈G, j∈H} |d_ij|² / (κ d |G|) (:func:`qsolver.dipoles.level_strengths`): summed over the final
level's states, averaged over the initial level's, so that it does not depend on the basis inside either level.
Errors are delete-one-block jackknife errors of f_GH (the Ritz vectors and energies held fixed).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .compare import close_groups, level_errors
from .config import gaussian_width
from .dipoles import HARTREE_EV, jackknife_error, level_strengths, sample_dipoles, transitions
from .references import Reference
from .result import Result


def state_groups(result: Result, reference: Reference | None = None) -> np.ndarray:
    """Level index per state: the reference's degenerate levels for the states it covers, the result's own
    energies with their error bars beyond (both by :func:`qsolver.compare.close_groups`)."""
    e, err = np.asarray(result.energies, dtype=float), np.asarray(result.errors, dtype=float)
    m = 0 if reference is None else min(len(e), len(reference.energies))
    first = close_groups(np.asarray(reference.energies[:m], dtype=float), level_errors(reference)[:m])[0] \
        if m else np.zeros(0, dtype=int)
    rest = close_groups(e[m:], np.nan_to_num(err[m:], nan=0.0))[0] if m < len(e) else np.zeros(0, dtype=int)
    return np.concatenate([first, rest + (first[-1] + 1 if m else 0)]).astype(int)


def result_transitions(result: Result, samples: int | None = None, seed: int = 0) -> tuple[dict, str]:
    """The result's transitions (:mod:`qsolver.dipoles`) and where they come from: as stored, or for a file saved
    without them, estimated now from its networks and Ritz vectors on ``samples`` fresh samples (default: as many
    as its final Rayleigh–Ritz used, in as many blocks) drawn with ``seed``."""
    if result.transitions and samples is None:
        samples = int(result.diagnostics.get("eval_samples", 0))
        return result.transitions, f"estimated on the {samples or 'evaluation'} samples of the final Rayleigh–Ritz"
    cfg = result.config
    samples = samples or int(cfg.get("eval_samples", 200_000))
    blocks = int(cfg.get("eval_blocks", 40))
    model = result.model
    proposal = model.proposal(torch.float64, gaussian_width(cfg))
    dipoles = sample_dipoles(model, proposal, np.asarray(result.coefficients, dtype=float), samples, blocks,
                             torch.Generator(device=_device(model)).manual_seed(seed))
    return (transitions(result.energies, dipoles, result.system.kinetic),
            f"estimated on {samples} fresh samples (seed {seed}) with the stored networks and Ritz vectors")


def _device(model: torch.nn.Module) -> torch.device:
    weight = next(model.parameters(), None)
    return weight.device if weight is not None else torch.device("cpu")


@dataclass
class Spectrum:
    """Oscillator strengths between the levels of a result, with their jackknife errors."""

    system: str
    groups: np.ndarray          # level index per state
    levels: np.ndarray          # (G,) mean energy of each level, hartree
    strengths: np.ndarray       # (G, G) f_GH, dimensionless
    errors: np.ndarray          # (G, G)
    particles: int
    source: str                 # where the dipoles were estimated

    def states(self, level: int) -> str:
        """The states of ``level``, as "i" or "i-j"."""
        idx = np.flatnonzero(self.groups == level)
        return f"{idx[0]}" if len(idx) == 1 else f"{idx[0]}-{idx[-1]}"

    def from_ground(self) -> list[dict]:
        """One row per excited level: the excitation energy from the ground level (hartree, eV) and f ± error."""
        return [{"level": h, "states": self.states(h), "excitation": float(self.levels[h] - self.levels[0]),
                 "excitation_ev": float((self.levels[h] - self.levels[0]) * HARTREE_EV),
                 "strength": float(self.strengths[0, h]), "error": float(self.errors[0, h])}
                for h in range(1, len(self.levels))]

    def to_markdown(self) -> str:
        rows = self.from_ground()
        lines = ["## Transitions from the ground level", "",
                 f"Oscillator strengths f = (2m/d) ΔE |⟨0|Σ_k x_k|j⟩|² (m = 1/(2κ)), summed over the states of each "
                 f"final level and averaged over the ground level's states ({self.states(0)}); ± is the jackknife "
                 f"standard error. Dipoles {self.source}. 1 hartree = {HARTREE_EV} eV.", "",
                 "| level | states | ΔE (hartree) | ΔE (eV) | f | ± |", "|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['level']} | {r['states']} | {r['excitation']:.6f} | {r['excitation_ev']:.4f} | "
                  f"{r['strength']:.5f} | {r['error']:.1e} |" for r in rows]
        total = sum(r["strength"] for r in rows)
        lines += ["", f"Sum of these lines: {total:.4f} (the Thomas–Reiche–Kuhn sum rule gives N = {self.particles} "
                  "over the whole spectrum, the continuum included)."]
        return "\n".join(lines) + "\n"


def spectrum(result: Result, reference: Reference | None = None, samples: int | None = None,
             seed: int = 0) -> Spectrum:
    """The level-to-level oscillator strengths of ``result``, its states grouped by :func:`state_groups` (with
    ``reference`` where given); ``samples`` and ``seed`` as in :func:`result_transitions`."""
    data, source = result_transitions(result, samples, seed)
    groups = state_groups(result, reference)
    kappa = result.system.kinetic
    strengths = level_strengths(result.energies, data["dipoles"], groups, kappa)
    errors = jackknife_error(level_strengths(result.energies, data["dipole_replicates"], groups, kappa))
    labels = np.unique(groups)
    levels = np.array([np.mean(np.asarray(result.energies, dtype=float)[groups == g]) for g in labels])
    return Spectrum(result.system.name, groups, levels, strengths, errors, result.system.particles, source)
