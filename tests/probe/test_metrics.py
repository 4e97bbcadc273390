"""Geometry metrics with known answers, from numpy arrays and torch tensors alike."""

from __future__ import annotations

import math

import numpy as np
import pytest

from grokwatch.probe.fourier import TOPK, fourier_metrics, null_permutation, spectrum_scalars
from grokwatch.probe.metrics import matrix_metrics, observe_all
from grokwatch.probe.spectral import TOP_SV, spectral_scalars, svd_metrics

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(1234)


def cos_matrix(p: int, k: int, d: int, rng=RNG) -> np.ndarray:
    """Columns cos(2 pi k a / p + phase_j), rows a = 0..p-1, random phases and amplitudes."""
    a = np.arange(p)[:, None]
    return rng.uniform(0.5, 2.0, d) * np.cos(2 * np.pi * k * a / p + rng.uniform(0, 2 * np.pi, d))


# ---------------------------------------------------------------- spectral


@pytest.mark.parametrize("r", [1, 3, 10])
def test_rank_r_matrix_has_effective_rank_r(r):
    u, _ = np.linalg.qr(RNG.standard_normal((200, r)))
    v, _ = np.linalg.qr(RNG.standard_normal((64, r)))
    m = (u - u.mean(0)) @ v.T  # centred rows: centring does not change the rank
    scal, sv = svd_metrics(m)
    assert scal["erank"] == pytest.approx(r, rel=0.02)
    assert scal["pr"] == pytest.approx(r, rel=0.02)
    assert sv.shape == (64,) and np.all(sv[r:] < 1e-8 * sv[0])


def test_spectral_scalars_formulas():
    s = np.array([3.0, 1.0])
    out = spectral_scalars(s)
    e = np.array([9.0, 1.0]) / 10
    assert out["erank"] == pytest.approx(math.exp(-(e * np.log(e)).sum()))
    assert out["pr"] == pytest.approx(100 / 82)
    assert out["stable_rank"] == pytest.approx(10 / 9)
    assert spectral_scalars(np.zeros(4)) == {"erank": 0.0, "pr": 0.0, "stable_rank": 0.0}
    assert all(math.isnan(v) for v in spectral_scalars(np.array([1.0, math.nan])).values())


def test_top_singular_values_are_capped():
    _, sv = svd_metrics(RNG.standard_normal((300, 100)))
    assert len(sv) == TOP_SV and np.all(np.diff(sv) <= 0)


def test_non_finite_matrix_gives_nan_not_an_error():
    m = RNG.standard_normal((10, 5))
    m[3, 2] = math.inf
    scal, sv = svd_metrics(m)
    assert math.isnan(scal["erank"]) and len(sv) == 0


# ---------------------------------------------------------------- fourier


@pytest.mark.parametrize("p,k", [(97, 5), (97, 48), (113, 17), (60, 30), (59, 1)])
def test_single_frequency_columns(p, k):
    m = cos_matrix(p, k, 128)
    fr = fourier_metrics(m, p, null_permutation(p, np.random.default_rng(0)))
    s = fr.scalars
    assert fr.spectrum.shape == (p // 2,)
    assert int(np.argmax(fr.spectrum)) + 1 == k and s["fourier_key"] == k
    assert fr.spectrum[k - 1] / fr.spectrum.sum() > 0.999
    assert s["fourier_entropy"] == pytest.approx(0.0, abs=1e-6)
    assert s["fourier_conc"] == pytest.approx(1.0, abs=1e-6)
    assert s["fourier_ipr"] == pytest.approx(1.0, abs=1e-6)
    assert s["fourier_topk"] == pytest.approx(1.0)
    assert s["fourier_gini"] > 0.95
    # The null destroys the structure: near chance for p//2 frequencies.
    K = p // 2
    assert s["fourier_conc_null"] < 0.35
    assert s["fourier_ipr_null"] < 0.2
    assert s["fourier_conc_null"] > 1.0 / K


def test_constellation_is_a_circle_ordered_by_k_times_a():
    p, k = 97, 7
    m = cos_matrix(p, k, 64)
    fr = fourier_metrics(m, p, null_permutation(p))
    pts = fr.constellation
    assert pts.shape == (p, 2)
    r = np.hypot(pts[:, 0], pts[:, 1])
    ang = np.arctan2(pts[:, 1], pts[:, 0])
    assert r.std() / r.mean() < 0.35  # an ellipse at worst, centred
    # Walking the tokens in steps of k^-1 mod p moves the angle by a constant step.
    order = [(j * pow(k, -1, p)) % p for j in range(p)]
    steps = np.angle(np.exp(1j * np.diff(ang[order])))
    assert np.all(np.sign(steps) == np.sign(steps[0]))


def test_gaussian_matrix_concentration_is_close_to_its_null():
    p = 97
    g = RNG.standard_normal((p, 256))
    s = fourier_metrics(g, p, null_permutation(p, np.random.default_rng(5))).scalars
    assert s["fourier_conc"] == pytest.approx(s["fourier_conc_null"], rel=0.15)
    assert s["fourier_ipr"] == pytest.approx(s["fourier_ipr_null"], rel=0.15)
    assert s["fourier_entropy"] > 0.95
    # Chance: the max of K exponential shares, about H_K / K.
    K = p // 2
    assert s["fourier_conc"] == pytest.approx(sum(1 / i for i in range(1, K + 1)) / K, rel=0.2)


def test_dc_and_rows_beyond_p_are_ignored():
    p = 31
    m = cos_matrix(p, 3, 16)
    base = fourier_metrics(m, p, null_permutation(p, np.random.default_rng(0)))
    shifted = np.vstack([m + 5.0, RNG.standard_normal((10, 16))])  # DC offset + extra rows
    other = fourier_metrics(shifted, p, null_permutation(p, np.random.default_rng(0)))
    for k, v in base.scalars.items():
        assert other.scalars[k] == pytest.approx(v, abs=1e-9), k
    np.testing.assert_allclose(other.spectrum, base.spectrum, rtol=1e-9, atol=1e-9)


def test_spectrum_scalars_topk_and_uniform():
    flat = spectrum_scalars(np.ones(48))
    assert flat["fourier_entropy"] == pytest.approx(1.0)
    assert flat["fourier_gini"] == pytest.approx(0.0, abs=1e-12)
    assert flat["fourier_topk"] == pytest.approx(TOPK / 48)
    spec = np.zeros(48)
    spec[[2, 9]] = [3.0, 1.0]
    s = spectrum_scalars(spec)
    assert s["fourier_key"] == 3 and s["fourier_topk"] == pytest.approx(1.0)


def test_dead_columns_do_not_count():
    p = 41
    m = cos_matrix(p, 4, 8)
    with_dead = np.hstack([m, np.zeros((p, 8)), np.full((p, 2), 3.0)])
    a = fourier_metrics(m, p, null_permutation(p, np.random.default_rng(0))).scalars
    b = fourier_metrics(with_dead, p, null_permutation(p, np.random.default_rng(0))).scalars
    assert b["fourier_conc"] == pytest.approx(a["fourier_conc"])
    assert b["fourier_ipr"] == pytest.approx(a["fourier_ipr"])


# ---------------------------------------------------------------- torch vs numpy


@pytest.mark.parametrize("kind", ["cos", "gauss", "lowrank"])
def test_torch_and_numpy_agree(kind):
    p = 97
    if kind == "cos":
        m = cos_matrix(p, 11, 128) + 0.1 * RNG.standard_normal((p, 128))
    elif kind == "gauss":
        m = RNG.standard_normal((p + 20, 64))
    else:
        m = RNG.standard_normal((p, 3)) @ RNG.standard_normal((3, 50))
    perms = {p: null_permutation(p)}
    a = observe_all(None, {"w": m}, modulus=p, perms=perms)
    for t in (torch.tensor(m), torch.tensor(m, dtype=torch.float32, requires_grad=True)):
        b = observe_all(None, {"w": t}, modulus=p, perms=perms)
        assert set(a.scalars) == set(b.scalars)
        for k in a.scalars:
            assert b.scalars[k] == pytest.approx(a.scalars[k], rel=1e-4, abs=1e-5), k
        for k in a.spectra:
            np.testing.assert_allclose(b.spectra[k], a.spectra[k], rtol=1e-3, atol=1e-4)
        # The constellation's basis sign may differ; its geometry may not.
        pa, pb = a.points["w.constellation"], b.points["w.constellation"]
        np.testing.assert_allclose(np.abs(pb), np.abs(pa), rtol=1e-3, atol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensor_stays_on_device_and_agrees():
    p = 97
    m = cos_matrix(p, 5, 128)
    perms = {p: null_permutation(p)}
    a = observe_all(None, {"w": m}, modulus=p, perms=perms)
    b = observe_all(None, {"w": torch.tensor(m, device="cuda")}, modulus=p, perms=perms)
    for k in a.scalars:
        assert b.scalars[k] == pytest.approx(a.scalars[k], rel=1e-3, abs=1e-4), k


# ---------------------------------------------------------------- observe_all


def test_names_and_shapes():
    p = 23
    obs = observe_all(None, {"embed": cos_matrix(p, 2, 16)}, modulus=p)
    assert set(obs.scalars) == {f"embed.{k}" for k in (
        "erank", "pr", "stable_rank", "fourier_entropy", "fourier_gini", "fourier_topk",
        "fourier_key", "fourier_conc", "fourier_conc_null", "fourier_ipr", "fourier_ipr_null")}
    assert set(obs.spectra) == {"embed.sv", "embed.fourier"}
    assert obs.spectra["embed.fourier"].shape == (11,)
    assert obs.points["embed.constellation"].shape == (23, 2)
    plain = observe_all(None, {"w": RNG.standard_normal((5, 4))})
    assert set(plain.scalars) == {"w.erank", "w.pr", "w.stable_rank"}
    assert not plain.points


def test_bad_matrices_cost_an_error_not_an_exception():
    errors: list = []
    obs = observe_all(None, {"short": RNG.standard_normal((10, 4)), "vec": np.ones(5),
                             "cube": np.ones((3, 3, 3)), "text": "abc",
                             "ok": cos_matrix(13, 2, 4)},
                      modulus=13, on_error=errors.append)
    assert len(errors) == 4
    assert "short.erank" in obs.scalars and "short.fourier_conc" not in obs.scalars
    assert "ok.fourier_conc" in obs.scalars


def test_one_fixed_null_permutation_per_probe():
    p = 29
    perms: dict = {}
    m = RNG.standard_normal((p, 32))
    a = observe_all(None, {"w": m}, modulus=p, perms=perms)
    first = perms[p].copy()
    b = observe_all(None, {"w": m}, modulus=p, perms=perms)
    np.testing.assert_array_equal(perms[p], first)
    assert a.scalars["w.fourier_conc_null"] == b.scalars["w.fourier_conc_null"]


def test_model_norms():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    obs = observe_all(model, {})
    want = math.sqrt(sum(float((p.detach().double() ** 2).sum()) for p in model.parameters()))
    assert obs.scalars == {"weight_norm": pytest.approx(want)}
    model(torch.randn(5, 6)).sum().backward()
    obs = observe_all(model, {})
    g = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in model.parameters()))
    assert obs.scalars["grad_norm"] == pytest.approx(g)


def test_matrix_metrics_accepts_lists():
    obs = matrix_metrics("m", [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert obs.scalars["m.erank"] > 1.0


@pytest.mark.parametrize("p", [601, 1024])
def test_fft_path_for_large_p_matches_the_dft_path(p, monkeypatch):
    from grokwatch.probe import fourier

    assert p > fourier.DFT_MAX_P
    m = cos_matrix(p, 37, 24) + 0.3 * RNG.standard_normal((p, 24))
    perm = null_permutation(p, np.random.default_rng(3))
    fft = fourier_metrics(m, p, perm)
    monkeypatch.setattr(fourier, "DFT_MAX_P", 4096)
    dft = fourier_metrics(m, p, perm)
    for k, v in dft.scalars.items():
        assert fft.scalars[k] == pytest.approx(v, rel=1e-7, abs=1e-9), k
    np.testing.assert_allclose(fft.spectrum, dft.spectrum, rtol=1e-7)
    assert fft.scalars["fourier_key"] == 37
    t = fourier_metrics(torch.tensor(m, dtype=torch.float32), p, perm)
    assert t.scalars["fourier_conc"] == pytest.approx(fft.scalars["fourier_conc"], rel=1e-4)


def test_aliased_matrices_are_measured_once_and_reported_under_both_names(monkeypatch):
    from grokwatch.probe import metrics

    p = 13
    w = torch.randn(32, 2 * p)
    calls: list[str] = []
    real = metrics.matrix_metrics

    def counting(name, x, **kw):
        calls.append(name)
        return real(name, x, **kw)

    monkeypatch.setattr(metrics, "matrix_metrics", counting)
    obs = metrics.observe_all(None, {"embed": w[:, :p].T, "neurons": w[:, :p].T,
                                     "other": w[:, p:].T.contiguous()}, modulus=p)
    assert calls == ["embed", "other"]  # two views of the same weights: one computation
    for k, v in obs.scalars.items():
        if k.startswith("embed."):
            assert obs.scalars["neurons." + k[len("embed."):]] == v
    assert set(obs.spectra) >= {"neurons.sv", "neurons.fourier"}
    assert "neurons.constellation" in obs.points
    # A copy with equal values but its own memory is measured on its own.
    obs2 = metrics.observe_all(None, {"a": w[:, :p].T, "b": w[:, :p].T.clone()}, modulus=p)
    assert calls[-2:] == ["a", "b"] and obs2.scalars["a.erank"] == pytest.approx(
        obs2.scalars["b.erank"], rel=1e-5)
