"""Two particles: exchange symmetry, exact Laplacians, pair energies, cusps, the trap spectrum and bad input."""
import math

import h5py
import numpy as np
import pytest
import torch
from torch.func import functional_call, jacrev

import qsolver
import qsolver.cli
from qsolver.errors import InputError
from qsolver.hamiltonian import hamiltonian
from qsolver.laplacian import hessian_trace
from qsolver.natural import kernel, pull_back
from qsolver.networks import build
from qsolver.networks.pair import PairConfig, PairNet
from qsolver.references.trap import trap_levels
from qsolver.sampling import ExponentialMixture, GaussianMixture, PairMixture
from qsolver.threshold import continuum_threshold
from qsolver.validate import state_status, validate

HELIUM = {"kind": "coulomb", "charges": [2.0], "centers": [[0.0, 0.0, 0.0]]}


def _net(envelope: str, exchange: int, d: int = 3, states: int = 3, pair_cusp: float = 0.5, seed: int = 1):
    lengths = []
    if envelope == "exponential":
        centers, cusps = [[0.0] * d, [0.0] * (d - 1) + [1.4]], [2.0, 1.0]
        scales = [[[1.5, 1.0], [0.5, 0.7]]] * states
    elif envelope == "box":
        centers, cusps, scales, lengths = [[0.2] + [0.0] * (d - 1)], [], [], [3.0 + i for i in range(d)]
    else:
        centers, cusps = [[0.1] + [0.0] * (d - 1)], []
        scales = [[[1.0 + 0.2 * i for i in range(d)], [0.3 + 0.1 * i for i in range(d)]]] * states
    cfg = PairConfig(d, states, 12, 2, "tanh", envelope, centers, cusps, scales, [[1.0, 0.5, 0.7]] * states,
                     exchange, pair_cusp, lengths=lengths)
    net = PairNet(cfg, torch.Generator().manual_seed(seed)).double()
    with torch.no_grad():                       # non-zero biases, so that no term vanishes by accident
        for b in net.biases:
            b.normal_(generator=torch.Generator().manual_seed(seed + 1))
    return net


@pytest.mark.parametrize("envelope", ["exponential", "gaussian"])
@pytest.mark.parametrize("exchange", [1, -1])
def test_exchange_symmetry_is_exact(envelope, exchange):
    net = _net(envelope, exchange)
    x = torch.randn(200, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    psi, swapped = net(x), net(x.flip(1))
    # ψ(x2, x1) = ±ψ(x1, x2) by construction: only rounding of a sum of two terms remains
    assert (psi - exchange * swapped).abs().max() <= 1e-12 * psi.abs().max()
    assert psi.abs().max() > 0


@pytest.mark.parametrize("envelope,exchange,d", [("exponential", 1, 3), ("exponential", -1, 2),
                                                 ("gaussian", 1, 1), ("gaussian", -1, 3), ("box", -1, 2)])
def test_forward_laplacian_equals_hessian_trace(envelope, exchange, d):
    net = _net(envelope, exchange, d=d, pair_cusp=0.5 if d > 1 else 0.0)
    x = torch.randn(9, 2, d, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    if envelope == "box":                     # inside the walls
        x = 0.2 + torch.rand(9, 2, d, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) - 0.5
    value, grad, lap = net.jet(x)
    flat = x.reshape(9, -1)
    reference = hessian_trace(lambda z: net(z.reshape(-1, 2, d)), flat)
    jac = torch.func.vmap(torch.func.jacrev(lambda p: net(p.reshape(1, 2, d))[0]))(flat)
    assert torch.allclose(value, net(x), rtol=0, atol=1e-14)
    assert torch.allclose(grad, jac, rtol=1e-10, atol=1e-12)
    assert torch.allclose(lap, reference, rtol=1e-10, atol=1e-11)


def _constant_network(net: PairNet) -> PairNet:
    """Set the MLP to g = 1 (zero weights, last bias 1), so that ψ is the symmetrised envelope product."""
    with torch.no_grad():
        for w in net.weights:
            w.zero_()
        for b in net.biases:
            b.zero_()
        net.biases[-1].fill_(1.0)
    return net


def test_laplacian_of_a_closed_form_pair_function():
    # ψ = 2 exp(-k r1 - k r2) (decay = cusp k, no Jastrow): ∇²ψ = ψ [2k² - k(d-1)(1/r1 + 1/r2)], d = 3
    k = 2.0
    cfg = PairConfig(3, 1, 8, 2, "tanh", "exponential", [[0.0, 0.0, 0.0]], [k], [[[k], [k]]], [[1.0, 1.0, 1.0]], 1,
                     0.0)
    net = _constant_network(PairNet(cfg).double())
    x = torch.randn(50, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    psi, _, lap = net.jet(x)
    r1, r2 = x[:, 0].norm(dim=-1), x[:, 1].norm(dim=-1)
    exact_psi = 2 * torch.exp(-k * (r1 + r2))
    exact_lap = exact_psi * (2 * k**2 - 2 * k * (1 / r1 + 1 / r2))
    assert torch.allclose(psi[:, 0], exact_psi, rtol=1e-13)
    assert torch.allclose(lap[:, 0], exact_lap, rtol=1e-11)
    # a Gaussian pair in 2D: ψ = 2 exp(-½β(|x1|² + |x2|²)), ∇²ψ = ψ (β²(|x1|² + |x2|²) - 2dβ)
    beta = 0.7
    cfg = PairConfig(2, 1, 8, 2, "tanh", "gaussian", [[0.0, 0.0]], [], [[[beta] * 2, [beta] * 2]], [[1.0] * 3], 1,
                     0.0)
    net = _constant_network(PairNet(cfg).double())
    x = torch.randn(50, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    psi, _, lap = net.jet(x)
    rr = (x**2).sum((1, 2))
    assert torch.allclose(lap[:, 0], psi[:, 0] * (beta**2 * rr - 4 * beta), rtol=1e-11)


def _local_energies(net, system, distances):
    """H ψ/ψ of state 0 with electron 1 at distance ε from the nucleus, and with it at ε from electron 2."""
    h = hamiltonian(system)
    base = torch.tensor([[0.0, 0.0, 0.0], [0.9, -0.4, 0.3]], dtype=torch.float64)
    out = []
    for eps in distances:
        near_nucleus, near_pair = base.clone(), base.clone()
        near_nucleus[0] = torch.tensor([eps, 0.0, 0.0])
        near_pair[0] = base[1] + torch.tensor([0.0, eps, 0.0])
        psi, h_psi = h.apply(net, torch.stack([near_nucleus, near_pair]))
        out.append((h_psi / psi)[:, 0])
    return torch.stack(out)


def test_cusps_cancel_the_coulomb_singularities():
    # Kato: with the exact cusps the local energy Hψ/ψ stays finite as an electron meets the nucleus or the other
    # electron, although the potential there grows like 1/ε (here up to 1e8 hartree)
    system = qsolver.System("he", 3, HELIUM, particles=2, spin=0, reference="none")
    cfg = qsolver.solver.resolve_config(system, states=1)
    config = PairNet.configure(system, cfg)
    net = build(config, torch.Generator().manual_seed(0)).double()
    local = _local_energies(net, system, (1e-4, 1e-6, 1e-8))
    assert (local[-1] - local[0]).abs().max() < 1e-2 * (1 + local[0].abs().max())
    # control: without the pair cusp the local energy at r_12 = ε carries the uncancelled 1/ε
    config.pair_cusp = 0.0
    bare = build(config, torch.Generator().manual_seed(0)).double()
    local = _local_energies(bare, system, (1e-4, 1e-8))
    assert abs(local[1, 1] - local[0, 1]) > 1e6


def test_triplet_cusp_is_the_quarter_rule():
    triplet = qsolver.System("he", 3, HELIUM, particles=2, spin=2, reference="none")
    singlet = qsolver.System("he", 3, HELIUM, particles=2, spin=0, reference="none")
    for system, slope in ((singlet, 0.5), (triplet, 0.25)):
        cfg = qsolver.solver.resolve_config(system, states=1)
        assert PairNet.configure(system, cfg).pair_cusp == pytest.approx(slope)


def test_natural_step_kernel_and_pull_back_match_the_explicit_jacobian():
    net = _net("exponential", -1, d=2)
    x = torch.randn(6, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    root_w = torch.rand(6, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(6)) + 0.5
    t = net.tangents(x, root_w)
    params = dict(net.named_parameters())
    jac = jacrev(lambda p: functional_call(net, p, (x,)) * root_w)(params)
    explicit = torch.zeros(3, 6, 6, dtype=torch.float64)
    coef = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    updates = pull_back(t, coef)
    for name, j in jac.items():
        for state in range(3):
            rows = j[:, state, state].reshape(6, -1)
            explicit[state] += rows @ rows.T
            assert torch.allclose(updates[name][state].reshape(-1), rows.T @ coef[state], atol=1e-14)
    assert torch.allclose(kernel(t), explicit, rtol=1e-12, atol=1e-16)


def test_electron_repulsion_of_two_1s_electrons():
    # ⟨1s² | 1/r12 | 1s²⟩ = 5Z/8 for hydrogen-like 1s orbitals of charge Z (closed form). x ~ ψ² exactly:
    # each electron's density Z³/π e^{-2Zr} is the radial exponential density of scale 1/(2Z).
    z = 2.0
    system = qsolver.System("he", 3, HELIUM, particles=2, spin=0, reference="none")
    proposal = PairMixture(torch.zeros(1, 3, dtype=torch.float64), torch.full((1, 2), 1 / (2 * z), dtype=torch.float64))
    x = proposal.sample(400_000, torch.Generator().manual_seed(8))
    v = hamiltonian(system).potential(x)
    nuclear = -z * (1 / x[:, 0].norm(dim=-1) + 1 / x[:, 1].norm(dim=-1))
    pair = v - nuclear
    mean, sem = pair.mean().item(), pair.std().item() / math.sqrt(len(pair))
    assert abs(mean - 5 * z / 8) < 4 * sem
    assert abs(nuclear.mean().item() + 2 * z * z) < 4 * nuclear.std().item() / math.sqrt(len(pair))
    assert torch.allclose(proposal.log_prob(x[:5]), proposal.log_prob(x[:5].flip(1)))


@pytest.mark.parametrize("gaussian", [False, True])
def test_pair_mixture_is_a_normalised_density_and_samples_from_it(gaussian):
    # E_q[p/q] = ∫ p = 1 for samples of an independent density q (checks log_prob), and E_p[q/p] = 1 (checks that
    # the sampler draws from p); q is a product of wider densities of the same family.
    dtype = torch.float64
    centers = torch.tensor([[0.0, 0.0, -0.7], [0.0, 0.0, 0.7]], dtype=dtype)
    scales = torch.tensor([[0.6, 1.5], [0.4, 0.9]], dtype=dtype)
    if gaussian:
        p = PairMixture(centers[:1], scales[..., None] * torch.tensor([1.0, 0.8, 1.2], dtype=dtype), kind="gaussian")
    else:
        p = PairMixture(centers, scales)
    wide = (GaussianMixture(torch.zeros(1, 3, dtype=dtype), torch.full((1, 3), 2.0, dtype=dtype)) if gaussian else
            ExponentialMixture(torch.zeros(1, 3, dtype=dtype), torch.tensor([2.0], dtype=dtype)))

    def log_q(x):
        return wide.log_prob(x[:, 0]) + wide.log_prob(x[:, 1])

    gen = torch.Generator().manual_seed(11)
    xq = wide.sample(400_000, gen).reshape(200_000, 2, 3)
    xp = p.sample(200_000, gen)
    for ratio in (torch.exp(p.log_prob(xq) - log_q(xq)), torch.exp(log_q(xp) - p.log_prob(xp))):
        assert abs(ratio.mean().item() - 1) < 4 * ratio.std().item() / math.sqrt(len(ratio)) + 1e-3


def test_thresholds_and_state_status():
    assert continuum_threshold(qsolver.System("he", 3, HELIUM, particles=2, reference="none")) == pytest.approx(-2.0)
    hydride = qsolver.load_system("hydride")
    assert continuum_threshold(hydride) == pytest.approx(-0.5)
    trap = qsolver.load_system("harmonium")
    assert continuum_threshold(trap) == math.inf
    status = state_status(np.array([-0.5277, -0.4999, -0.50001]), np.array([1e-5, 1e-5, 1e-4]), -0.5)
    assert status == ["bound", "above threshold", "at threshold"]


def test_one_dimensional_trap_solve_matches_the_separated_spectrum():
    """Two particles in a 1D trap (ω = 1) with a soft Coulomb repulsion; the reference separates centre of mass
    and relative motion. 3 singlets in well under a minute; asserted to 2e-3 hartree, about 10 times the typical
    error of this short run (its error bars are printed by validate)."""
    system = qsolver.System("trap1d", 1, {"kind": "harmonic", "omega": 1.0}, particles=2, spin=0,
                            interaction={"kind": "expression", "expr": "1/sqrt(r**2 + 1)"}, reference="grid")
    result = qsolver.solve(system, n_states=3, steps=600, seed=0, progress=False, eval_samples=20000, threads=1)
    exact, errors, _ = trap_levels(1, 0.5, 1.0, system.interaction, 0, 3)
    table = validate(result, qsolver.references.reference(system, 3))
    assert np.allclose(table.reference.energies, exact)
    assert np.all(np.abs(result.energies - exact) < 2e-3), (result.energies, exact)
    assert all(row["status"] == "bound" for row in table.states)
    assert float(result.diagnostics["exchange_symmetry_error"]) < 1e-12


@pytest.mark.parametrize("changes,field", [
    ({"particles": 11}, "particles"),
    ({"spin": 1}, "spin"),
    ({"spin": 4}, "spin"),
    ({"interaction": {"kind": "expression", "expr": "1/x"}}, "interaction.expr"),
    ({"interaction": {"kind": "yukawa"}}, "interaction.kind"),
    ({"interaction": {"kind": "coulomb", "range": 2}}, "interaction.range"),
])
def test_bad_two_particle_input_names_the_field(changes, field):
    table = {"name": "he", "dimension": 3, "particles": 2, "potential": HELIUM, **changes}
    with pytest.raises(InputError) as err:
        qsolver.system.system_from_dict(table, "he.toml")
    assert err.value.field == field


def test_one_particle_rejects_a_pair_interaction():
    with pytest.raises(InputError) as err:
        qsolver.System("h", 3, HELIUM, interaction={"kind": "coulomb"})
    assert err.value.field == "interaction"


def test_system_round_trips_through_its_dict():
    system = qsolver.load_system("helium_triplet")
    again = qsolver.system.system_from_dict(system.to_dict())
    assert (again.particles, again.spin, again.interaction.to_dict()) == (2, 2, {"kind": "coulomb", "strength": 1.0})


@pytest.mark.parametrize("text,field", [
    ('particles = 11\n', "particles"),
    ('particles = 2\nspin = 1\n', "spin"),
    ('particles = 2\n[interaction]\nkind = "expression"\nexpr = "1/(r + y)"\n', "interaction.expr"),
])
def test_cli_refuses_bad_two_particle_files_and_writes_nothing(tmp_path, capsys, text, field):
    path = tmp_path / "bad.toml"
    head, _, table = text.partition("[")
    path.write_text('name = "bad"\ndimension = 3\n' + head + '[potential]\nkind = "harmonic"\nomega = 1.0\n'
                    + ("[" + table if table else ""), encoding="utf-8")
    out = tmp_path / "out" / "bad.h5"
    assert qsolver.cli.main(["solve", str(path), "--out", str(out), "--quiet"]) == 2
    message = capsys.readouterr().err.strip().splitlines()
    assert len(message) == 1 and f"field '{field}'" in message[0] and str(path) in message[0]
    assert not out.parent.exists()


def test_two_particle_result_round_trips_through_hdf5(tmp_path):
    system = qsolver.System("trap", 2, {"kind": "harmonic", "omega": 1.0}, particles=2, spin=2,
                            interaction={"kind": "expression", "expr": "1/sqrt(r**2 + 1)"}, reference="grid")
    result = qsolver.solve(system, n_states=2, steps=20, seed=0, progress=False, eval_samples=2000, eval_blocks=4,
                           threads=1)
    path = qsolver.save_result(result, tmp_path / "trap.h5")
    with h5py.File(path) as f:       # saving computes no reference; `qsolver solve` passes the one it made
        assert "reference" not in f and "grid" not in f and "observables/density" in f
    again = qsolver.load_result(path)
    x = np.random.default_rng(0).normal(size=(50, 2, 2))
    assert np.allclose(again.wavefunctions(x), result.wavefunctions(x), rtol=1e-12, atol=1e-14)
    assert (again.system.particles, again.system.spin, again.system.interaction.to_dict()) == \
        (2, 2, {"kind": "expression", "expr": "1/sqrt(r**2 + 1)"})
    for key in ("density", "density_error", "distance", "distance_error", "distance_edges"):
        assert np.allclose(again.observables[key], result.observables[key], rtol=1e-6), key
    assert all(np.allclose(a, b) for a, b in zip(again.observables["density_edges"],
                                                 result.observables["density_edges"]))
    with pytest.raises(ValueError):
        result.wavefunctions(x[:, 0])          # one-particle points for a two-particle result


def test_interaction_energy_of_a_gaussian_pair_by_quadrature():
    # ψ(x1, x2) = exp(-(x1² + x2²)/2)/√π in 1D: r = x1 - x2 is normal with variance 1 under ψ², so
    # ⟨W⟩ = ∫ N(r; 0, 1) W(r) dr (one-dimensional, scipy.integrate.quad) must equal the two-dimensional Gauss–Hermite
    # quadrature of ψ² (V(x1) + V(x2) + W(r)) minus the one-body part ⟨V⟩ = 2 · ½ω²⟨x²⟩ = ω²/2
    from scipy.integrate import quad

    omega = 1.3
    system = qsolver.System("pair", 1, {"kind": "harmonic", "omega": omega}, particles=2,
                            interaction={"kind": "expression", "expr": "1/sqrt(r**2 + 1)"}, reference="none")
    nodes, weights = np.polynomial.hermite.hermgauss(80)          # ∫ e^{-x²} f(x) dx
    x1, x2 = np.meshgrid(nodes, nodes, indexing="ij")
    x = torch.tensor(np.stack([x1.ravel(), x2.ravel()], 1)[:, :, None])
    energy = hamiltonian(system).potential(x).numpy()
    total = (np.outer(weights, weights).ravel() * energy).sum() / np.pi
    pair, _ = quad(lambda r: np.exp(-r * r / 2) / np.sqrt(2 * np.pi) / np.sqrt(r * r + 1), -np.inf, np.inf,
                   epsabs=1e-13)
    assert total == pytest.approx(pair + omega**2 / 2, abs=1e-10)


def test_two_free_particles_in_a_box():
    """No interaction in a 1D box of side L: singlet levels κπ²/L² (n1² + n2²), n1 ≤ n2 (closed form); the walls are
    built into the ansatz and the proposal is uniform in the box. 1500 steps put both within 0.1 % (two seeds
    measured); the tolerance is twice that."""
    length, kappa = 2.0, 0.5
    system = qsolver.System("box_pair", 1, {"kind": "box", "lengths": length}, particles=2, spin=0,
                            interaction={"kind": "none"}, reference="none")
    result = qsolver.solve(system, n_states=2, steps=1500, seed=0, progress=False, eval_samples=20000, threads=1)
    pairs = [(a, b) for a in range(1, 5) for b in range(a, 6)]
    exact = sorted(kappa * (math.pi / length) ** 2 * (a * a + b * b) for a, b in pairs)[:2]
    assert np.allclose(result.energies, exact, rtol=2e-3), (result.energies, exact)
    assert float(result.diagnostics["exchange_symmetry_error"]) == 0.0
