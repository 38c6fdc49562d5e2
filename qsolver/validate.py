"""Compare a result with reference levels, state by state and per degenerate group.

Relative error |E - E_ref| / |E_ref| per state; states whose reference levels coincide (to 1e-9 relative)
form a group and are also compared as a group (mean energy against the level, spread within the group).
Each state is labelled with its spin and as bound or above the continuum threshold (:mod:`qsolver.threshold`):
a reference that lists only the bound levels (H⁻ has one) leaves the states above the threshold unmatched.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np

from .checks import LevelCheck, check_levels
from .references import Reference, analytic_reference, ionization_threshold
from .result import Result
from .stopping import describe
from .symmetry import result_symmetry

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
    threshold: float | None = None
    check: LevelCheck = field(default_factory=LevelCheck)

    def to_markdown(self) -> str:
        ref = self.reference
        lines = [f"# {self.system}: NeuralSVD against {ref.method}", "",
                 *(f"**FLAGGED**: {m}" for m in self.check.messages()), *([""] if self.check.flagged else []),
                 "Energies in hartree; ± is the headline uncertainty, built from stat. (the jackknife standard error "
                 "of the Monte Carlo estimate) and bias (the estimated remaining error of the learned span: variance "
                 "extrapolation along training where the run has waypoints, else Kato–Temple with de-noised σ); "
                 "bound is the Kato–Temple/Weinstein σ²/Δ (σ = ‖(H - E)φ‖, Δ = gap to the nearest resolved level), "
                 "an upper limit on that error, usually far above it (docs/comparing.md); z = |E - E_ref| / ±. "
                 "⟨Ŝ²⟩: each state's measured total spin S(S+1) with its standard error; term: its spatial symmetry "
                 "(docs/comparing.md, 'Spin and symmetry of each state'), 'mixed' where no label holds 90 % of it.", "",
                 "| state | spin | ⟨Ŝ²⟩ | term | status | group | E (NeuralSVD) | ± | stat. | bias | bound | E_ref | "
                 "abs. error | rel. error | z |",
                 "|---:|:---|:---|:---|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in self.states:
            matched = r["reference"] is not None
            ref_cells = (f"{r['reference']:.8f} | {r['abs_error']:.2e} | {r['rel_error']:.2e} | {r['z']:.1f}"
                         if matched else "— | — | — | —")
            group = r["group"] if matched else "—"
            s2 = ("—" if r["spin_squared"] is None
                  else f"{r['spin_squared']:.4f} ± {r['spin_squared_error']:.0e}")
            lines.append(f"| {r['state']} | {r['spin']} | {s2} | {r['term'] or '—'} | {r['status']} | {group} | "
                         f"{r['energy']:.8f} | "
                         f"{r['error']:.2e} | {r['stat_error']:.1e} | {_cell(r['bias_error'])} | {_cell(r['bound'])} | "
                         f"{ref_cells} |")
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


SPIN_LABELS = {0: "singlet", 1: "doublet", 2: "triplet", 3: "quartet", 4: "quintet"}


def state_status(energies: np.ndarray, stat: np.ndarray, threshold: float | None) -> list[str]:
    """"bound" when E lies below the continuum threshold by more than 3 standard errors, "above threshold" when
    E ≥ threshold, else "at threshold" (the Monte Carlo noise cannot tell); "bound" for confining potentials;
    "not finite" when E or its standard error is not a finite number (nothing can be said)."""
    def one(e: float, s: float) -> str:
        if not (np.isfinite(e) and np.isfinite(s)):
            return "not finite"
        if threshold is None or not np.isfinite(threshold):
            return "bound" if threshold is not None else "—"
        return "bound" if e + 3 * s < threshold else "above threshold" if e >= threshold else "at threshold"

    return [one(float(e), float(s)) for e, s in zip(energies, stat)]


def validate(result: Result, reference: Reference | None = None, threshold: float | None = None) -> Validation:
    """Table of the result against ``reference`` (default: the system's analytic levels). ``threshold``: the
    continuum threshold (default: :func:`qsolver.references.ionization_threshold`).

    A reference with fewer levels than states is matched to the first ones (e.g. a table of the bound levels); so
    is one whose further levels lie above the threshold (a basis set's discretised continuum)."""
    n = result.n_states
    system = result.system
    ref = reference or analytic_reference(system, n)
    if threshold is None:
        threshold = ionization_threshold(system)
    e, err = np.asarray(result.energies, dtype=float), np.asarray(result.errors, dtype=float)
    levels = _matched_levels(ref, n, threshold)
    m = len(levels)
    groups = degeneracy_groups(levels)
    abs_err = np.abs(e[:m] - levels)
    rel_err = abs_err / np.abs(levels)
    diag = result.diagnostics
    stat = np.asarray(diag.get("stat_errors", err), dtype=float)
    bias, bound = (_per_state(diag.get(key), n) for key in ("bias_errors", "span_errors"))
    status = state_status(e, stat, threshold)
    spin = SPIN_LABELS.get(system.spin, f"2S = {system.spin}")
    rows = _state_rows(e, err, stat, bias, bound, status, spin, levels, groups)
    symmetry = result_symmetry(result)
    _add_spin_and_term(rows, diag, symmetry)
    bound = status.count("bound") if threshold is not None and np.isfinite(threshold) else None
    check = check_levels(result, ref, threshold)
    summary = {**_error_summary(abs_err, rel_err, err[:m], stat[:m]), **_run_summary(diag),
               "level_check": check.summary(), **_states_summary(diag, status, threshold, ref, n, m, system.spin),
               **({"symmetry": f"{symmetry[1]}; term: the label whose representations hold ≥ 90 % of the state"}
                  if symmetry else {})}
    return Validation(system.name, ref, rows, _group_rows(e, levels, groups, rel_err),
                      float(diag.get("gram_deviation", np.nan)), float(diag.get("raw_gram_deviation", np.nan)), bound,
                      summary, threshold, check)


def _matched_levels(reference: Reference, n: int, threshold: float | None) -> np.ndarray:
    """The reference levels the first states are compared with: at most ``n``, and none above the threshold (a
    basis's discretised continuum holds no levels)."""
    m = min(n, len(reference.energies))
    if threshold is not None and np.isfinite(threshold):
        m = int(np.sum(np.asarray(reference.energies[:m], dtype=float) < threshold))
    return np.asarray(reference.energies[:m], dtype=float)


def _cell(value: float | None) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:.1e}"


def _per_state(values, n: int) -> list[float | None]:
    """A stored per-state diagnostic as floats (None where absent: results saved before it existed)."""
    if values is None:
        return [None] * n
    return [None if v is None else float(v) for v in values]


def _state_rows(e: np.ndarray, err: np.ndarray, stat: np.ndarray, bias: list, bound: list, status: list[str], spin: str,
                levels: np.ndarray, groups: np.ndarray) -> list[dict]:
    """One row per state: its energy and error bars, and where a level matches it, the level and the errors."""
    rows = []
    for i in range(len(e)):
        row = {"state": i, "spin": spin, "status": status[i], "group": int(groups[i]) if i < len(levels) else None,
               "energy": float(e[i]), "error": float(err[i]), "stat_error": float(stat[i]),
               "bias_error": bias[i], "bound": bound[i], "reference": None, "abs_error": None, "rel_error": None, "z": None}
        if i < len(levels):
            abs_err = abs(e[i] - levels[i])
            row.update(reference=float(levels[i]), abs_error=float(abs_err), rel_error=float(abs_err / abs(levels[i])),
                       z=float(abs_err / err[i]) if err[i] > 0 else float("inf"))
        rows.append(row)
    return rows


def _add_spin_and_term(rows: list[dict], diag: dict, symmetry: tuple | None) -> None:
    """Each row's measured ⟨Ŝ²⟩ and its error (None where not measured: one particle, one spin) and its symmetry
    label ("mixed" where the group resolves no label, None where the system has no group)."""
    s2, s2_err = (_per_state(diag.get(key), len(rows)) for key in ("spin_squared", "spin_squared_errors"))
    for i, row in enumerate(rows):
        row.update(spin_squared=s2[i], spin_squared_error=s2_err[i],
                   term=None if symmetry is None else symmetry[0][i])


def _group_rows(e: np.ndarray, levels: np.ndarray, groups: np.ndarray, rel_err: np.ndarray) -> list[dict]:
    """One row per degenerate group of levels: the mean energy of its states, their spread and errors."""
    rows = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        rows.append({"group": int(g), "reference": float(levels[idx[0]]), "size": int(len(idx)),
                     "mean_energy": float(e[idx].mean()), "spread": float(np.ptp(e[idx])),
                     "mean_rel_error": float(rel_err[idx].mean()), "max_rel_error": float(rel_err[idx].max())})
    return rows


def _error_summary(abs_err: np.ndarray, rel_err: np.ndarray, err: np.ndarray, stat: np.ndarray) -> dict:
    """The errors of the matched states against their levels (none when no level matches)."""
    if len(abs_err) == 0:
        return {}
    m = len(abs_err)
    return {"mean_rel_error": f"{rel_err.mean():.3e}", "max_rel_error": f"{rel_err.max():.3e}",
            "max_abs_error": f"{abs_err.max():.3e} hartree",
            "within_3_error_bars": f"{int(np.sum(abs_err <= 3 * err))}/{m}",
            "within_3_statistical_errors": f"{int(np.sum(abs_err <= 3 * stat))}/{m}"}


def _run_summary(diag: dict) -> dict:
    """How the run went, from its diagnostics: orthogonality, steps and time, why it stopped, processes,
    resumption, rewinds, states without a finite energy, divergence."""
    summary = {"gram_deviation_final": f"{diag.get('gram_deviation', float('nan')):.2e}",
               "gram_deviation_trained_networks": f"{diag.get('raw_gram_deviation', float('nan')):.2e}"}
    if "steps_done" in diag:
        summary["training"] = (f"{diag['steps_done']} steps in {diag.get('train_seconds', float('nan')):.0f} s "
                               f"({diag.get('train_dtype', '?')}, {diag.get('threads', '?')} threads); "
                               f"Rayleigh-Ritz on {diag.get('eval_samples', '?')} fresh samples")
    if "stop_reason" in diag:                   # results written before qsolver.stopping do not say
        summary["stopped"] = describe(diag["stop_reason"], diag.get("steps_done", 0), diag.get("plateau_steps"))
    if diag.get("world", 1) > 1:
        summary["processes"] = f"{diag['world']} (data-parallel)"
    if "resumed_at_step" in diag:
        summary["resumed"] = f"from a checkpoint at step {diag['resumed_at_step']}"
    if diag.get("rewinds"):
        summary["rewinds"] = (f"{len(diag['rewinds'])} diverging step(s) undone, at steps "
                              f"{', '.join(map(str, diag['rewinds']))} (trust region halved each time)")
    if diag.get("non_finite_energies"):
        summary["non_finite_energies"] = (f"{diag['non_finite_energies']} state(s) without a finite energy (the "
                                          "trained networks span fewer independent directions)")
    if diag.get("diverged"):
        summary["diverged"] = f"{diag['diverged']}: these are the last good state's numbers"
    return summary


def _states_summary(diag: dict, status: list[str], threshold: float | None, reference: Reference, n: int, m: int,
                    spin: int) -> dict:
    """What the states are: how well they were sampled, bound or in the continuum, matched to a level or not,
    and how exactly two-particle states keep their exchange symmetry."""
    summary = {}
    if "ess_fraction" in diag:
        summary["min_effective_sample_fraction"] = f"{float(np.min(diag['ess_fraction'])):.2f}"
    if threshold is not None and np.isfinite(threshold):
        above = status.count("above threshold")
        summary["bound_levels"] = (f"{status.count('bound')}/{n} below the continuum threshold {threshold:.8g} hartree"
                                   + (f"; {above} above it (continuum, not levels)" if above else "")
                                   + (f"; {status.count('at threshold')} within noise of it"
                                      if "at threshold" in status else ""))
    if m < n:
        summary["unmatched_states"] = (f"{n - m} (the reference lists {m} bound level(s)"
                                       + (f" and {len(reference.energies[:n]) - m} above the threshold)"
                                          if len(reference.energies[:n]) > m else ")"))
    if "exchange_symmetry_error" in diag:
        summary["exchange_symmetry_error"] = (f"{float(diag['exchange_symmetry_error']):.1e} (max |ψ(x1,x2) "
                                              f"{'-' if spin == 0 else '+'} ψ(x2,x1)| / max |ψ|)")
    return summary
