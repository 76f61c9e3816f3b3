"""The roofline of a training step (bench/measures/throughput.py records it with every point):
the device's achievable matmul peak and memory bandwidth, each measured in the point's own run,
and the bytes a step must move at least. The bound of a step is
flops / calib_flops_per_s + compulsory_bytes / calib_bytes_per_s.
"""
from __future__ import annotations

import statistics
import time

import torch

from bench.cells.registry import spec
from bench.measures.point import Point, seeded_normal, synchronize

CALIB_N = {"cpu": 512, "cuda": 8192}  # square matmul size for the peak calibration
# Elements per array of the bandwidth triad: 64 MiB float32 arrays on CPU, beyond any core's L2
# and as large as the largest tensors of a T=4096 step (192 MiB in all); 512 MiB on GPU.
TRIAD_N = {"cpu": 2 ** 24, "cuda": 2 ** 27}



def calibrate_matmul(device: str, dtype: torch.dtype, reps: int = 10) -> float:
    """Achieved FLOP/s of an N x N x N matmul (median of `reps`), the device's measured peak."""
    n = CALIB_N[device]
    a = seeded_normal((n, n), 1, dtype, device)
    b = seeded_normal((n, n), 2, dtype, device)
    times = []
    for i in range(reps + 2):
        synchronize(device)
        t0 = time.perf_counter()
        a @ b
        synchronize(device)
        if i >= 2:  # two warm-ups
            times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times)


def calibrate_bandwidth(device: str, dtype: torch.dtype, reps: int = 6) -> float:
    """Memory bandwidth, bytes/s, of a STREAM triad a = b + s c over TRIAD_N elements (median of
    `reps`, one warm-up that also faults the output's pages in), counted as STREAM counts it:
    3 arrays moved once (no write-allocate). Constant inputs: the values do not matter, and
    drawing 2 x 16M normals would cost more than the triad."""
    n = TRIAD_N[device]
    b = torch.full((n,), 1.0, dtype=dtype, device=device)
    c = torch.full((n,), 2.0, dtype=dtype, device=device)
    a = torch.empty_like(b)
    times = []
    for i in range(reps + 1):
        synchronize(device)
        t0 = time.perf_counter()
        torch.add(b, c, alpha=3.0, out=a)
        synchronize(device)
        if i >= 1:
            times.append(time.perf_counter() - t0)
    return 3 * n * a.element_size() / statistics.median(times)


def compulsory_bytes(point: Point) -> int:
    """Bytes one training step must move at least, when the input projection is materialised (as
    every path here and oneDNN do) and all else is one fused pass forward and one backward: per
    token, layer k (input width in_k) and direction, with G gate blocks of H and S state tensors,
      forward   read the input, write the projection; read it, write the states   in_k + 2GH + SH
      backward  read projection and states, write the projection's gradient     GH + SH + GH
                weight gradient: read the input and that gradient                in_k + GH
                the input gradient below layer 0: read it again, write dx        GH + in_k
                the output's gradient where it is dense (below the top layer, or measure.loss=every)  H
    times the dtype's size; the weights are left out (they stay in cache). For the LRU (G=1, S=2)
    it leaves out its H x H readout's activations: a looser bound."""
    m, entry = point.cfg.model, spec(point.cell)
    D, H, G, S = (2 if m.bidirectional else 1), m.hidden_size, entry.gates, entry.state_size
    dense_top = point.cfg.measure.get("loss", "last") == "every"
    elements = 0
    for k in range(m.num_layers):
        in_k = m.input_size if k == 0 else D * H
        per = 2 * in_k + 5 * G * H + 2 * S * H + (G * H + in_k if k > 0 else 0)
        per += H if (k < m.num_layers - 1 or dense_top) else 0
        elements += D * per
    return elements * point.seq_len * point.batch_size * torch.empty((), dtype=point.dtype).element_size()
