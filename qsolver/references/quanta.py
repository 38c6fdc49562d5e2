"""Quantum numbers of the lowest levels of separable closed-form problems, shared by the analytic levels
(:mod:`.analytic`) and eigenfunctions (:mod:`.analytic_states`), which must list the states in one order:

- oscillator -κ∇² + ½ Σ_i ω_i² x_i²: E = √(2κ) Σ_i ω_i (n_i + ½), n_i ≥ 0;
- box of sides L_i with infinite walls: E = κ Σ_i (π n_i / L_i)², n_i ≥ 1.
"""
from __future__ import annotations

import heapq
import math
from typing import Callable

Energy = Callable[[tuple[int, ...]], float]


def lowest_tuples(count: int, start: int, energy: Energy, n: int) -> list[tuple[int, ...]]:
    """The n integer tuples (entries ≥ start, length ``count``) of lowest energy(tuple), ascending, by
    best-first enumeration."""
    first = (start,) * count
    heap, seen, out = [(energy(first), first)], {first}, []
    while heap and len(out) < n:
        _, idx = heapq.heappop(heap)
        out.append(idx)
        for i in range(count):
            nxt = idx[:i] + (idx[i] + 1,) + idx[i + 1:]
            if nxt not in seen:
                seen.add(nxt)
                heapq.heappush(heap, (energy(nxt), nxt))
    return out


def oscillator_energy(omega: list[float], kinetic: float) -> Energy:
    """E(n_1..n_d) = √(2κ) Σ_i ω_i (n_i + ½) of -κ∇² + ½ Σ ω_i² x_i²."""
    factor = math.sqrt(2 * kinetic)
    return lambda idx: factor * sum(w * (k + 0.5) for w, k in zip(omega, idx))


def box_energy(lengths: list[float], kinetic: float) -> Energy:
    """E(n_1..n_d) = κ Σ_i (π n_i / L_i)² of -κ∇² in a box with infinite walls."""
    return lambda idx: kinetic * sum((math.pi * k / s) ** 2 for s, k in zip(lengths, idx))


def oscillator_quanta(omega: list[float], kinetic: float, n: int) -> list[tuple[int, ...]]:
    """Quantum numbers (n_i ≥ 0) of the lowest n oscillator levels, ascending."""
    return lowest_tuples(len(omega), 0, oscillator_energy(omega, kinetic), n)


def box_quanta(lengths: list[float], kinetic: float, n: int) -> list[tuple[int, ...]]:
    """Quantum numbers (n_i ≥ 1) of the lowest n box levels, ascending."""
    return lowest_tuples(len(lengths), 1, box_energy(lengths, kinetic), n)
