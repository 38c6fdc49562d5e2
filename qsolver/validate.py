"""Compare a result with reference levels, state by state and per degenerate group.

Relative error |E - E_ref| / |E_ref| per state; states whose reference levels coincide (to 1e-9 relative)
form a group and are also compared as a group (mean energy against the level, spread within the group).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np

from .potentials import asymptote
from .references import Reference, analytic_reference
from .result import Result

DEGENERACY_RTOL = 1e-9


@dataclass
class Validation:
    """Per-state rows, per-group summaries and the orthogonality of the learned states."""

    system: str
    reference: Reference
    states: list[dict]
    groups: list[dict]
    gram_deviation: float
    raw_gram_deviation: float
    bound_levels: int | None = None
    summary: dict = field(default_factory=dict)

    def to_markdown(self) -> str:
        ref = self.reference
        lines = [f"# {self.system}: NeuralSVD against {ref.method}", "",
                 "Energies in hartree; ± combines the jackknife standard error with the Kato–Temple estimate σ²/Δ of "
                 "the learned span's error (σ = ‖(H - E)φ‖, Δ = gap to the nearest resolved level; conservative); "
                 "stat. is the jackknife part alone; z = |E - E_ref| / ±.", "",
                 "| state | group | E (NeuralSVD) | ± | stat. | E_ref | abs. error | rel. error | z |",
                 "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in self.states:
            lines.append(f"| {r['state']} | {r['group']} | {r['energy']:.8f} | {r['error']:.2e} | {r['stat_error']:.1e} | "
                         f"{r['reference']:.8f} | {r['abs_error']:.2e} | {r['rel_error']:.2e} | {r['z']:.1f} |")
        lines += ["", "| group | level E_ref | states | mean E | spread | mean rel. error | max rel. error |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for g in self.groups:
            lines.append(f"| {g['group']} | {g['reference']:.8f} | {g['size']} | {g['mean_energy']:.8f} | "
                         f"{g['spread']:.2e} | {g['mean_rel_error']:.2e} | {g['max_rel_error']:.2e} |")
        lines += ["", *(f"- {k.replace('_', ' ')}: {v}" for k, v in self.summary.items())]
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(self.states[0]))
        writer.writeheader()
        writer.writerows(self.states)
        return out.getvalue()


def degeneracy_groups(levels: np.ndarray, rtol: float = DEGENERACY_RTOL) -> np.ndarray:
    """Group index per level: consecutive levels equal to within rtol share a group."""
    groups = np.zeros(len(levels), dtype=int)
    for i in range(1, len(levels)):
        same = abs(levels[i] - levels[i - 1]) <= rtol * max(abs(levels[i]), abs(levels[i - 1]), 1e-300)
        groups[i] = groups[i - 1] + (0 if same else 1)
    return groups


def validate(result: Result, reference: Reference | None = None) -> Validation:
    """Table of the result against ``reference`` (default: the system's analytic levels)."""
    n = result.n_states
    ref = reference or analytic_reference(result.system, n)
    levels = np.asarray(ref.energies[:n], dtype=float)
    e, err = np.asarray(result.energies, dtype=float), np.asarray(result.errors, dtype=float)
    groups = degeneracy_groups(levels)
    abs_err = np.abs(e - levels)
    rel_err = abs_err / np.abs(levels)
    stat = np.asarray(result.diagnostics.get("stat_errors", err), dtype=float)
    rows = [{"state": i, "group": int(groups[i]), "energy": float(e[i]), "error": float(err[i]),
             "stat_error": float(stat[i]), "reference": float(levels[i]), "abs_error": float(abs_err[i]), "rel_error": float(rel_err[i]),
             "z": float(abs_err[i] / err[i]) if err[i] > 0 else float("inf")} for i in range(n)]
    summaries = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        summaries.append({"group": int(g), "reference": float(levels[idx[0]]), "size": int(len(idx)),
                          "mean_energy": float(e[idx].mean()), "spread": float(np.ptp(e[idx])),
                          "mean_rel_error": float(rel_err[idx].mean()), "max_rel_error": float(rel_err[idx].max())})
    diag = result.diagnostics
    v_inf = asymptote(result.system.potential)
    bound = int(np.sum(e < v_inf)) if v_inf is not None and np.isfinite(v_inf) else None
    summary = {"mean_rel_error": f"{rel_err.mean():.3e}", "max_rel_error": f"{rel_err.max():.3e}",
               "within_3_error_bars": f"{int(np.sum(abs_err <= 3 * err))}/{n}",
               "within_3_statistical_errors": f"{int(np.sum(abs_err <= 3 * stat))}/{n}",
               "gram_deviation_final": f"{diag.get('gram_deviation', float('nan')):.2e}",
               "gram_deviation_trained_networks": f"{diag.get('raw_gram_deviation', float('nan')):.2e}"}
    if "steps_done" in diag:
        summary["training"] = (f"{diag['steps_done']} steps in {diag.get('train_seconds', float('nan')):.0f} s "
                               f"({diag.get('train_dtype', '?')}, {diag.get('threads', '?')} threads); "
                               f"Rayleigh-Ritz on {diag.get('eval_samples', '?')} fresh samples")
    if "ess_fraction" in diag:
        summary["min_effective_sample_fraction"] = f"{float(np.min(diag['ess_fraction'])):.2f}"
    if bound is not None:
        summary["bound_levels"] = f"{bound}/{n} below the continuum threshold {v_inf}"
    return Validation(result.system.name, ref, rows, summaries, float(diag.get("gram_deviation", np.nan)),
                      float(diag.get("raw_gram_deviation", np.nan)), bound, summary)
