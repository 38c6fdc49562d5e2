"""Kinds of wavefunction behind one interface (:mod:`.base`): a new kind is one module here and one line below.

- ``one`` (:mod:`.one`): one particle, an MLP per state times an envelope;
- ``pair`` (:mod:`.pair`): two particles, exactly symmetric (singlets) or antisymmetric (triplets), with cusps;
- ``dets`` (:mod:`.dets`): N electrons, sums of Slater determinants of neural orbitals (chosen for N ≥ 3).
"""
from __future__ import annotations

# each module registers its kind; "auto" takes the first that fits, so the order is the order of preference
from . import one, pair, dets  # noqa: F401, I001
from .base import KINDS, Layout, Network, Tangents, build, choose, register

__all__ = ["KINDS", "Layout", "Network", "Tangents", "build", "choose", "register"]
