"""Ground levels of the (N-1)-electron ion, where the continuum of N electrons bound by nuclei starts.

One electron of an N-electron system of total spin S can leave with zero kinetic energy while the ion stays in
its lowest level of spin S' = S ± ½ (nonrelativistic H conserves the total spin, so only these couple to the
leaving electron's spin ½), so the continuum threshold of spin S is that level's energy. Two paths (a tabulated
ion whose ground level has another spin takes the second):

- a single nucleus with a tabulated ion (:data:`ION_LEVELS`, literature, error below 1e-8 hartree), for any κ:
  both V_nuc and 1/r_ij are homogeneous of degree -1, so x → 2κx maps H(κ) onto H(½)/(2κ) and E(κ) = E(½)/(2κ);
- otherwise full CI of the ion through :mod:`.pyscf` (its lowest level over the allowed spins) in the default
  companion basis for its electron count (seconds, where the reference's default basis takes minutes): ``even-tempered-2e-small``
  for two electrons on one nucleus (measured error: Li⁺ 1.5e-3, B³⁺ 2.2e-3 hartree, 5 s; ``even-tempered-2e``:
  6e-4, 1 min), else ``aug-cc-pvdz`` (Li⁺ 4.4e-2, Be⁺ 4.9e-2 hartree: its light atoms lack core-correlating
  functions; ``aug-cc-pvtz``: 3.0e-2, 4.2e-2, but 3 min for Be⁺ and more for LiH⁺, 18 s in aug-cc-pvdz).
  Full CI is variational: the threshold lies too high by that basis error.
"""
from __future__ import annotations

from functools import lru_cache

from ..molecule import Molecule, spin_values
from .pyscf import COMPANION_BASIS_2E, COMPANION_BASIS_MANY, fci_levels, many_electron_levels

# (Z, electrons) → (2S, E in hartree at κ = ½): nonrelativistic ground levels with a fixed (infinite-mass) nucleus
ION_LEVELS = {
    # He-like 1s² ¹S: G. W. F. Drake, in Atomic, Molecular and Optical Physics Handbook (AIP 1996)
    (1, 2): (0, -0.527751016544),     # H⁻
    (2, 2): (0, -2.903724377034),     # He
    (3, 2): (0, -7.279913412669),     # Li⁺
    (4, 2): (0, -13.655566238424),    # Be²⁺
    # Li-like 1s²2s ²S, to 1e-8 (later work moves them by < 1e-9): Z.-C. Yan, M. Tambasco and G. W. F. Drake,
    # Phys. Rev. A 57, 1652 (1998); M. Puchalski and K. Pachucki, Phys. Rev. A 73, 022503 (2006)
    (3, 3): (1, -7.47806032),         # Li
    (4, 3): (1, -14.32476318),        # Be⁺
}


def tabulated_ion_level(charge: int, electrons: int, spin: int, kinetic: float) -> float | None:
    """E of the tabulated ground level of ``electrons`` electrons on one nucleus of charge Z under -κ∇² (hartree),
    scaled as E(½)/(2κ); None when the ion is not in :data:`ION_LEVELS` or its ground level's 2S differs from
    ``spin`` by more than 1 (then a level of a spin it cannot couple to)."""
    entry = ION_LEVELS.get((charge, electrons))
    if entry is None or abs(entry[0] - spin) != 1:
        return None
    return entry[1] / (2 * kinetic)


@lru_cache(maxsize=32)   # reports ask for the threshold several times per result; a calculation takes seconds
def fci_ion_level(symbols: tuple, charges: tuple, positions: tuple, ion_charge: int, spin: int,
                  kinetic: float) -> float:
    """Lowest level (hartree, electronic) of the ion of ``ion_charge`` over 2S' = ``spin`` ± 1, by full CI in
    ``even-tempered-2e-small`` (two electrons on one nucleus) or ``aug-cc-pvdz``; InputError when the ion's
    determinant space is too large for full CI here."""
    electrons = sum(charges) - ion_charge
    basis = COMPANION_BASIS_2E if electrons == 2 and len(charges) == 1 else COMPANION_BASIS_MANY
    levels = []
    for ion_spin in (s for s in spin_values(electrons) if abs(s - spin) == 1):
        ion = Molecule(list(symbols), list(charges), [list(p) for p in positions], charge=ion_charge, spin=ion_spin)
        solver = fci_levels if electrons == 2 else many_electron_levels
        levels.append(float(solver(ion, kinetic, basis, 1, ion_spin)["energies"][0]))
    return min(levels)
