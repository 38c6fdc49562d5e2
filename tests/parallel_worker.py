"""Run by tests/test_parallel.py under torchrun: one solve on this process group, parameters saved by rank 0."""
import sys

import numpy as np
import torch.distributed as dist

import qsolver
from qsolver.parallel import current, leave


def main(name: str, out: str, slice_samples: str) -> None:
    dist.init_process_group("gloo")
    comm = current(slice_samples=slice_samples == "slice")
    result = qsolver.solve(qsolver.load_system(name), steps=20, dtype="float64", eval_samples=2000, eval_blocks=10,
                           progress=False, threads=1, comm=comm)
    if comm.is_root:
        params = np.concatenate([p.detach().reshape(-1).numpy() for p in result.model.parameters()])
        np.savez(out, params=params, energies=result.energies, world=result.diagnostics["world"])
    leave()


if __name__ == "__main__":
    main(*sys.argv[1:])
