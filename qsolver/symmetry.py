"""Spatial symmetry of the states: their shares in the irreducible representations of a point group of H, and the
term label those shares give.

Where every one-body term is invariant under a finite group G of orthogonal maps about a centre c (acting on all
particles at once; pair interactions depend on distances only), H commutes with G and each level belongs to one
irreducible representation Γ of it. The share of a state φ in Γ is

    s_Γ = ⟨φ, P_Γ φ⟩ / ⟨φ, φ⟩,   P_Γ = (d_Γ/|G|) Σ_g χ_Γ(g) ĝ,   (ĝφ)(x) = φ(c + g(x - c)),

(real characters, χ(g⁻¹) = χ(g)); the shares sum to one, and a state of a single Γ has s_Γ = 1 on any samples, as
φ∘g is then a combination of φ's partners. ⟨φ, ĝφ⟩ is estimated with the evaluation's proposal, x ~ p:
E_p[φ(x) φ(gx)/p(x)]. The groups resolve the low angular momenta exactly:

- one centre in 3D (atoms, isotropic traps): O_h, the cube's 24 rotations times inversion. S = A1, P = T1,
  D = E + T2 (F = A2 + T1 + T2: a component of an F level reads as P or D; its degenerate group read together
  does not), parity g/u, written as in atomic spectra (° for odd);
- one centre in 2D: the rotations C_8, |m| = 0, 1, 2, 3 and 4 (m modulo 8);
- centres on a line in 3D (linear molecules): C_8 about the line, Λ = Σ, Π, Δ, Φ (modulo 8), times inversion where
  the centres lie symmetric about their midpoint (g/u);
- otherwise, harmonic terms and boxes about one centre (and 1D): the reflections of each axis, a parity ± per axis.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from .config import gaussian_width
from .errors import InputError
from .potentials import Box, Coulomb, Harmonic, terms

PURE = 0.9               # a state is given a label when that label's representations hold this share of it
SAMPLES = 2048           # configurations for the shares (exact for a state of one representation on any samples)
BLOCKS = 8               # independent blocks for the shares' standard errors
SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹"   # a term's leading spin multiplicity (²P°), which the spatial group does not see
TOL = 1e-9               # centres closer than this (bohr, relative to the system's size) coincide
ROTATIONS = 8            # C_8: the rotations about an axis or in the plane


@dataclass
class PointGroup:
    """A finite group of orthogonal maps x → c + g(x - c) that commute with H; ``characters`` (irreps, |G|) real,
    ``factors`` the projectors' prefactors (d_Γ; 1 for C_M's pairs ±m), ``labels`` (name, irreps it spans) in the
    order they are tried."""

    name: str
    centre: np.ndarray
    elements: np.ndarray              # (|G|, d, d)
    irreps: list[str]
    characters: np.ndarray            # (irreps, |G|)
    factors: np.ndarray               # (irreps,)
    labels: list[tuple[str, tuple[str, ...]]]
    parity: np.ndarray | None = None  # (|G|,) ±1: inversion's character, where the group holds it


def point_group(system) -> PointGroup | None:
    """The symmetry group used for the system's states (module docstring), or None where its one-body terms are
    not all Coulomb centres, harmonic terms or boxes, or share no centre or line."""
    d = system.dimension
    parts = terms(system.potential)
    if not all(isinstance(t, (Coulomb, Harmonic, Box)) for t in parts):
        return None
    points, weights, isotropic = [], [], True
    for t in parts:
        if isinstance(t, Coulomb):
            for q, c in zip(t.charges, t.centers):
                if q != 0:
                    points.append(np.asarray(c, dtype=float))
                    weights.append(("coulomb", float(q)))
        else:
            points.append(np.asarray(t.center, dtype=float))
            shape = t.omega if isinstance(t, Harmonic) else t.lengths
            weights.append((t.kind, tuple(float(v) for v in shape)))
            isotropic &= isinstance(t, Harmonic) and len(set(map(float, t.omega))) == 1
    if not points:
        return None
    pts = np.asarray(points)
    scale = max(1.0, float(np.abs(pts).max()))
    centre = pts.mean(0)
    together = np.abs(pts - centre).max() <= TOL * scale
    if together and isotropic and d == 3:
        return _octahedral(centre)
    if together and isotropic and d == 2:
        return _cyclic("C_8", centre, _plane_rotation, [f"|m| = {m}" for m in range(ROTATIONS // 2 + 1)], False)
    if d == 3 and not together and isotropic and _collinear(pts - centre, scale):
        axis = _axis(pts - centre)
        symmetric = _inversion_symmetric(pts, weights, centre, scale)
        return _cyclic("C_8" + (" × i" if symmetric else ""), centre, lambda angle: _axis_rotation(axis, angle),
                       list("ΣΠΔΦΓ"), symmetric)
    if together and all(kind != "coulomb" for kind, _ in weights) or (together and d == 1):
        return _reflections(centre, d)
    return None


def _collinear(offsets: np.ndarray, scale: float) -> bool:
    """Whether points (offsets from their mean) lie on one line."""
    return bool(np.linalg.svd(offsets, compute_uv=False)[1] <= TOL * scale) if len(offsets) > 1 else True


def _axis(offsets: np.ndarray) -> np.ndarray:
    return np.linalg.svd(offsets)[2][0]


def _inversion_symmetric(points: np.ndarray, weights: list, centre: np.ndarray, scale: float) -> bool:
    """Whether x → 2c - x maps every centre onto one with the same charge or shape."""
    mirrored = 2 * centre - points
    return all(any(np.abs(m - p).max() <= TOL * scale and w == v for p, v in zip(points, weights))
               for m, w in zip(mirrored, weights))


def _plane_rotation(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation by ``angle`` about the unit vector ``axis`` (Rodrigues)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def _cyclic(name: str, centre: np.ndarray, rotation, names: list[str], inversion: bool) -> PointGroup:
    """C_M (M = ROTATIONS) with its real irreps: m = 0 and M/2 (χ = 1, (-1)^k) and the pairs ±m (χ = 2 cos(2πmk/M)),
    named ``names`` for m = 0 … M/2, optionally times inversion (g/u)."""
    m_max = ROTATIONS // 2
    k = np.arange(ROTATIONS)
    rots = np.array([rotation(2 * math.pi * j / ROTATIONS) for j in k])
    chars = [np.ones(ROTATIONS)] + [2 * np.cos(2 * math.pi * m * k / ROTATIONS) for m in range(1, m_max)]
    chars.append((-1.0) ** k)
    if not inversion:
        return PointGroup(name, centre, rots, names, np.array(chars), np.ones(len(names)), [(n, (n,)) for n in names])
    elements = np.concatenate([rots, -rots])
    parity = np.concatenate([np.ones(ROTATIONS), -np.ones(ROTATIONS)])
    irreps, characters = [], []
    for n, c in zip(names, chars):
        for tag, sign in (("g", 1.0), ("u", -1.0)):
            irreps.append(n + tag)
            characters.append(np.concatenate([c, sign * c]))
    return PointGroup(name, centre, elements, irreps, np.array(characters), np.ones(len(irreps)),
                      [(n, (n + "g", n + "u")) for n in names], parity)


# characters of the rotation group O on its classes E, 8C3, 3C2 (about the cube's face axes), 6C4, 6C2' (edge axes)
_O_CHARACTERS = {"A1": (1, 1, 1, 1, 1), "A2": (1, 1, 1, -1, -1), "E": (2, -1, 2, 0, 0),
                 "T1": (3, 0, -1, 1, -1), "T2": (3, 0, -1, -1, 1)}
_O_LABELS = [("S", ("A1",)), ("P", ("T1",)), ("D", ("E", "T2")), ("F", ("A2", "T1", "T2"))]


def _o_class(r: np.ndarray) -> int:
    """The class of a rotation of the cube: 0 E, 1 C3, 2 C2 (face axis: diagonal), 3 C4, 4 C2' (edge axis)."""
    trace = int(round(np.trace(r)))
    return {3: 0, 0: 1, 1: 3}.get(trace, 2 if np.allclose(r, np.diag(np.diag(r))) else 4)


def _octahedral(centre: np.ndarray) -> PointGroup:
    """O_h = O × {E, i}: the 48 signed permutation matrices, each O irrep split g/u."""
    rots = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = np.zeros((3, 3))
            m[np.arange(3), perm] = signs
            if np.linalg.det(m) > 0:
                rots.append(m)
    rots = np.array(rots)
    classes = [_o_class(r) for r in rots]
    elements = np.concatenate([rots, -rots])
    parity = np.concatenate([np.ones(len(rots)), -np.ones(len(rots))])
    irreps, characters = [], []
    for name, table in _O_CHARACTERS.items():
        c = np.array([table[k] for k in classes], dtype=float)
        for tag, sign in (("g", 1.0), ("u", -1.0)):
            irreps.append(name + tag)
            characters.append(np.concatenate([c, sign * c]))
    labels = [(letter, tuple(i + t for i in reps for t in "gu")) for letter, reps in _O_LABELS]
    characters = np.array(characters)
    return PointGroup("O_h", centre, elements, irreps, characters, characters[:, 0], labels, parity)


def _reflections(centre: np.ndarray, d: int) -> PointGroup:
    """The 2^d reflections of the axes through ``centre``; irreps one parity ± per axis (one-dimensional)."""
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=d)))
    elements = np.array([np.diag(s) for s in signs])
    irreps, characters = [], []
    for pattern in itertools.product("+-", repeat=d):
        odd = np.array([p == "-" for p in pattern])
        characters.append(np.prod(np.where(odd, signs, 1.0), axis=1))
        irreps.append(("even", "odd")[int(odd[0])] if d == 1 else "".join(pattern))
    return PointGroup("reflections", centre, elements, irreps, np.array(characters), np.ones(len(irreps)),
                      [(n, (n,)) for n in irreps])


@dataclass
class Symmetry:
    """Per state: shares (L, irreps) with standard errors, and the label (None: no label holds PURE of it)."""

    group: str
    irreps: list[str]
    shares: np.ndarray
    share_errors: np.ndarray
    labels: list[str | None]

    def to_diagnostics(self) -> dict:
        """The diagnostics stored in a result file: ``symmetry_labels`` ("" where none holds), the group, its
        irreps and the shares (states × irreps) with their standard errors."""
        return {"symmetry_group": self.group, "symmetry_irreps": list(self.irreps),
                "symmetry_labels": ["" if x is None else x for x in self.labels],
                "symmetry_shares": self.shares.tolist(), "symmetry_share_errors": self.share_errors.tolist()}


def state_symmetry(wavefunctions, group: PointGroup, proposal, generator: torch.Generator,
                   n_samples: int = SAMPLES) -> Symmetry:
    """The states' shares in the irreps of ``group`` (module docstring) on ``n_samples`` configurations of
    ``proposal`` in BLOCKS blocks; ``wavefunctions`` maps configurations (M, N, d) as a float64 array to φ (M, L)."""
    per = max(1, n_samples // BLOCKS)
    c = group.centre
    blocks = []
    for _ in range(BLOCKS):
        x = proposal.sample(per, generator)
        w = torch.exp(-proposal.log_prob(x)).double().cpu().numpy()[:, None]
        xs = x.double().cpu().numpy()
        phi = wavefunctions(xs)
        overlaps = np.stack([(w * phi * wavefunctions(c + (xs - c) @ g.T)).mean(0) for g in group.elements])
        with np.errstate(invalid="ignore", divide="ignore"):     # a state that vanishes on the samples: NaN shares
            blocks.append(overlaps / (w * phi**2).mean(0))                              # (|G|, L)
    projector = group.factors[:, None] * group.characters / len(group.elements)        # (irreps, |G|)
    shares = np.stack([projector @ b for b in blocks])                                    # (blocks, irreps, L)
    mean, err = shares.mean(0).T, shares.std(0, ddof=1).T / math.sqrt(BLOCKS)
    return Symmetry(group.name, group.irreps, mean, err, [_label(row, group) for row in mean])


def _label(shares: np.ndarray, group: PointGroup) -> str | None:
    """The first label whose irreps hold PURE of the state; with inversion its parity (O_h: ° for odd, as in
    atomic spectra; linear: g/u), None where no label or no parity holds PURE."""
    share = dict(zip(group.irreps, shares))
    for name, reps in group.labels:
        if sum(share[r] for r in reps) >= PURE:
            if group.parity is None:
                return name
            odd = sum(share[r] for r in reps if r.endswith("u"))
            even = sum(share[r] for r in reps if r.endswith("g"))
            if max(odd, even) < PURE:
                return None
            if group.name == "O_h":
                return name + ("°" if odd > even else "")
            return name + ("u" if odd > even else "g")
    return None


def result_shares(result, seed: int = 0) -> tuple[Symmetry, str] | None:
    """The result's shares and labels, and where they come from: as stored by the solve, or for a file saved
    without them, estimated now from its networks and Ritz vectors on SAMPLES fresh samples drawn with ``seed``;
    None where the system has no group (:func:`point_group`) or the model no proposal density to sample."""
    diag = result.diagnostics
    if "symmetry_labels" in diag:
        stored = Symmetry(str(diag.get("symmetry_group", "?")), list(diag.get("symmetry_irreps", [])),
                          np.asarray(diag.get("symmetry_shares", []), dtype=float),
                          np.asarray(diag.get("symmetry_share_errors", []), dtype=float),
                          [x or None for x in diag["symmetry_labels"]])
        return stored, f"{stored.group}, stored by the run (shares in the file's diagnostics symmetry_shares)"
    group = point_group(result.system)
    if group is None or not hasattr(result.model, "proposal"):     # no group, or no sampler to estimate with
        return None
    cfg, model = result.config, result._float64_model()
    proposal = model.proposal(torch.float64, gaussian_width(cfg))
    weight = next(model.parameters(), None)
    device = weight.device if weight is not None else torch.device("cpu")
    sym = state_symmetry(result.wavefunctions, group, proposal, torch.Generator(device=device).manual_seed(seed))
    return sym, f"{group.name}, estimated now on {SAMPLES} fresh samples (seed {seed})"


def result_symmetry(result, seed: int = 0) -> tuple[list[str], str] | None:
    """The result's terms ("mixed" where no label holds PURE of a state) and where they come from
    (:func:`result_shares`); None where there are none."""
    found = result_shares(result, seed)
    if found is None:
        return None
    return [x or "mixed" for x in found[0].labels], found[1]


def accepted_terms(group: PointGroup) -> dict[str, tuple[str, ...]]:
    """The terms a level can be named by in ``group`` and the irreps each spans: the labels read, and with inversion
    each letter of either parity (O_h: S even, S° odd; linear: Σ either, Σg, Σu)."""
    if group.parity is None:
        return {name: reps for name, reps in group.labels}
    out = {}
    for name, reps in group.labels:
        even, odd = tuple(r for r in reps if r.endswith("g")), tuple(r for r in reps if r.endswith("u"))
        if group.name == "O_h":
            out.update({name: even, name + "°": odd})
        else:
            out.update({name: reps, name + "g": even, name + "u": odd})
    return out


def term_irreps(group: PointGroup, term: str) -> tuple[str, ...]:
    """The irreps of ``group`` a level of ``term`` lies in; ValueError for a term the group does not name. Written as
    the labels read (S, P°, D, Σg, Πu, |m| = 1, even, +-), spaces ignored, with an optional leading multiplicity in
    superscripts (²P°), 'o' for '°', and ± on Σ ignored: C_8 about the axis does not tell Σ⁺ from Σ⁻."""
    names = accepted_terms(group)
    canonical = {"".join(n.split()): n for n in names}
    key = "".join(str(term).split()).lstrip(SUPERSCRIPTS)
    if group.name == "O_h" and key.endswith("o"):
        key = key[:-1] + "°"
    if key.startswith("Σ"):
        key = "".join(c for c in key if c not in "+-⁺⁻")
    if key not in canonical:
        raise ValueError(f"{term!r} is not a term of {group.name} (known: {', '.join(names)})")
    return names[canonical[key]]


def expected_terms(system) -> list[tuple[str, tuple[str, ...]]] | None:
    """``[reference] terms``, the terms of the system's lowest states in order (one per state, degenerate
    components repeated), each with the irreps of :func:`point_group` it spans; None where the file names none.
    InputError, naming the field, for a value that is not such a list or a system without a group."""
    terms_ = system.reference_options.get("terms")
    if terms_ is None:
        return None
    field = "reference.terms"
    if not isinstance(terms_, list) or not terms_ or not all(isinstance(t, str) and t.strip() for t in terms_):
        raise InputError("must be a non-empty list of term names, one per state (e.g. [\"S\", \"P°\", \"P°\", \"P°\"])",
                         source=system.source, field=field)
    group = point_group(system)
    if group is None:
        raise InputError("this system has no point group qsolver resolves terms in (one centre, or centres on a "
                         "line in 3D, or harmonic terms and boxes about one centre): remove the field",
                         source=system.source, field=field)
    try:
        return [(t, term_irreps(group, t)) for t in terms_]
    except ValueError as exc:
        raise InputError(str(exc), source=system.source, field=field) from None
