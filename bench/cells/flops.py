"""The matmul FLOPs of one training pass of a G-gate cell, as FlopCounterMode counts them."""
from __future__ import annotations

from typing import Tuple


def step_flops(gates: int, input_size: int, hidden_size: int, num_layers: int,
               bidirectional: bool, seq_len: int, batch_size: int, recurrent: bool = True) -> Tuple[int, int]:
    """(forward, backward) matmul FLOPs of one training pass, as FlopCounterMode counts them
    on aten's native loop (tests/test_throughput.py holds it there within 1%); for the fused
    kernels (oneDNN, cuDNN) that hide their matmuls from the counter.

    Per layer k and direction, G gate blocks, in_k = I (k = 0) or D*H:
      forward  2*G*H*(in_k + H) * T * B                      (input and recurrent matmuls)
      backward weight gradients, as many FLOPs as the forward; the input gradient
               2*G*H*in_k * T * B except at layer 0 (x does not require grad); the recurrent
               gradient 2*G*H*H * (T-1) * B (the initial state does not require grad).
    Gate nonlinearities and the optimiser step are left out, as the counter leaves them out.
    `recurrent=False` (the diagonal cells): no W_hh, so no recurrent matmuls or gradients.
    """
    D, G, H, T, B = (2 if bidirectional else 1), gates, hidden_size, seq_len, batch_size
    fwd = bwd = 0
    for k in range(num_layers):
        in_k = input_size if k == 0 else D * H
        rec = H if recurrent else 0
        layer_fwd = 2 * G * H * (in_k + rec) * T * B
        fwd += D * layer_fwd
        bwd += D * (layer_fwd + (2 * G * H * in_k * T * B if k > 0 else 0) + 2 * G * H * rec * (T - 1) * B)
    return fwd, bwd
