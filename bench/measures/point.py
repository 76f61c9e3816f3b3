"""A measured point: the composed config with device, dtype and backend resolved."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from bench.cells.build import build_model


@dataclass
class Point:
    cfg: DictConfig
    device: str          # "cpu" | "cuda"
    dtype: torch.dtype
    backend: str         # recorded kernel family: onednn | cudnn | native

    @property
    def cell(self) -> str:
        return self.cfg.model.cell

    @property
    def seed(self) -> int:
        return self.cfg.seed

    @property
    def seq_len(self) -> int:
        return self.cfg.data.seq_len

    @property
    def batch_size(self) -> int:
        return self.cfg.data.batch_size

    @property
    def input_size(self) -> int:
        return self.cfg.model.input_size

    def build_model(self, input_size: int | None = None) -> nn.Module:
        """The registry's model, seeded by `seed`, on this point's device and dtype."""
        m = self.cfg.model
        torch.manual_seed(self.seed)
        model = build_model(m.cell, input_size or m.input_size, m.hidden_size, m.num_layers,
                            m.bidirectional, m.forget_bias, init=m.init, gain=m.gain,
                            nonlinearity=m.nonlinearity, scan=m.get("scan"), forget_gate=m.get("forget_gate"),
                            path=m.get("path"), chunk=m.get("chunk"),
                            chrono_tmax=m.chrono_tmax or self.seq_len)
        return model.to(device=self.device, dtype=self.dtype)


def synchronize(device: str) -> None:
    """Wait for the device's queued work, so that a clock read after it times the work."""
    if device == "cuda":
        torch.cuda.synchronize()


def seeded_normal(shape: Tuple[int, ...], seed: int, dtype: torch.dtype, device: str) -> Tensor:
    """Standard-normal tensor drawn on the CPU from its own generator (same values on any device).

    Must not be changed, only appended to: stored records depend on these exact values.
    """
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
