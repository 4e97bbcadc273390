"""The workload models: shapes, the probe's matrices, and that they can learn."""

import pytest
import torch

from grokwatch.examples.models import MODELS, OneHotMLP, build_model
from grokwatch.examples.tasks import make_task


@pytest.mark.parametrize("name", MODELS)
def test_outputs_and_probe_matrices_are_indexed_by_token(name):
    p = 13
    m = build_model(name, p, 16 if name != "quadratic" else 24)
    a, b = torch.tensor([0, 5, 12]), torch.tensor([3, 3, 1])
    assert m(a, b).shape == (3, p)
    assert m.embed_matrix().shape[0] == p
    assert m.neuron_matrix().shape[0] == p
    assert m.loss in ("ce", "mse")


def test_mlp_gather_equals_the_linear_over_concatenated_one_hots():
    torch.manual_seed(0)
    p = 7
    m = OneHotMLP(p, 8)
    a, b = torch.arange(p), torch.randint(0, p, (p,))
    x = torch.cat([torch.nn.functional.one_hot(a, p), torch.nn.functional.one_hot(b, p)], 1)
    h = torch.relu(m.fc1(x.float()))
    ref = m.out(torch.relu(m.fc2(h)))
    assert torch.allclose(m(a, b), ref, atol=1e-6)
    # The first operand's token embedding is column a of the first Linear.
    assert torch.equal(m.embed_matrix()[3], m.fc1.weight[:, 3])


def test_neuron_matrix_follows_training():
    m = build_model("quadratic", 11, 20)
    before = m.neuron_matrix().detach().clone()
    with torch.no_grad():
        m.fc1.weight.add_(1.0)
    assert not torch.equal(before, m.neuron_matrix())


@pytest.mark.parametrize("name", MODELS)
def test_each_model_fits_a_small_train_set(name):
    torch.manual_seed(0)
    p = 7
    train, _ = make_task("add", p, 0.6, seed=0)
    m = build_model(name, p, 32 if name != "transformer" else 16)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.0)
    lossf = (torch.nn.functional.cross_entropy if m.loss == "ce" else
             lambda o, y: torch.nn.functional.mse_loss(o, torch.nn.functional.one_hot(y, p).float()))
    for _ in range(200):
        opt.zero_grad()
        lossf(m(train.a, train.b), train.y).backward()
        opt.step()
    acc = (m(train.a, train.b).argmax(1) == train.y).float().mean().item()
    assert acc == 1.0


def test_unknown_model_and_bad_width_are_refused():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("cnn", 7)
    with pytest.raises(ValueError, match="divisible"):
        build_model("transformer", 7, 30)


def test_transformer_readout_equals_full_causal_attention_at_the_last_position():
    from grokwatch.examples.models import OneLayerTransformer

    torch.manual_seed(0)
    p = 11
    m = OneLayerTransformer(p, 16, heads=4)
    a, b = torch.randint(0, p, (9,)), torch.randint(0, p, (9,))
    x = m.tok(torch.stack([a, b, torch.full_like(a, p)], 1)) + m.pos
    n, t, d = x.shape
    q, k, v = m.qkv(x).view(n, t, 3, 4, d // 4).permute(2, 0, 3, 1, 4)
    att = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    x = x + m.proj(att.transpose(1, 2).reshape(n, t, d))
    last = x[:, -1] + m.mlp_out(torch.relu(m.mlp_in(x[:, -1])))
    assert torch.allclose(m(a, b), m.unembed(last), atol=1e-5)
