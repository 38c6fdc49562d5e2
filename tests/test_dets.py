"""N electrons: the determinant network's antisymmetry and exact jets, Ŝ² on known spin states, the estimator on
exact Slater determinants of non-interacting fermions, and the input rules for N and 2S."""
from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

import qsolver
from qsolver.config import SolverConfig
from qsolver.errors import InputError
from qsolver.estimation import evaluate
from qsolver.hamiltonian import hamiltonian, spin_squared
from qsolver.laplacian import hessian_trace
from qsolver.networks import build, choose
from qsolver.networks.backflow import det_jet
from qsolver.networks.dets import FIT_RANGE, DetsConfig, DeterminantNet, _cofactors
from qsolver.parallel import Comm
from qsolver.references import reference
from qsolver.sampling import GaussianMixture, IndependentElectrons

F64 = torch.float64


def _net(envelope: str, particles: int, spin: int, d: int = 3, k: int = 2, backflow: int = 0) -> DeterminantNet:
    centres = [[0.0] * d, [0.3] + [0.1] * (d - 1)] if envelope == "exponential" else [[0.1] * d]
    per_orbital = len(centres) if envelope == "exponential" else d
    cfg = DetsConfig(dimension=d, states=3, particles=particles, spin=spin, determinants=k, hidden=8, layers=2,
                     activation="tanh", envelope=envelope, centers=centres,
                     cusps=[3.0, 1.0] if envelope == "exponential" else [],
                     init_scales=[[0.6 + 0.05 * i for i in range(k * particles * per_orbital)]] * 3,
                     feature_scales=[1.0, 0.8, 1.2], pair_cusps=[0.5, 0.25], jastrow=5, backflow=backflow)
    net = DeterminantNet(cfg, torch.Generator().manual_seed(0)).double()
    with torch.no_grad():      # non-zero biases and pair-MLP outputs, so that no term vanishes by accident
        for b in [*net.biases, *net.pair_biases, net.pair_weights[-1]]:
            b.normal_(generator=torch.Generator().manual_seed(1))
    return net


CASES = [("exponential", 3, 1, 3), ("gaussian", 3, 1, 2), ("exponential", 4, 0, 3), ("gaussian", 3, 3, 2),
         ("gaussian", 5, 1, 1)]
# with backflow inputs (two inverse lengths): every orbital depends on every electron
BACKFLOW = [("exponential", 4, 0, 3), ("exponential", 5, 1, 3), ("gaussian", 3, 3, 2), ("gaussian", 3, 1, 1)]


@pytest.mark.parametrize("envelope,particles,spin,d,backflow", [c + (0,) for c in CASES] + [c + (2,) for c in BACKFLOW])
def test_antisymmetric_under_every_same_spin_exchange(envelope, particles, spin, d, backflow):
    net = _net(envelope, particles, spin, d, backflow=backflow).requires_grad_(False)
    x = torch.randn(64, particles, d, dtype=F64, generator=torch.Generator().manual_seed(2))
    psi = net(x)
    up = (particles + spin) // 2
    same = [(i, j) for i in range(particles) for j in range(i + 1, particles) if (i < up) == (j < up)]
    for i, j in same:
        order = list(range(particles))
        order[i], order[j] = j, i
        assert (net(x[:, order]) + psi).abs().max() <= 1e-12 * float(psi.abs().max())
    assert psi.abs().max() > 0


@pytest.mark.parametrize("envelope,particles,spin,d,backflow", [c + (0,) for c in CASES] + [c + (2,) for c in BACKFLOW])
def test_jets_through_determinants_equal_torch_func(envelope, particles, spin, d, backflow):
    net = _net(envelope, particles, spin, d, backflow=backflow).requires_grad_(False)
    x = torch.randn(6, particles, d, dtype=F64, generator=torch.Generator().manual_seed(3))
    psi, grad, lap = net.jet(x)
    flat = x.reshape(6, -1)
    assert torch.allclose(psi, net(x), rtol=1e-12, atol=0)
    exact_lap = hessian_trace(lambda z: net(z.reshape(-1, particles, d)), flat)
    exact_grad = torch.func.vmap(torch.func.jacrev(lambda z: net(z.reshape(1, particles, d))[0]))(flat)
    assert torch.allclose(lap, exact_lap, rtol=0, atol=1e-10 * float(exact_lap.abs().max()))
    assert torch.allclose(grad, exact_grad, rtol=0, atol=1e-10 * float(exact_grad.abs().max()))


def test_cofactors_stay_exact_at_singular_matrices():
    a = torch.randn(5, 3, 3, dtype=F64, generator=torch.Generator().manual_seed(4))
    expected = torch.linalg.det(a)[:, None, None] * torch.linalg.inv(a).transpose(1, 2)
    assert torch.allclose(_cofactors(a), expected, atol=1e-12)
    singular = a.clone()
    singular[:, 2] = singular[:, 0]                               # two equal rows: det 0, cofactors finite
    c = _cofactors(singular)
    assert torch.isfinite(c).all()
    # Laplace expansion along the repeated row gives det = 0 and along another row the same
    assert torch.allclose((singular * c).sum(-1), torch.zeros(5, 3, dtype=F64), atol=1e-12)
    # column 1's cofactors by the 2×2 minors that skip it (the explicit formula for one entry)
    minor = singular[:, [1, 2]][:, :, [1, 2]]
    assert torch.allclose(c[:, 0, 0], torch.linalg.det(minor), atol=1e-12)


def test_determinant_jets_stay_exact_where_every_entry_moves_and_the_matrix_is_singular():
    """det_jet against torch.func for A(z) whose entries all depend on every coordinate, at regular points and at
    points where A has two equal rows (det 0, its derivatives not)."""
    gen = torch.Generator().manual_seed(11)
    coeff = torch.randn(3, 3, 4, dtype=F64, generator=gen)
    curv = torch.randn(3, 3, 4, 4, dtype=F64, generator=gen)

    def matrix(z: torch.Tensor) -> torch.Tensor:        # quadratic entries of z (4,)
        return (coeff * z).sum(-1) + 0.3 * torch.einsum("ijab,a,b->ij", curv, z, z) + torch.eye(3, dtype=F64)

    points = torch.randn(5, 4, dtype=F64, generator=gen)
    a, grad, lap = [], [], []
    for z in points:
        a.append(matrix(z))
        grad.append(torch.func.jacfwd(matrix)(z).permute(2, 0, 1))                 # (D, n, n)
        lap.append(torch.func.hessian(matrix)(z).diagonal(dim1=-2, dim2=-1).sum(-1))
    a, grad, lap = torch.stack(a), torch.stack(grad), torch.stack(lap)
    # A(z) - (row 2 - row 0 at the point) e_2ᵀ: rows 0 and 2 equal at the point only (det 0 there, its slopes not)
    shift = torch.zeros_like(a)
    shift[3:, 2] = a[3:, 2] - a[3:, 0]
    det, first, second = det_jet(a - shift, grad, lap)
    for b in range(5):
        def det_of(z, b=b):
            return torch.linalg.det(matrix(z) - shift[b])
        assert torch.allclose(det[b], det_of(points[b]), atol=1e-12)
        assert torch.allclose(first[b], torch.func.grad(det_of)(points[b]), atol=1e-10)
        assert torch.allclose(second[b], torch.func.hessian(det_of)(points[b]).trace(), atol=1e-10)
    assert det[3:].abs().max() < 1e-12 and first[3:].abs().min() > 1e-3 and second[3:].abs().min() > 1e-3


def test_backflow_orbitals_of_one_electron_follow_the_others():
    """Without backflow an orbital at electron 0 ignores where electron 1 is; with it, it does (and the jets
    above check its derivatives)."""
    x = torch.randn(4, 4, 3, dtype=F64, generator=torch.Generator().manual_seed(12))
    moved = x.clone()
    moved[:, 1] += 0.5
    for backflow, changes in ((0, False), (2, True)):
        net = _net("exponential", 4, 0, backflow=backflow).requires_grad_(False)
        phi, phi_moved = net._orbitals(x, net.log_scale[:, None, :]), net._orbitals(moved, net.log_scale[:, None, :])
        assert bool((phi[:, :, 0] - phi_moved[:, :, 0]).abs().max() > 1e-6) == changes


def _orbitals(x: torch.Tensor) -> list[torch.Tensor]:
    """The 2D oscillator's lowest orbitals (ω = 1, κ = ½) at points (..., 2): h00, h10, h01 (unnormalised)."""
    g = torch.exp(-0.5 * (x**2).sum(-1))
    return [g, x[..., 0] * g, x[..., 1] * g]


def _det2(a: torch.Tensor, b: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    return a(x1) * b(x2) - b(x1) * a(x2)


class ExactStates(nn.Module):
    """Exact eigenstates of three non-interacting fermions in the 2D oscillator, electrons 1, 2 up and 3 down
    (ω = 1, κ = ½; E of an occupation = Σ (n_x + n_y + 1)): two doublets at 4 (0² 1x, 0² 1y), the doublet
    ab|c - bc|a of 0 1x 1y at 5 and, as a fourth state, the quartet det[0, 1x, 1y] at 5."""

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(states=4)
        self.register_buffer("scale", torch.ones(1, dtype=F64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = [lambda p, k=k: _orbitals(p)[k] for k in range(3)]
        x1, x2, x3 = x[:, 0], x[:, 1], x[:, 2]
        ab_c = _det2(o[0], o[1], x1, x2) * o[2](x3)
        bc_a = _det2(o[1], o[2], x1, x2) * o[0](x3)
        ca_b = _det2(o[2], o[0], x1, x2) * o[1](x3)
        return torch.stack([_det2(o[0], o[1], x1, x2) * o[0](x3), _det2(o[0], o[2], x1, x2) * o[0](x3),
                            ab_c - bc_a, ab_c + bc_a + ca_b], -1) * self.scale

    def proposal(self, dtype, fixed_scale=None):
        # each orbital squared is at most a Gaussian of variance ½ times a polynomial: σ = 1 keeps ψ²/p bounded
        return IndependentElectrons(GaussianMixture(torch.zeros(1, 2, dtype=dtype), torch.ones(1, 2, dtype=dtype)), 3)

    def symmetry_error(self, x, psi):
        return None


def test_spin_squared_of_known_spin_states():
    # Ŝ² acts on the spatial function with fixed labels; pointwise Ŝ²ψ = S(S+1) ψ for a state of total spin S
    model = ExactStates()
    x = torch.randn(50, 3, 2, dtype=F64, generator=torch.Generator().manual_seed(5))
    psi = model(x)
    s2 = spin_squared((2, 1))(model, x, psi)
    for state, s in ((0, 0.5), (1, 0.5), (2, 0.5), (3, 1.5)):
        assert torch.allclose(s2[:, state], s * (s + 1) * psi[:, state], atol=1e-12 * float(psi[:, state].abs().max()))
    # two electrons of opposite spin: Ŝ² = 1 - P_12 gives 0 on symmetric and 2 on antisymmetric functions
    pair = torch.randn(40, 2, 2, dtype=F64, generator=torch.Generator().manual_seed(6))
    o = _orbitals(pair[:, 0]), _orbitals(pair[:, 1])

    class Pair(nn.Module):
        def forward(self, y):
            a, b = _orbitals(y[:, 0]), _orbitals(y[:, 1])
            return torch.stack([a[0] * b[1] + a[1] * b[0], a[0] * b[1] - a[1] * b[0]], -1)

    values = Pair()(pair)
    s2 = spin_squared((1, 1))(Pair(), pair, values)
    assert torch.allclose(s2, values * torch.tensor([0.0, 2.0], dtype=F64), atol=1e-12)
    assert o[0][0].shape == (40,)


def test_estimator_is_unbiased_on_non_interacting_slater_determinants():
    """Rayleigh–Ritz on exact eigenstates under the independent-electron proposal: Hψ = Eψ pointwise, so only the
    overlaps' sampling noise remains (Ritz symmetrises H = S diag(E)): every level within 5 of its jackknife errors,
    which are themselves small, and ⟨Ŝ²⟩ that of each state."""
    system = qsolver.load_system("fermions_2d")
    exact = reference(system, 3).energies                            # 4, 4, 5 from the closed form
    np.testing.assert_allclose(exact, [4.0, 4.0, 5.0])
    cfg = SolverConfig(states=4, eval_samples=20000, eval_blocks=10, laplacian="hessian")
    for shift, spins in ((0.0, None), (0.5, [0.75] * 3 + [3.75])):
        out = evaluate(ExactStates(), system, cfg, torch.Generator().manual_seed(7), F64, hamiltonian(system, shift))
        stat = out["diagnostics"]["stat_errors"]
        # ⟨H⟩ of every state, the quartet's too: the shift orders the states but is not part of their energy
        levels = [4.0, 4.0, 5.0, 5.0]
        assert np.all(np.abs(out["energies"] - levels) < 5 * stat + 1e-12) and stat.max() < 1e-3, out["energies"]
        s2 = out["diagnostics"]["spin_squared"]
        assert np.all(np.abs(s2[:2] - 0.75) < 1e-3)                  # the two doublets at 4
        if spins is None:
            # doublet and quartet at 5 mix in their common level; the trace over it, 3/4 + 15/4, does not
            assert abs(s2[2:].sum() - 4.5) < 1e-2
        else:
            # the shift λ(15/4 - 3/4) lifts the quartet (only it) and separates the spins
            assert np.all(np.abs(s2 - spins) < 1e-2), s2
            # the shifted operator's Ritz values: the quartet 5 + λ(15/4 - 3/4) = 6.5
            np.testing.assert_allclose(out["diagnostics"]["spin_penalty"], [0, 0, 0, 1.5], atol=1e-2)
        assert np.all(out["diagnostics"]["ess_fraction"] > 0.05)     # the proposal covers every state


class Contaminated(ExactStates):
    """The two doublets at 4 and the doublet at 5 with an admixture of the quartet at the same level: three states,
    so that the span cannot separate the spins."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        psi = super().forward(x)
        return torch.stack([psi[:, 0], psi[:, 1], psi[:, 2] + 0.1 * psi[:, 3]], -1)


def test_a_state_holding_another_spin_is_reported_at_its_energy_not_its_shifted_one():
    """The third state is ε-quartet at the doublet's level, H ψ = 5 ψ pointwise: its ⟨H⟩ is 5 whatever ε, while the
    shifted operator's Ritz value is 5 + λ(⟨Ŝ²⟩ - 3/4) > 5; the energy is the former, within its jackknife error, and
    the penalty equals λ(⟨Ŝ²⟩ - 3/4) from the measured spin."""
    system = qsolver.load_system("fermions_2d")
    cfg = SolverConfig(states=3, eval_samples=20000, eval_blocks=10, laplacian="hessian")
    shift = 1.0
    model = Contaminated()
    model.config = SimpleNamespace(states=3)
    out = evaluate(model, system, cfg, torch.Generator().manual_seed(8), F64, hamiltonian(system, shift))
    diag = out["diagnostics"]
    assert np.all(np.abs(out["energies"] - [4.0, 4.0, 5.0]) < 5 * diag["stat_errors"] + 1e-12), out["energies"]
    excess = diag["spin_squared"][2] - 0.75
    assert excess > 1e-3                                     # the state holds a measurable share of the quartet
    np.testing.assert_allclose(diag["spin_penalty"], shift * (diag["spin_squared"] - 0.75), atol=1e-10)
    assert diag["spin_penalty"][2] > 20 * diag["stat_errors"][2]     # reporting the Ritz value would be this far off


def test_kinds_are_chosen_by_particle_count_and_the_shift_by_spin_adaptation():
    assert choose(qsolver.load_system("harmonic_2d")).kind == "one"
    assert choose(qsolver.load_system("helium_singlet")).kind == "pair"
    fermions = qsolver.load_system("fermions_2d")
    assert choose(fermions).kind == "dets"
    model = build(choose(fermions).configure(fermions, SolverConfig(states=3)))
    x = model.proposal(F64).sample(16, torch.Generator().manual_seed(8))
    assert x.shape == (16, 3, 2)
    problem = qsolver.training.make_problem(fermions, qsolver.solver.resolve_config(fermions, states=3))
    assert len(problem.hamiltonian.operators) == 1                   # λ(Ŝ² - S(S+1)) for a network with labels
    pair = qsolver.load_system("helium_singlet")
    assert not qsolver.training.make_problem(pair, qsolver.solver.resolve_config(pair)).hamiltonian.operators


@pytest.mark.parametrize("kwargs,field", [
    (dict(particles=3, spin=0), "spin"),              # parity
    (dict(particles=3, spin=5), "spin"),              # 2S > N
    (dict(particles=11), "particles"),
])
def test_impossible_spins_and_counts_name_the_field(kwargs, field):
    with pytest.raises(InputError) as err:
        qsolver.System("f", 2, {"kind": "harmonic", "omega": 1.0}, interaction={"kind": "none"}, **kwargs)
    assert err.value.field == field


def test_molecules_hold_any_electron_count_up_to_the_limit():
    lithium = qsolver.System("li", 3, None, molecule={"atoms": [["Li", [0, 0, 0]]], "unit": "bohr"},
                             reference="none")
    assert (lithium.particles, lithium.spin, lithium.spin_sector) == (3, 1, (2, 1))
    with pytest.raises(InputError) as err:
        qsolver.System("be", 3, None, molecule={"atoms": [["Be", [0, 0, 0]]], "unit": "bohr", "spin": 1})
    assert err.value.field == "molecule.spin"


def test_fermion_levels_count_spin_multiplets():
    from qsolver.references.analytic import fermion_levels

    one = np.array([1.0, 2, 2, 3, 3, 3, 4, 4, 4, 4])                 # the 2D oscillator's orbitals
    # three fermions: doublets 4 (×2) and 5 (×7: 0 1 1' twice, 0² 2 thrice, 0 1² twice); the quartet 0 1 1' at 5
    np.testing.assert_allclose(fermion_levels(one, 3, 1, 9), [4, 4] + [5] * 7)
    np.testing.assert_allclose(fermion_levels(one, 3, 3, 1), [5])
    # two fermions: singlets 2, 3, 3 and triplets 3, 3 (the closed shells have no triplet)
    np.testing.assert_allclose(fermion_levels(one, 2, 0, 3), [2, 3, 3])
    np.testing.assert_allclose(fermion_levels(one, 2, 2, 2), [3, 3])
    assert math.comb(3, 2) - math.comb(3, 3) == 2                     # two doublets from three open shells


def test_a_determinant_run_saves_reloads_and_validates(tmp_path):
    system = qsolver.load_system("fermions_2d")
    result = qsolver.solve(system, n_states=2, steps=5, seed=0, progress=False, eval_samples=2000, eval_blocks=10,
                           threads=1)
    assert result.config["network"] == "auto" and type(result.model).kind == "dets"
    assert len(result.diagnostics["spin_squared"]) == 2 and len(result.diagnostics["spin_squared_errors"]) == 2
    loaded = qsolver.load_result(qsolver.save_result(result, tmp_path / "f.h5"))
    x = np.random.default_rng(0).normal(size=(5, 3, 2))
    np.testing.assert_array_equal(loaded.wavefunctions(x), result.wavefunctions(x))
    assert not result.model.config.fitted         # a trap samples its envelopes' products alone
    table = qsolver.validate(loaded)
    assert [row["spin"] for row in table.states] == ["doublet", "doublet"]


def test_the_fitted_proposal_moves_towards_psi_squared():
    # four electrons around two centres whose orbital and pair MLPs reshape ψ away from the envelopes: the
    # envelopes' slot products alone leave effective sample fractions of 0.025-0.045; 200 steps of the fit on
    # batches of 256 drawn from the blend raise the worst state's more than twofold (to 0.087 with these seeds)
    base = _net("exponential", 4, 0)
    net = DeterminantNet(dataclasses.replace(base.config, fitted=True)).double()
    net.load_state_dict(base.state_dict(), strict=False)

    def worst_fraction(p) -> float:
        x = p.sample(20_000, torch.Generator().manual_seed(5))
        with torch.no_grad():
            w = net(x) ** 2 * torch.exp(-p.log_prob(x))[:, None]
        return float((w.sum(0) ** 2 / (w**2).sum(0) / len(x)).min())

    x = net.proposal(F64).sample(100, torch.Generator().manual_seed(4))    # the fitted part starts as the envelopes'
    torch.testing.assert_close(net.proposal(F64).log_prob(x), net._envelope_proposal(F64).log_prob(x))
    before = worst_fraction(net._envelope_proposal(F64))
    g = torch.Generator().manual_seed(3)
    for _ in range(200):
        p = net.proposal(F64)
        x = p.sample(256, g)
        with torch.no_grad():
            f = net(x) * torch.exp(-0.5 * p.log_prob(x))[:, None]
        net.fit_proposal(x, f, Comm())
    assert worst_fraction(net.proposal(F64)) > 2 * before
    assert all(float(t.abs().max()) <= FIT_RANGE for t in net._fit_buffers())


def test_the_fitted_proposal_is_trained_saved_and_reloaded(tmp_path):
    system = qsolver.load_system("lithium")
    result = qsolver.solve(system, n_states=2, steps=5, seed=0, progress=False, eval_samples=2000, eval_blocks=10,
                           threads=1)
    assert result.model.config.fitted and float(result.model.fit_scales.abs().max()) > 0      # it moved
    loaded = qsolver.load_result(qsolver.save_result(result, tmp_path / "li.h5"))
    x = result.model.proposal(F64).sample(50, torch.Generator().manual_seed(0))
    assert torch.equal(loaded.model.proposal(F64).log_prob(x), result.model.proposal(F64).log_prob(x))


def test_many_electron_fci_agrees_with_pyscf_and_with_the_pair_space():
    """The determinant route of the PySCF reference: Li's doublets in cc-pVDZ equal PySCF's own FCI from ROHF
    orbitals filtered by ⟨S²⟩ (an independent path: other orbitals, PySCF's solver), and for two electrons the
    route equals the spin-adapted pair space (singlets and triplets), both to 1e-9 hartree."""
    from pyscf import fci, gto, scf

    from qsolver.references.pyscf import fci_levels, many_electron_levels, system_molecule

    li = qsolver.System("li", 3, None, molecule={"atoms": [["Li", [0, 0, 0]]], "unit": "bohr"}, reference="none")
    ours = many_electron_levels(system_molecule(li), 0.5, "cc-pvdz", 3, 1)["energies"]
    mol = gto.M(atom="Li 0 0 0", unit="bohr", basis="cc-pvdz", spin=1, verbose=0)
    solver = fci.FCI(scf.ROHF(mol).run())
    solver.nroots = 8
    energies, vectors = solver.kernel()
    doublets = [e for e, c in zip(energies, vectors) if fci.spin_op.spin_square0(c, mol.nao, mol.nelec)[0] < 1.5]
    np.testing.assert_allclose(ours, doublets[:3], atol=1e-9)
    for spin in (0, 2):
        helium = qsolver.System("he", 3, None, molecule={"atoms": [["He", [0, 0, 0]]], "unit": "bohr", "spin": spin},
                                reference="none")
        nuclei = system_molecule(helium)
        np.testing.assert_allclose(many_electron_levels(nuclei, 0.5, "aug-cc-pvdz", 4, spin)["energies"],
                                   fci_levels(nuclei, 0.5, "aug-cc-pvdz", 4, spin)["energies"], atol=1e-9)


def test_pair_correlation_leaves_the_cusps_to_the_cusp_factor():
    """ln J has a kink of slope γ in r_ij where two electrons meet (Kato: ½ antiparallel, ¼ parallel in 3D) and none
    at a nucleus; the pair MLP u is smooth there (features in ρ(t) = t²/(1 + t)), so the kinks, measured as the
    second difference (f(+h) + f(-h) - 2 f(0))/h → 2 × slope, are those of the cusp factor alone."""
    net = _net("exponential", 3, 1, 3).requires_grad_(False)
    base = torch.tensor([[[0.4, -0.2, 0.3], [-0.7, 0.2, 0.5], [-0.5, 0.6, 0.1]]], dtype=F64)   # 0, 1: up; 2: down
    direction = torch.tensor([0.6, 0.0, 0.8], dtype=F64)
    h = 1e-5

    def kink(moved: int, point: torch.Tensor) -> torch.Tensor:
        values = []
        for step in (h, -h, 0.0):
            x = base.clone()
            x[0, moved] = point + step * direction
            values.append(net._log_jastrow(x, False)[:, 0])
        return (values[0] + values[1] - 2 * values[2]) / h

    anti, parallel = net.config.pair_cusps
    assert torch.allclose(kink(1, base[0, 0]), torch.full((3,), 2 * parallel, dtype=F64), atol=1e-3)
    assert torch.allclose(kink(2, base[0, 0]), torch.full((3,), 2 * anti, dtype=F64), atol=1e-3)
    nucleus = torch.tensor(net.config.centers[0], dtype=F64)
    assert kink(2, nucleus).abs().max() < 1e-3
    assert net.pair_weights[-1].abs().max() > 0           # the MLP takes part


@pytest.mark.parametrize("envelope,particles,spin,d,backflow", [c + (0,) for c in CASES[:3]] + [BACKFLOW[0] + (2,)])
def test_tangents_equal_torch_func_per_sample_jacobians(envelope, particles, spin, d, backflow):
    """The natural step's Jacobians from one backward pass (row sums per MLP layer, per-sample log-scales) against
    torch.func's per-sample gradients of f = ψ·root_w by every parameter."""
    from qsolver.networks.mlp import jacobian_tangents

    net = _net(envelope, particles, spin, d, backflow=backflow)
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(9, particles, d, dtype=F64, generator=gen)
    root_w = torch.rand(9, 1, dtype=F64, generator=gen) + 0.5
    mine, exact = net.tangents(x, root_w).direct, jacobian_tangents(net, x, root_w).direct
    assert set(mine) == set(exact) == {name for name, _ in net.named_parameters()}
    for name, block in exact.items():
        assert torch.allclose(mine[name], block, rtol=0, atol=1e-12 * float(block.abs().max())), name
