"""Kinds of wavefunction behind one interface (:mod:`.base`): a new kind is one module here and one line below.

- ``one`` (:mod:`.one`): one particle, an MLP per state times an envelope;
- ``pair`` (:mod:`.pair`): two particles, exactly symmetric (singlets) or antisymmetric (triplets), with cusps.
"""
from __future__ import annotations

from . import one, pair  # noqa: F401  (each module registers its kind)
from .base import KINDS, Layout, Network, Tangents, build, choose, register

__all__ = ["KINDS", "Layout", "Network", "Tangents", "build", "choose", "register"]
