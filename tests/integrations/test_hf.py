"""The Hugging Face callback: a tiny BERT built from a config (nothing downloads), a real
``transformers.Trainer`` on CPU, a real daemon."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the Hugging Face callback needs torch")
transformers = pytest.importorskip(
    "transformers", reason="transformers is not installed (pip install grokwatch[hf])")
pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate")

from grokwatch.integrations.hf import GrokwatchCallback  # noqa: E402

P = 11


class ModAdd(torch.utils.data.Dataset):
    """(a + b) mod P as two-token sequences with the answer as the label."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"input_ids": self.x[i], "labels": self.y[i]}


def accuracy(ev):
    return {"accuracy": float((np.argmax(ev.predictions, -1) == ev.label_ids).mean())}


def steps(daemon, run, metric):
    return sorted(r["step"] for r in
                  daemon.request("export", run=run, metric=metric, timeout=10)["rows"])


@pytest.mark.slow
def test_hf_trainer_reaches_the_daemon(daemon, tmp_path):
    torch.manual_seed(0)
    a, b = torch.meshgrid(torch.arange(P), torch.arange(P), indexing="ij")
    x = torch.stack([a.flatten(), b.flatten()], 1)
    y = (x[:, 0] + x[:, 1]) % P
    model = transformers.BertForSequenceClassification(transformers.BertConfig(
        vocab_size=P, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=4, num_labels=P))
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "modadd-bert"), max_steps=20, logging_steps=5,
        eval_strategy="steps", eval_steps=10, per_device_train_batch_size=16,
        learning_rate=1e-3, report_to=[], save_strategy="no", use_cpu=True,
        disable_tqdm=True)
    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=ModAdd(x[:64], y[:64]),
        eval_dataset=ModAdd(x[64:], y[64:]), compute_metrics=accuracy,
        callbacks=[GrokwatchCallback(modulus=P, every=5, endpoint=daemon.ingest)])
    trainer.train()

    runs = {r["run"]: r for r in daemon.request("runs")["runs"]}
    assert set(runs) == {"modadd-bert"}
    cfg = runs["modadd-bert"]["config"]
    assert cfg["framework"] == "transformers" and cfg["model_type"] == "bert"
    assert cfg["learning_rate"] == 1e-3
    assert steps(daemon, "modadd-bert", "train_loss") == [5, 10, 15, 20]
    assert steps(daemon, "modadd-bert", "grad_norm") == [5, 10, 15, 20]
    assert steps(daemon, "modadd-bert", "val_loss") == [10, 20]
    assert steps(daemon, "modadd-bert", "val_acc") == [10, 20]
    # the end-of-training summary (a mean train_loss, runtimes) is not a step's value
    assert steps(daemon, "modadd-bert", "train_runtime") == []
    # observed every 5 steps: the word embeddings' Fourier metrics over Z_11
    assert steps(daemon, "modadd-bert", "embed.fourier_ipr") == [1, 6, 11, 16]
