"""The Lightning callback: a real tiny model, a real Trainer on CPU, a real daemon."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the Lightning callback needs torch")
pl = pytest.importorskip("lightning.pytorch",
                         reason="lightning is not installed (pip install grokwatch[lightning])")

from grokwatch.integrations.lightning import GrokwatchCallback  # noqa: E402

P = 11


class ModAdd(pl.LightningModule):
    """(a + b) mod P from two token embeddings: the smallest grokking-shaped task."""

    def __init__(self, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.embed = torch.nn.Embedding(P, 16)
        self.head = torch.nn.Linear(32, P)

    def forward(self, x):
        return self.head(self.embed(x).flatten(1))

    def _step(self, batch):
        x, y = batch
        logits = self(x)
        return (torch.nn.functional.cross_entropy(logits, y),
                (logits.argmax(-1) == y).float().mean())

    def training_step(self, batch, batch_idx):
        loss, acc = self._step(batch)
        self.log("train_loss", loss)
        self.log("train/acc", acc)  # a usual spelling, mapped to train_acc
        return loss

    def validation_step(self, batch, batch_idx):
        loss, acc = self._step(batch)
        self.log("val/loss", loss)
        self.log("val_accuracy", acc)  # -> val_acc

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)


def loaders():
    g = torch.Generator().manual_seed(0)
    a, b = torch.meshgrid(torch.arange(P), torch.arange(P), indexing="ij")
    x = torch.stack([a.flatten(), b.flatten()], 1)
    y = (x[:, 0] + x[:, 1]) % P
    idx = torch.randperm(len(x), generator=g)
    tr, va = idx[:64], idx[64:]
    ds = torch.utils.data.TensorDataset
    return (torch.utils.data.DataLoader(ds(x[tr], y[tr]), batch_size=16, shuffle=True,
                                        generator=g),
            torch.utils.data.DataLoader(ds(x[va], y[va]), batch_size=64))


def steps(daemon, run, metric):
    return sorted(r["step"] for r in
                  daemon.request("export", run=run, metric=metric, timeout=10)["rows"])


@pytest.mark.slow
def test_lightning_trainer_reaches_the_daemon(daemon, tmp_path):
    torch.manual_seed(0)
    train, val = loaders()
    logger = pl.loggers.CSVLogger(tmp_path, name="modadd", version=3)
    trainer = pl.Trainer(
        max_steps=40, log_every_n_steps=5, logger=logger, accelerator="cpu", devices=1,
        enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
        callbacks=[GrokwatchCallback(modulus=P, every=10, endpoint=daemon.ingest)])
    trainer.fit(ModAdd(), train, val)
    cb = trainer.callbacks[0]
    assert cb.probe.run == "modadd.version_3" and cb.probe.pending == 0

    runs = {r["run"]: r for r in daemon.request("runs")["runs"]}
    assert set(runs) == {"modadd.version_3"}
    run = runs["modadd.version_3"]
    assert run["config"]["framework"] == "lightning" and run["config"]["lr"] == 0.05
    assert run["modulus"] == P
    # train side every 5 steps; validation after each epoch (4 batches); names mapped
    assert steps(daemon, "modadd.version_3", "train_loss") == list(range(5, 41, 5))
    assert steps(daemon, "modadd.version_3", "train_acc") == list(range(5, 41, 5))
    assert steps(daemon, "modadd.version_3", "val_acc") == list(range(4, 41, 4))
    assert steps(daemon, "modadd.version_3", "val_loss") == list(range(4, 41, 4))
    # the model observed every 10 steps, the embedding's Fourier metrics included
    assert steps(daemon, "modadd.version_3", "weight_norm") == [1, 11, 21, 31]
    assert steps(daemon, "modadd.version_3", "embed.fourier_ipr") == [1, 11, 21, 31]
