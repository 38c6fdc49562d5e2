"""A result side by side with several references, per state and per group of degenerate levels.

Per state: ΔE = E(NeuralSVD) - E_ref (hartree) for each reference. Per group: mean and spread of the NeuralSVD
energies against the reference level and, for references with wavefunctions, the subspace distance
sin θ_max = ‖(1 - P_ref) Q‖₂ between the learned span (orthonormal basis Q under the reference's quadrature)
and the reference eigenspace (projector P_ref): 0 when the learned span lies in the eigenspace, 1 when a
learned direction is orthogonal to it.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError
from .references import Reference, ionization_threshold, reference
from .result import Result
from .symmetry import result_symmetry
from .system import System
from .validate import DEGENERACY_RTOL, SPIN_LABELS, degeneracy_groups, state_status

EXACT_LABELS = ("literature", "analytic")   # references other methods are judged against, in this order


@dataclass
class Comparison:
    """Rows per state and per degenerate group; ``notes`` explain the methods, units and groups."""

    system: str
    labels: list[str]
    references: list[Reference]
    energies: np.ndarray
    errors: np.ndarray
    states: list[dict]
    groups: list[dict]
    notes: list[str] = field(default_factory=list)
    exact: str | None = None
    unavailable: dict[str, str] = field(default_factory=dict)

    def with_states(self) -> list[str]:
        """Labels of the references that carry wavefunctions."""
        return [label for label, ref in zip(self.labels, self.references) if ref.states is not None]

    def to_markdown(self) -> str:
        lines = [f"# {self.system}: NeuralSVD against {', '.join(self.labels)}", "", *self.notes, ""]
        closer = [k for k in self.states[0] if k.startswith("closer_")]
        head = ["state", "term", "group", "E (NeuralSVD)", "±", "stat.", "bias", "bound"]
        for label in self.labels:
            head += [f"E ({label})", "±", "ΔE", "z"]
        head += [f"closer to {self.exact}: NeuralSVD or {k[7:]} (abs. differences)" for k in closer]
        lines += [_row(head), _row(["---:"] * len(head))]
        for r in self.states:
            cells = [r["state"], r["term"] or "—", r["group"], _f(r["energy"]), _e(r["error"]), _e(r["stat_error"], ".1e"),
                     _e(r["bias_error"], ".1e"), _e(r["bound"], ".1e")]
            for label in self.labels:
                cells += [_f(r[f"E_{label}"]), _e(r[f"error_{label}"]), _e(r[f"dE_{label}"], "+.2e"),
                          _e(r[f"z_{label}"], ".1f")]
            cells += [f"{r[k]} ({abs(r[f'dE_{self.exact}']):.1e} vs {abs(r[f'{k[7:]}_minus_{self.exact}']):.1e})"
                      if r[k] else "—" for k in closer]
            lines.append(_row(cells))
        states = self.with_states()
        head = ["group", "states", "mean E (NeuralSVD)", "spread"]
        for label in self.labels:
            head += [f"level ({label})", "mean - level"]
        for label in states:
            head += [f"sin θ_max ({label})", f"norm on rule ({label})"]
        lines += ["", _row(head), _row(["---:"] * len(head))]
        for g in self.groups:
            cells = [g["group"], g["states"], _f(g["mean_energy"]), _e(g["spread"])]
            for label in self.labels:
                cells += [_f(g[f"level_{label}"]), _e(g[f"dmean_{label}"], "+.2e")]
            for label in states:
                cells += [_e(g[f"distance_{label}"]), _f(g[f"captured_{label}"], ".4f")]
            lines.append(_row(cells))
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        """One row per state, with its group's summary in the ``group_*`` columns."""
        by_group = {g["group"]: g for g in self.groups}
        rows = [{**r, **{f"group_{k}": v for k, v in by_group[r["group"]].items() if k != "group"}}
                for r in self.states]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()


def _row(cells: list) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _f(value: float | None, spec: str = ".8f") -> str:
    return "—" if value is None else format(value, spec)


def _e(value: float | None, spec: str = ".2e") -> str:
    return "—" if value is None else format(value, spec)


def _finite_or_none(values, n: int) -> list[float | None]:
    """A stored per-state diagnostic as floats, None where absent or not finite (results saved before it existed)."""
    if values is None:
        return [None] * n
    return [float(v) if v is not None and np.isfinite(v) else None for v in list(values)[:n]]


def level_errors(ref: Reference) -> np.ndarray:
    """The reference's error per level (hartree): its per-level estimates, else its overall bound."""
    if ref.errors is not None:
        return np.asarray(ref.errors, dtype=float)
    return np.full(len(ref.energies), float(ref.error))


def level_groups(ref: Reference) -> tuple[np.ndarray, bool]:
    """Group index per level by :func:`close_groups` with the reference's stated errors, and whether the stated
    errors merged any levels."""
    return close_groups(np.asarray(ref.energies, dtype=float), level_errors(ref))


def close_groups(levels: np.ndarray, errors: np.ndarray) -> tuple[np.ndarray, bool]:
    """Group index per level: consecutive levels equal to DEGENERACY_RTOL (relative), or closer than the sum
    of their errors |E_i - E_{i+1}| ≤ δ_i + δ_{i+1}; and whether the errors merged any levels."""
    equal = np.diff(degeneracy_groups(levels)) == 0
    within = np.abs(np.diff(levels)) <= errors[:-1] + errors[1:]
    return np.concatenate([[0], np.cumsum(~(equal | within))]), bool(np.any(within & ~equal))


def subspace_distance(learned: np.ndarray, reference: np.ndarray, weights: np.ndarray) -> float:
    """sin of the largest principal angle from span(learned) (M, g) to span(reference) (M, h), g ≤ h, in the
    inner product Σ_k w_k f(x_k) g(x_k): ‖(1 - B Bᵀ) Q‖₂ with Q, B orthonormal bases of the two spans; nan when
    a state is not finite there (a flagged result: no angle to report)."""
    if not np.all(np.isfinite(learned)):
        return float("nan")
    root = np.sqrt(np.asarray(weights, dtype=float))[:, None]
    q, _ = np.linalg.qr(root * learned)
    b, _ = np.linalg.qr(root * reference)
    return float(np.linalg.norm(q - b @ (b.T @ q), 2))


def _labels(references: list[Reference], labels: list[str] | None) -> list[str]:
    names = labels or [ref.method.split(":")[0].strip() or f"reference {i}" for i, ref in enumerate(references)]
    if len(names) != len(references):
        raise ValueError("one label per reference")
    return [name if names.count(name) == 1 else f"{name} {i}" for i, name in enumerate(names)]


def compare(result: Result, references: list[Reference], labels: list[str] | None = None,
            unavailable: dict[str, str] | None = None) -> Comparison:
    """Table of the result against every reference (labels default to the method names up to ':');
    ``unavailable`` names references that could not treat the system, with the reason, for the report.

    References may give more levels than the result has states (they tell whether the last degenerate group
    is complete) or fewer (their columns stay empty beyond their last level)."""
    unavailable = dict(unavailable or {})
    if not references:
        reasons = "; ".join(f"{k}: {v}" for k, v in unavailable.items()) or "none given"
        raise InputError(f"no reference could treat this system ({reasons})", field="reference")
    labels = _labels(references, labels)
    n = result.n_states
    e, err = np.asarray(result.energies, dtype=float), np.asarray(result.errors, dtype=float)
    cover = [min(len(ref.energies), n) for ref in references]
    first = int(np.argmax(cover))
    ref_groups, merged = level_groups(references[first])
    beyond = ref_groups[cover[first] - 1] + 1 + np.arange(n - cover[first])     # states past its last level
    groups = np.concatenate([ref_groups[: cover[first]], beyond])
    complete = {int(g): bool(np.flatnonzero(ref_groups == g)[-1] < len(ref_groups) - 1)
                for g in ref_groups[: cover[first]]}

    exact = next((label for label in EXACT_LABELS if label in labels), None)
    columns = {key: _finite_or_none(result.diagnostics.get(key), n) for key in ("stat_errors", "bias_errors",
                                                                                  "span_errors")}
    symmetry = result_symmetry(result)
    rows = []
    for i in range(n):
        row = {"state": i, "term": None if symmetry is None else symmetry[0][i],
               "group": int(groups[i]), "energy": float(e[i]), "error": float(err[i]),
               "stat_error": columns["stat_errors"][i], "bias_error": columns["bias_errors"][i],
               "bound": columns["span_errors"][i]}
        for label, ref in zip(labels, references):
            has = i < len(ref.energies)
            level = float(ref.energies[i]) if has else None
            row[f"E_{label}"] = level
            row[f"error_{label}"] = float(level_errors(ref)[i]) if has else None
            row[f"dE_{label}"] = float(e[i] - level) if has else None
            row[f"z_{label}"] = (float(abs(e[i] - level) / err[i]) if err[i] > 0 else None) if has else None
        for label in labels:
            if exact is None or label in EXACT_LABELS:
                continue
            target, theirs = row[f"E_{exact}"], row[f"E_{label}"]
            both = target is not None and theirs is not None
            row[f"{label}_minus_{exact}"] = theirs - target if both else None
            row[f"closer_{label}"] = ("NeuralSVD" if abs(e[i] - target) < abs(theirs - target) else label) if both \
                else None
        rows.append(row)

    on_rule = {label: result.wavefunctions(ref.states.points)
               for label, ref in zip(labels, references) if ref.states is not None}
    summaries = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        span = f"{idx[0]}" if len(idx) == 1 else f"{idx[0]}-{idx[-1]}"
        s = {"group": int(g), "states": span, "size": int(len(idx)), "mean_energy": float(e[idx].mean()),
             "spread": float(np.ptp(e[idx])), "complete": complete.get(int(g), False)}
        for label, ref in zip(labels, references):
            inside = idx[idx < len(ref.energies)]
            level = float(np.mean(ref.energies[inside])) if len(inside) else None
            s[f"level_{label}"] = level
            s[f"dmean_{label}"] = float(e[inside].mean() - level) if len(inside) else None
        for label, ref in zip(labels, references):
            if ref.states is None:
                continue
            columns = np.flatnonzero(ref_groups == g)
            usable = s["complete"] and len(columns) and columns[-1] < ref.states.values.shape[1]
            phi = on_rule[label][:, idx]
            s[f"distance_{label}"] = (subspace_distance(phi, ref.states.values[:, columns], ref.states.weights)
                                      if usable else None)
            s[f"captured_{label}"] = float(np.min(ref.states.weights @ phi**2))
        summaries.append(s)

    notes = _notes(result, labels, references, first, merged, summaries, rows, exact, unavailable)
    if symmetry is not None:
        notes.append(f"Term: each state's spatial symmetry ({symmetry[1]}; docs/comparing.md), 'mixed' where no "
                     "label holds 90 % of the state.")
    return Comparison(result.system.name, labels, list(references), e, err, rows, summaries, notes, exact,
                      unavailable)


def _notes(result: Result, labels: list[str], references: list[Reference], first: int, merged: bool,
           groups: list[dict], rows: list[dict], exact: str | None, unavailable: dict[str, str]) -> list[str]:
    hamiltonian = ("H = -κ∇² + V" if result.system.particles == 1
                   else "H = Σ_i (-κ∇_i² + V(x_i)) + Σ_{i<j} W(r_ij)")
    notes = [f"Energies in hartree ({hamiltonian}, κ = {result.system.kinetic:g}). ± for NeuralSVD is its headline "
             "uncertainty, 2 √(stat² + bias²): the jackknife standard error and the estimated remaining error of the "
             "learned span (variance extrapolation along training where the run has waypoints, else Kato–Temple "
             "σ²/Δ, σ = ‖(H - E)φ‖, Δ = gap to the nearest resolved level; results saved before the bias column: "
             "√(stat² + (σ²/Δ)²); docs/comparing.md); for a reference it is "
             "the stated error (its per-level estimate, else its bound over all levels); ΔE = E(NeuralSVD) - E_ref; "
             "z = |ΔE| / ±(NeuralSVD).", ""]
    molecule = result.system.molecule
    if molecule is not None:
        repulsion = molecule.nuclear_repulsion()
        totals = ", ".join(f"{e + repulsion:.8f}" for e in result.energies)
        notes += [f"All energies in the tables are electronic (H has no nuclear repulsion). NeuralSVD totals "
                  f"(electronic + nuclear repulsion {repulsion:.8f} hartree): {totals} hartree.", ""]
    for label, ref in zip(labels, references):
        kind = "per-level estimates" if ref.errors is not None else f"bound {ref.error:.1e} hartree"
        line = f"- **{label}**: {ref.method} (error: {kind}; {len(ref.energies)} levels"
        details = ref.details
        if "functions" in details:
            line += f"; {details['functions']} basis functions"
        line += ")"
        if "total_energies" in details and "nuclear_repulsion" in details:
            totals = ", ".join(f"{float(t):.8f}" for t in np.asarray(details["total_energies"])[:len(result.energies)])
            line += (f". Energies shown are electronic; total energy = electronic + nuclear repulsion "
                     f"{float(details['nuclear_repulsion']):.8f} hartree (totals: {totals} hartree)")
        notes.append(line)
    notes += [f"- **{label}**: not available ({reason})" for label, reason in unavailable.items()]
    grouping = (f"Degenerate groups from **{labels[first]}**: levels equal to {DEGENERACY_RTOL:g} relative, or "
                "closer than the sum of their stated errors")
    grouping += " (this merged numerically split levels)." if merged else "."
    notes += ["", grouping + " A group's mean is compared with the reference level; spread = max - min of the "
              "NeuralSVD energies in the group."]
    if any(ref.states is not None for ref in references):
        notes.append("Subspace distance sin θ_max = ‖(1 - P_ref) Q‖₂: Q an orthonormal basis (under the "
                     "reference's quadrature weights) of the learned states of the group, P_ref the projector on the reference "
                     "eigenspace; 0 = the same subspace, 1 = a learned direction orthogonal to it. 'norm on rule' = "
                     "min over the group of Σ_k w_k φ_i(x_k)², the learned norm the quadrature captures (≈ 1 when "
                     "its points cover the learned states).")
        cut = [g["states"] for g in groups if not g["complete"]]
        if cut:
            notes.append(f"No subspace distance for states {', '.join(cut)}: the references give no level beyond "
                         "that group, so it may hold only part of a degenerate eigenspace.")
        low = [f"{g['states']} ({label})" for g in groups for label in labels
               if g.get(f"captured_{label}") is not None and g[f"captured_{label}"] < 0.99]
        if low:
            notes.append(f"Less than 99 % of the learned norm on the quadrature for states {', '.join(low)} (the "
                         "learned states are normalised by Monte Carlo, so part of this is its sampling error).")
    if exact is not None:
        for label in labels:
            key = f"closer_{label}"
            judged = [r for r in rows if r.get(key) is not None]
            if judged:
                ours = [str(r["state"]) for r in judged if r[key] == "NeuralSVD"]
                which = f"states {', '.join(ours)}" if ours else "no state"
                notes.append(f"NeuralSVD is closer to the {exact} value than {label} for {which} (of {len(judged)} "
                             "with both values).")
    for label, ref in zip(labels, references):
        if ref.kind != "pyscf":
            continue
        lower = [f"{r['state']} (by {-r[f'dE_{label}']:.1e})" for r in rows
                 if r[f"dE_{label}"] is not None and r[f"dE_{label}"] < 0]
        if lower:
            notes.append(f"Rayleigh–Ritz values of both NeuralSVD and {label} are upper bounds of the exact levels, "
                         f"state by state (NeuralSVD's up to its statistical error): NeuralSVD lies below {label} for "
                         f"states {', '.join(lower)} hartree, i.e. it is the tighter bound there.")
    if result.system.particles == 2:
        threshold = ionization_threshold(result.system)
        spin = SPIN_LABELS.get(result.system.spin, "")
        stat = np.asarray(result.diagnostics.get("stat_errors", result.errors), dtype=float)
        status = state_status(np.asarray(result.energies), stat, threshold)
        above = [str(i) for i, s in enumerate(status) if s != "bound"]
        line = f"All states are {spin}s (2S = {result.system.spin}; the exchange symmetry is built into the ansatz)."
        if threshold is not None and np.isfinite(threshold):
            line += f" Continuum threshold {threshold:.8g} hartree"
            line += f"; states {', '.join(above)} lie at or above it (continuum, not levels)." if above else \
                "; every state lies below it."
        notes.append(line)
    return notes


STANDARD_BASES = ("aug-cc-pvtz", "aug-cc-pvqz")   # FCI in these beside the default basis, for two electrons


def default_kinds(system: System) -> list[str]:
    """The system's own ``[reference]`` kind (unless "none"), and "literature" when the file quotes levels; for
    two electrons with a PySCF reference also FCI in the standard aug-cc-pVTZ and aug-cc-pVQZ bases."""
    kinds = [] if system.reference == "none" else [system.reference]
    if "literature" in system.reference_options and "literature" not in kinds:
        kinds.append("literature")
    if system.particles == 2 and system.reference == "pyscf":
        own = str(system.reference_options.get("basis", "")).strip().lower()
        kinds += [f"pyscf:{basis}" for basis in STANDARD_BASES if basis != own]
    return kinds


def gather(system: System, n: int, kinds: list[str]) -> tuple[list[Reference], list[str], dict[str, str]]:
    """Each kind's reference with n + 1 levels (the extra level tells whether the last degenerate group is
    complete), else with n; analytic ones with their wavefunctions. Returns the references, their labels
    (the kinds) and, per kind that cannot treat the system, the reason."""
    refs, labels, unavailable = [], [], {}
    for kind in dict.fromkeys(kinds):
        options = {"with_states": True} if kind == "analytic" else {}
        try:
            try:
                ref = reference(system, n + 1, kind, **options)
            except InputError:
                ref = reference(system, n, kind, **options)
        except InputError as exc:
            unavailable[kind] = str(exc)
            continue
        refs.append(ref)
        labels.append(kind)
    return refs, labels, unavailable
