"""What every kind of wavefunction provides, and the registry that finds a kind by name.

A network holds L trial functions ψ_l of N particles in d dimensions, one parameter set per state (every parameter
has the state axis first). Configurations are (B, N, d) for every N, one particle included (bohr). The engine,
estimation, checkpoints, io and memory estimates use only this interface:

- ``forward(x)`` → ψ (B, L);  ``jet(x)`` → ψ (B, L), ∇ψ (B, L, N·d), ∇²ψ (B, L) (exact, forward-Laplacian);
- ``tangents(x, root_w)`` → the factors of the per-sample Jacobian ∂f_l(x_i)/∂θ_l of f = ψ·root_w (the natural step);
- ``proposal(dtype, fixed_scale)`` → a normalised density over configurations matched to the states;
- ``extent()`` → the box (bohr) of one particle's coordinates that holds the states, None without an envelope;
- ``symmetry_error(x, psi)`` → the exchange symmetry's relative error as built, None for one particle;
- ``fit_proposal(x, f, comm)`` (optional) → moves a part of ``proposal`` fitted to ψ² one step, from a batch x and
  f = ψ/√p (kept in the state dict's buffers, so checkpoints and results hold it);
- ``config``: a dataclass with ``kind``, ``dimension``, ``states``, ``centers`` and ``to_dict()``; with the state dict
  it rebuilds the network exactly (saved results and checkpoints).

A kind also says which systems it fits, how it is configured from a system and the solver settings, its default
damping of the natural step, its memory layout and which stored configurations are valid; :func:`register` adds it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch


@dataclass
class Tangents:
    """Factors of the per-sample, per-state Jacobian J_l = ∂f_l(x_i)/∂θ_l, f = ψ·root_w.

    For a linear layer z → zW + b the row of J for (W, b) is (z_i ⊗ g_i, g_i), with g_i = ∂f_l(x_i)/∂(zW + b)_i, so
    J Jᵀ = Σ_layers (Z Zᵀ + 1) ⊙ (G Gᵀ) + Σ_direct D Dᵀ without forming J (D: parameters whose per-sample derivatives
    are given directly, (L, B, P)). When each sample passes the network ``copies`` times (ψ = Φ(x) ± Φ(Px)), the
    layer factors hold every pass stacked on the batch axis and a sample's Jacobian row is the sum over its passes.
    """

    inputs: list[torch.Tensor]                   # z per layer, (L, copies·B, fan_in)
    signals: list[torch.Tensor]                  # g per layer, (L, copies·B, fan_out)
    layer_names: list[tuple[str, str]]           # (weight, bias) parameter names per layer
    direct: dict[str, torch.Tensor] = field(default_factory=dict)   # parameter name -> (L, B, P)
    copies: int = 1

    def fold(self, k: torch.Tensor) -> torch.Tensor:
        """Sum a kernel over the passes of each pair of samples: (L, cB, cB) -> (L, B, B)."""
        n_states, m = k.shape[:2]
        n = m // self.copies
        return k.reshape(n_states, self.copies, n, self.copies, n).sum((1, 3))

    def states(self, index: torch.Tensor) -> "Tangents":
        """The factors of some states only."""
        return Tangents([z[index] for z in self.inputs], [g[index] for g in self.signals], self.layer_names,
                        {k: v[index] for k, v in self.direct.items()}, self.copies)


@runtime_checkable
class Network(Protocol):
    """L trial functions of N particles (see the module docstring)."""

    kind: ClassVar[str]
    config: Any

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def jet(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...

    def tangents(self, x: torch.Tensor, root_w: torch.Tensor) -> Tangents: ...

    def proposal(self, dtype: torch.dtype, fixed_scale: float | None = None): ...

    def extent(self) -> tuple[np.ndarray, np.ndarray] | None: ...

    def symmetry_error(self, x: torch.Tensor, psi: torch.Tensor) -> float | None: ...


@dataclass(frozen=True)
class Layout:
    """What the memory estimate needs of a network: passes per sample (each a row of the Jacobian factors), the
    first layer's input width F, the MLP rows per pass (one per particle where each particle passes alone), the
    rows and width of a pair MLP (one row per particle pair, its jets over the pair's 2d coordinates), and whether
    each row depends on every particle."""

    copies: int
    input_width: int
    rows: int = 1
    pair_rows: int = 0
    pair_width: int = 0
    coupled: bool = False       # each row's jets run over all coordinates (backflow), not its particle's d


@runtime_checkable
class Kind(Protocol):
    """A registered kind of wavefunction: the network class with these class-level members."""

    kind: ClassVar[str]
    config_type: ClassVar[type]
    damping: ClassVar[float]       # default ε of the natural step's B×B solve, relative to the kernel's mean diagonal
    automatic: ClassVar[bool]      # chosen by network = "auto" when it fits
    spin_adapted: ClassVar[bool]   # its states have total spin S = spin/2 by construction (no spin shift needed)

    @classmethod
    def fits(cls, system) -> str | None:
        """None when this kind can represent the system's states, else why not."""

    @classmethod
    def configure(cls, system, cfg) -> Any:
        """The architecture for ``system`` under the solver settings ``cfg`` (``cfg.states`` networks)."""

    @classmethod
    def layout(cls, config) -> Layout: ...

    @classmethod
    def length_unit(cls, config) -> float:
        """The shortest length (bohr) the initial networks resolve (the float-resolution check uses it)."""

    @classmethod
    def check_config(cls, config: dict, system) -> list[str]:
        """The keys of a stored configuration that are out of range or do not fit ``system``."""


KINDS: dict[str, type] = {}


def register(cls: type) -> type:
    """Add a kind of wavefunction (usable as a class decorator); a later registration of the same name replaces it."""
    missing = [name for name in ("kind", "config_type", "damping", "automatic", "spin_adapted", "fits", "configure", "layout",
                                 "check_config", "length_unit", "jet", "tangents", "proposal", "extent", "symmetry_error")
               if not hasattr(cls, name)]
    if missing:
        raise TypeError(f"{cls.__name__} lacks {', '.join(missing)} of the network interface")
    KINDS[cls.kind] = cls
    return cls


def choose(system, setting: str = "auto") -> type:
    """The kind for ``system``: the one named by ``setting``, or with "auto" the first automatic kind that fits.
    ValueError says why none does."""
    if setting != "auto":
        if setting not in KINDS:
            raise ValueError(f"unknown network '{setting}' ({', '.join(['auto', *KINDS])})")
        why = KINDS[setting].fits(system)
        if why is not None:
            raise ValueError(f"network '{setting}' does not fit this system: {why}")
        return KINDS[setting]
    reasons = []
    for cls in KINDS.values():
        if cls.automatic:
            why = cls.fits(system)
            if why is None:
                return cls
            reasons.append(f"{cls.kind}: {why}")
    raise ValueError("no kind of wavefunction fits this system (" + "; ".join(reasons) + ")")


def build(config, generator: torch.Generator | None = None) -> torch.nn.Module:
    """The network of a configuration (its ``kind`` names the class)."""
    return KINDS[config.kind](config, generator)
