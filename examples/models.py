"""The workload models. Each maps operand tensors ``(a, b)`` to ``p`` outputs and exposes
the two matrices the probe studies, with rows indexed by the token ``0..p-1``:

* ``embed_matrix()``: the token embeddings (p x d),
* ``neuron_matrix()``: the map from the first operand's token to the first hidden layer
  (p x hidden).

For the one-hot MLPs the first Linear over ``one-hot(a) || one-hot(b)`` *is* a pair of
concatenated token embeddings, so both matrices are its first-operand half.
"""

from __future__ import annotations

import math

import torch
from torch import nn

MODELS = ("mlp", "quadratic", "transformer")


class OneHotMLP(nn.Module):
    """one-hot(a) || one-hot(b) -> width -> ReLU -> width -> ReLU -> p (cross-entropy)."""

    loss = "ce"

    def __init__(self, p: int, width: int = 128) -> None:
        super().__init__()
        self.p = p
        self.fc1 = nn.Linear(2 * p, width)
        self.fc2 = nn.Linear(width, width)
        self.out = nn.Linear(width, p)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(a, b))

    def features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The last hidden layer (what the readout sees)."""
        # Column gathers equal the matmul with the one-hot input (same values, same
        # gradients) without building a (n, 2p) matrix every step.
        w = self.fc1.weight
        h = w[:, a].T + w[:, self.p + b].T + self.fc1.bias
        return torch.relu(self.fc2(torch.relu(h)))

    def embed_matrix(self) -> torch.Tensor:
        return self.fc1.weight[:, : self.p].T

    def neuron_matrix(self) -> torch.Tensor:
        return self.fc1.weight[:, : self.p].T


class QuadraticMLP(nn.Module):
    """Gromov's model: one-hot(a) || one-hot(b) -> width -> x^2 -> p, no biases (MSE)."""

    loss = "mse"

    def __init__(self, p: int, width: int = 500) -> None:
        super().__init__()
        self.p = p
        self.fc1 = nn.Linear(2 * p, width, bias=False)
        self.out = nn.Linear(width, p, bias=False)
        # d-doshi/Grokking's init: N(0, 0.25 / (2N)^(2/3)); torch's default is too large
        # for the squared activation and slows the fit.
        std = 0.5 / (2 * width) ** (1 / 3)
        nn.init.normal_(self.fc1.weight, std=std)
        nn.init.normal_(self.out.weight, std=std)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(a, b))

    def features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The squared hidden layer (what the readout sees)."""
        w = self.fc1.weight
        h = w[:, a].T + w[:, self.p + b].T
        return h * h

    def embed_matrix(self) -> torch.Tensor:
        return self.fc1.weight[:, : self.p].T

    def neuron_matrix(self) -> torch.Tensor:
        return self.fc1.weight[:, : self.p].T


class OneLayerTransformer(nn.Module):
    """Nanda-style 1-layer transformer over the sequence ``a b =``, read out at ``=``.

    No LayerNorm (as in Nanda et al. 2023), learned positions, pre-residual attention
    and a ReLU MLP.
    """

    loss = "ce"

    def __init__(self, p: int, width: int = 128, heads: int = 4, mlp_mult: int = 4) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.p, self.heads = p, heads
        self.tok = nn.Embedding(p + 1, width)  # token p is "="
        self.pos = nn.Parameter(torch.randn(3, width) / math.sqrt(width))
        nn.init.normal_(self.tok.weight, std=1 / math.sqrt(width))
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width, bias=False)
        self.mlp_in = nn.Linear(width, mlp_mult * width)
        self.mlp_out = nn.Linear(mlp_mult * width, width)
        self.unembed = nn.Linear(width, p, bias=False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.unembed(self.features(a, b))

    def features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The residual stream at ``=`` after the block (what the unembedding reads)."""
        eq = torch.full_like(a, self.p)
        x = self.tok(torch.stack([a, b, eq], dim=1)) + self.pos  # (n, 3, d)
        n, t, d = x.shape
        h, dh = self.heads, d // self.heads
        # Only the "=" position is read out, and causally it sees all three tokens, so the
        # query, attention output and MLP are computed for that position alone (same
        # result as full causal attention there, a third of the work).
        wq, wk, wv = self.qkv.weight.split(d)
        last = x[:, -1]
        q = (last @ wq.T).view(n, h, 1, dh)
        k = (x @ wk.T).view(n, t, h, dh).transpose(1, 2)
        v = (x @ wv.T).view(n, t, h, dh).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh), dim=-1) @ v  # (n, h, 1, dh)
        last = last + self.proj(att.reshape(n, d))
        return last + self.mlp_out(torch.relu(self.mlp_in(last)))

    def embed_matrix(self) -> torch.Tensor:
        return self.tok.weight[: self.p]

    def neuron_matrix(self) -> torch.Tensor:
        # Token -> MLP input directly (the residual path, ignoring attention mixing),
        # the W_E @ W_in map Nanda et al. read neuron frequencies from.
        return self.tok.weight[: self.p] @ self.mlp_in.weight.T


class DigitsMLP(nn.Module):
    """Omnigrok's real-data grokking model: a ReLU MLP on pixels with a large initialization.

    ``inputs -> width -> ReLU -> width -> ReLU -> classes``, every weight multiplied by
    ``init_scale`` after torch's default init (Omnigrok uses 8 on MNIST) and trained with
    MSE on one-hot targets: the network memorizes with large weights, and weight decay
    slowly brings the norm down to where it generalizes (Liu, Michaud, Tegmark 2023).
    """

    loss = "mse"

    def __init__(self, inputs: int = 64, classes: int = 10, width: int = 200,
                 init_scale: float = 8.0) -> None:
        super().__init__()
        self.p = classes
        self.fc1 = nn.Linear(inputs, width)
        self.fc2 = nn.Linear(width, width)
        self.out = nn.Linear(width, classes)
        with torch.no_grad():
            for m in (self.fc1, self.fc2, self.out):
                m.weight.mul_(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer (what the readout sees)."""
        return torch.relu(self.fc2(torch.relu(self.fc1(x))))


def build_model(name: str, p: int, width: int | None = None) -> nn.Module:
    """A fresh model by name (``mlp``, ``quadratic``, ``transformer``); width None = its default."""
    if name == "mlp":
        return OneHotMLP(p, width or 128)
    if name == "quadratic":
        return QuadraticMLP(p, width or 500)
    if name == "transformer":
        return OneLayerTransformer(p, width or 128)
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
