"""Class geometry of a batch's features: chance level, separated classes, readout, API."""

from __future__ import annotations

import numpy as np
import pytest

from grokwatch.probe.geometry import class_geometry
from grokwatch.probe.metrics import discover, observe_all, readout


@pytest.mark.parametrize("classes, width", [(10, 64), (97, 512), (5, 3)])
def test_unstructured_features_score_chance_whatever_the_width_and_classes(classes, width):
    rng = np.random.default_rng(classes)
    y = rng.integers(0, classes, 256)
    seps = [class_geometry(rng.standard_normal((256, width)), y)["class_sep"] for _ in range(40)]
    assert abs(np.mean(seps) - 1.0) < 0.05  # the chance level is 1 by construction
    g = class_geometry(rng.standard_normal((256, width)), y)
    assert g["class_eta2_null"] == pytest.approx((len(set(y.tolist())) - 1) / 255)


def test_separated_classes_score_far_above_chance_and_grow_with_separation():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, 256)
    centres = rng.standard_normal((10, 32))
    noise = rng.standard_normal((256, 32))
    weak = class_geometry(0.3 * centres[y] + noise, y)
    strong = class_geometry(3.0 * centres[y] + noise, y)
    assert 1.5 < weak["class_sep"] < strong["class_sep"]
    assert strong["class_eta2"] > 0.8


def test_label_permutation_destroys_the_structure():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 10, 256)
    h = 3.0 * rng.standard_normal((10, 32))[y] + rng.standard_normal((256, 32))
    assert class_geometry(h, y)["class_sep"] > 20
    assert class_geometry(h, rng.permutation(y))["class_sep"] < 1.5


def test_invariant_to_scale_shift_and_rotation():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 7, 200)
    h = rng.standard_normal((7, 16))[y] + rng.standard_normal((200, 16))
    q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    a = class_geometry(h, y)["class_sep"]
    assert class_geometry(5.0 * h @ q + 3.0, y)["class_sep"] == pytest.approx(a, rel=1e-9)


def test_torch_gives_the_numpy_value():
    torch = pytest.importorskip("torch", reason="the tensor path needs torch")
    rng = np.random.default_rng(4)
    y = rng.integers(0, 5, 100)
    h = rng.standard_normal((5, 8))[y] + rng.standard_normal((100, 8))
    a = class_geometry(h, y)
    b = class_geometry(torch.tensor(h, dtype=torch.float32), torch.tensor(y))
    assert b["class_sep"] == pytest.approx(a["class_sep"], rel=1e-5)


@pytest.mark.parametrize("h, y, msg", [
    (np.zeros((4, 2)), [0, 1, 2], "labels for"),
    (np.zeros((4, 2)), [0, 0, 0, 0], ">= 2 classes"),
    (np.zeros((3, 2)), [0, 1, 2], "more rows than classes"),
    (np.zeros((4, 2)), [0.5, 1, 2, 0], "integers"),
    (np.zeros(4), [0, 1, 0, 1], "2-D"),
])
def test_bad_inputs_are_refused_with_a_reason(h, y, msg):
    with pytest.raises(ValueError, match=msg):
        class_geometry(h, np.asarray(y))


def test_observe_all_measures_features_through_the_models_readout_and_calls_callables():
    torch = pytest.importorskip("torch", reason="models are torch modules")
    from grokwatch.examples.models import build_model

    torch.manual_seed(0)
    m = build_model("mlp", 11, 16)
    a = torch.arange(11).repeat(3)
    b = torch.arange(33) % 11
    y = (a + b) % 11
    calls = []

    def feats():
        calls.append(1)
        with torch.no_grad():
            return m.features(a, b)

    errors: list = []
    obs = observe_all(m, {"features": feats, "labels": y}, modulus=11, on_error=errors.append)
    assert calls == [1] and not errors
    for k in ("features.class_sep", "features.readout_sep", "features.class_eta2_null"):
        assert np.isfinite(obs.scalars[k])
    w, bias = readout(m, 16)
    assert w is m.out.weight and bias is m.out.bias
    # features without labels: counted as an error, the rest still measured
    obs = observe_all(m, {"features": feats}, modulus=11, on_error=errors.append)
    assert errors and "weight_norm" in obs.scalars and "features.class_sep" not in obs.scalars


def test_model_discovery_finds_the_embedding_and_the_first_mlp_view():
    torch = pytest.importorskip("torch", reason="models are torch modules")
    from grokwatch.examples.models import build_model

    m = build_model("transformer", 13, 16)
    found = discover(m, 13)
    assert found["embed"].shape == (13, 16)  # the '=' token row is left out
    assert torch.allclose(found["neurons"], m.neuron_matrix().detach())
    obs = observe_all(m, {}, modulus=13)
    assert "embed.fourier_ipr" in obs.scalars and "neurons.fourier_ipr" in obs.scalars
    assert discover(build_model("mlp", 13, 16), 13) == {}  # no Embedding: the user names tensors


def test_features_of_a_hidden_layer_have_no_readout_and_are_measured_as_given():
    torch = pytest.importorskip("torch", reason="models are torch modules")
    from grokwatch.examples.models import build_model

    m = build_model("transformer", 13, 16)  # mlp_out reads 64 wide, the unembed 16 wide
    assert readout(m, 64) is None and readout(m, 16)[0] is m.unembed.weight
    h = torch.randn(40, 64)
    obs = observe_all(m, {"features": h, "labels": torch.arange(40) % 13})
    assert "features.class_sep" in obs.scalars and "features.readout_sep" not in obs.scalars


def test_due_says_when_observe_measures_and_callables_run_only_then(router):
    from grokwatch.probe import Probe

    calls = []

    def feats():
        calls.append(1)
        return np.random.default_rng(len(calls)).standard_normal((20, 4))

    p = Probe("due", endpoint=router.endpoint, every=10)
    try:
        due = [s for s in range(35) if p.due(s) and (p.observe(s, features=feats,
                                                              labels=np.arange(20) % 3) or True)]
        assert due == [0, 10, 20, 30] and len(calls) == 4
        for s in range(35, 45):
            p.observe(s, features=feats, labels=np.arange(20) % 3)  # due at 40 only
        assert len(calls) == 5 and p.errors == 0
    finally:
        p.close(timeout=0)
    assert not p.due(50)  # a closed probe measures nothing
