"""Idiomatic hand-written PyTorch: ``nn.Sequential``, ``torch.optim.Adam``, a plain loop.

The dataset lives in memory as NCHW tensors, indexed per step with the shared rows; the model
starts from the shared weights (kernels to OIHW, the first dense layer's inputs reordered
from the canonical H, W, C flatten to torch's C, H, W). PyTorch's defaults otherwise
(threads, the optimizer's implementation); Adam's epsilon is added after bias correction, as
torch does (a negligible difference at 1e-8).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from protocol import EVAL_BATCH, Data


def torch_weights(w: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Canonical weights in ``nn.Sequential`` parameter order and layout."""
    fc1 = w["fc1/kernel"].reshape(7, 7, 36, 128).transpose(2, 0, 1, 3).reshape(1764, 128)
    return [w["conv1/kernel"].transpose(3, 2, 0, 1), w["conv1/bias"],
            w["conv2/kernel"].transpose(3, 2, 0, 1), w["conv2/bias"],
            fc1.T, w["fc1/bias"], w["fc2/kernel"].T, w["fc2/bias"]]


class TorchEager:
    def __init__(self, data: Data):
        import torch
        from torch import nn

        self.torch = torch
        self.model = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(16, 36, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
            nn.Flatten(), nn.Linear(1764, 128), nn.ReLU(), nn.Linear(128, 10),
        )
        with torch.no_grad():
            for p, value in zip(self.model.parameters(), torch_weights(data.weights)):
                p.copy_(torch.from_numpy(np.ascontiguousarray(value)))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.loss_fn = nn.CrossEntropyLoss()
        self.x = torch.from_numpy(data.train_x).permute(0, 3, 1, 2).contiguous()
        self.y = torch.from_numpy(data.train_y)
        self.test_x = torch.from_numpy(data.test_x).permute(0, 3, 1, 2).contiguous()
        self.test_y = torch.from_numpy(data.test_y)
        self.batches = torch.from_numpy(data.batches)

    def train(self, steps: int, on_step_end: Callable[[int], None]) -> None:
        self.model.train()
        for i in range(steps):
            idx = self.batches[i]
            images, labels = self.x[idx], self.y[idx]
            self.optimizer.zero_grad()
            loss = self.loss_fn(self.model(images), labels)
            loss.backward()
            self.optimizer.step()
            on_step_end(i)

    def evaluate(self) -> float:
        self.model.eval()
        correct = 0
        with self.torch.inference_mode():
            for i in range(0, len(self.test_x), EVAL_BATCH):
                pred = self.model(self.test_x[i:i + EVAL_BATCH]).argmax(1)
                correct += int((pred == self.test_y[i:i + EVAL_BATCH]).sum())
        return correct / len(self.test_x)


build = TorchEager
