"""HDF5 export and reload of results (h5py; no pickle).

Layout: root attributes (format, version, units, Hamiltonian convention, κ); ``system`` (definition as
JSON); ``energies``, ``errors`` (hartree), ``coefficients`` (Ritz vectors); ``reference`` (levels, method,
error bound) when the caller passes one (``qsolver solve`` passes the system's own); ``history/*``; ``model/*`` (every weight as a plain dataset, architecture
as JSON); ``grid/*`` (one particle, d ≤ 3: the states sampled on a regular grid: axes in bohr, values in
bohr^(-d/2)); ``observables/*`` (two particles: one-particle densities on a grid of cells for d ≤ 3 and the
distributions of the inter-particle distance, with standard errors; no full 2d-dimensional grid). Files are written to a temporary name and renamed, so a failed write leaves nothing behind.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import torch

from .errors import InputError
from .files import atomic_write
from .model import EigenNet, ModelConfig
from .pairnet import PairConfig, PairNet
from .references.base import Reference
from .result import Result
from .system import system_from_dict
from .version import __version__

FORMAT = "qsolver-result"
FORMAT_VERSION = 1
GRID_POINTS = {1: 1024, 2: 128, 3: 32}


def sample_grid(result: Result) -> tuple[list[np.ndarray], np.ndarray]:
    """Axes and values (n_states, n_1, ..., n_d) of the states on a regular grid over ``result.extent()``."""
    d = result.system.dimension
    lo, hi = result.extent()
    axes = [np.linspace(lo[i], hi[i], GRID_POINTS[d]) for i in range(d)]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
    values = result.wavefunctions(mesh).T.reshape(result.n_states, *[len(a) for a in axes])
    return axes, values


def save_result(result: Result, path: str | Path, reference: Reference | None = None) -> Path:
    """Write ``result`` to an HDF5 file at ``path`` (atomically), with ``reference`` (levels, method, error) when
    given; saving never computes a reference."""

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "qsolver_version": __version__,
                            "units": "hartree atomic units: energies in hartree, lengths in bohr",
                            "hamiltonian": "H = -kappa * laplacian + V(x)", "kinetic": result.system.kinetic,
                            "system_name": result.system.name})
            f.create_dataset("system", data=result.system.to_json())
            f["energies"] = np.asarray(result.energies, dtype=np.float64)
            f["errors"] = np.asarray(result.errors, dtype=np.float64)
            f["coefficients"] = np.asarray(result.coefficients, dtype=np.float64)
            f.attrs["config"] = json.dumps(result.config)
            f.attrs["diagnostics"] = json.dumps({k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                                 for k, v in result.diagnostics.items()})
            hist = f.create_group("history")
            for key, value in result.history.items():
                hist[key] = np.asarray(value)
            model = f.create_group("model")
            model.attrs["config"] = json.dumps(result.model.config.to_dict())
            for key, value in result.model.state_dict().items():
                model[key] = value.detach().cpu().to(torch.float64).numpy()
            if reference is not None:
                group = f.create_group("reference")
                group["energies"] = reference.energies
                group.attrs.update({"method": reference.method, "error": reference.error})
            if result.observables:
                group = f.create_group("observables")
                group.attrs["units"] = ("density: bohr^-d per cell (integrates to 2), distance: bohr^-1 per bin "
                                        "(integrates to 1); *_error: standard errors over independent batches")
                for key, value in result.observables.items():
                    if key == "density_edges":
                        for axis, edges in zip("xyz", value):
                            group[f"density_edges_{axis}"] = edges
                    else:
                        group.create_dataset(key, data=np.asarray(value, dtype=np.float64 if "edges" in key
                                                                  else np.float32), compression="gzip")
            if result.system.dimension <= 3 and result.system.particles == 1:
                axes, values = sample_grid(result)
                grid = f.create_group("grid")
                for name, axis in zip("xyz", axes):
                    grid[name] = axis
                grid.create_dataset("values", data=values.astype(np.float32), compression="gzip")

    return atomic_write(path, write)


def load_result(path: str | Path, device: str | torch.device = "cpu") -> Result:
    """Read a result written by :func:`save_result`; wavefunctions are rebuilt from the stored weights, as a
    float64 model on ``device``."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", source=str(path))
    if not h5py.is_hdf5(path):
        raise InputError("not an HDF5 file", source=str(path))
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise InputError("not a qsolver result (attribute 'format' missing)", source=str(path),
                                 field="format")
            system_data = json.loads(f["system"][()])
            system = system_from_dict(system_data, source=str(path), stored=True)
            config = json.loads(f["model"].attrs["config"])
            model = PairNet(PairConfig(**config)) if config.get("kind") == "pair" else EigenNet(ModelConfig(**config))
            state = {key: torch.from_numpy(np.asarray(f["model"][key])) for key in model.state_dict()}
            model.load_state_dict(state)
            history = {key: np.asarray(f["history"][key]) for key in f["history"]}
            observables = {}
            if "observables" in f:
                group = f["observables"]
                edges = [np.asarray(group[f"density_edges_{a}"]) for a in "xyz" if f"density_edges_{a}" in group]
                observables = {key: np.asarray(group[key], dtype=np.float64) for key in group
                               if not key.startswith("density_edges_")}
                if edges:
                    observables["density_edges"] = edges
            result = Result(system=system, energies=np.asarray(f["energies"]), errors=np.asarray(f["errors"]),
                            model=model.to(torch.float64), coefficients=np.asarray(f["coefficients"]),
                            config=json.loads(f.attrs["config"]), history=history,
                            diagnostics=json.loads(f.attrs["diagnostics"]), observables=observables)
    except InputError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:  # damaged or incomplete file
        raise InputError(f"damaged or incomplete qsolver result ({exc})", source=str(path)) from None
    result.model.to(device)    # outside the try: a device this machine lacks is not a damaged file
    return result
