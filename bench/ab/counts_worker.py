"""One side of `bench.counts`: every registered cell's training step, counted under callgrind.

Started by head's `bench.counts` as `valgrind --tool=callgrind --collect-atstart=no ... python -c
<bootstrap> REQUEST` with PYTHONPATH set to the side's code, so that the cells (bench.registry's
`REGISTRY` and `build_model`, both there since the registry began) are that side's own while
the step below is head's: both sides count the same step of their own cells. REQUEST (JSON):
`code`, `manifest` (where to write it), `hooks` (the client-request library, or empty) and `cells`
(null: all). torch is imported once. Collection is off everywhere except around each counted
step, which the hooks switch on and close with one dump each, so dump n holds the instructions
of exactly one step. With the library (`bench.counts` compiles it), valgrind starts with
instrumentation off too: import and warm-up run at valgrind's base speed, and instrumentation is
on only while a cell's steps are counted. Without it, torch's own bindings toggle collection (as
`torch.utils.benchmark.Timer.collect_callgrind` does) and everything runs instrumented. The
manifest (JSON) maps each cell to its dump numbers, or to the error that stopped it; the runner
reads the counts from the dumps. Nothing here prints to stdout.
"""
from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import List, Optional, Sequence

# The counted step's shape, fixed (a change moves every count: bump VERSION). Tiny, so that one
# step is a few million instructions: under callgrind (~50x slower) every cell's step counts in
# seconds, and what dominates the job is importing torch.
SHAPE = {"input_size": 16, "hidden_size": 32, "seq_len": 16, "batch_size": 4}
SEED = 0
VERSION = 1
# Uncounted steps first: the first calls build oneDNN primitives, grow the allocator's pools and
# let CPython 3.11+ quicken and specialise the bytecode (which alone adds ~1.4% to a step).
WARMUP = 10
# Counted steps per cell, each its own dump; the runner takes their median, because glibc's
# malloc moves a single step by up to ~0.6% (the free lists' state differs from step to step).
REPEATS = 10


def step_fn(model, torch):
    """One training step without the optimiser: forward over x (T, B, I), MSE of the readout
    h_{T-1} (B, H) against a seeded target, backward into the parameters' .grad."""
    gen = torch.Generator().manual_seed(SEED)
    T, B, I, H = SHAPE["seq_len"], SHAPE["batch_size"], SHAPE["input_size"], SHAPE["hidden_size"]
    x = torch.randn((T, B, I), generator=gen)
    target = torch.randn((B, H), generator=gen)

    def step():
        out, _ = model(x)
        torch.nn.functional.mse_loss(out[-1, :, :H], target).backward()
    return step


class Hooks:
    """Callgrind's client requests: from the compiled library `lib`, or torch's bindings."""

    def __init__(self, lib: Optional[str], torch) -> None:
        if lib:
            h = ctypes.CDLL(lib)
            self.start, self.stop, self.zero = h.cg_start, h.cg_stop, h.cg_zero
            self.toggle, self.toggle_dump = h.cg_toggle, h.cg_toggle_dump
        else:  # instrumentation is on from the start; zeroing is not needed before a toggle
            self.start = self.stop = self.zero = lambda: None
            self.toggle, self.toggle_dump = torch._C._valgrind_toggle, torch._C._valgrind_toggle_and_dump_stats


def count_cell(name, build_model, torch, hooks: Hooks, dumps: List[int]) -> List[int]:
    """Warm-up, then REPEATS counted steps of one cell; their dump numbers. `dumps` (one int)
    holds the number of dumps made so far, kept right even when a step raises."""
    torch.manual_seed(SEED)
    model = build_model(name, SHAPE["input_size"], SHAPE["hidden_size"])
    step = step_fn(model, torch)
    for _ in range(WARMUP):
        step()
        model.zero_grad(set_to_none=True)
    out = []
    hooks.start()
    hooks.zero()  # what ran uninstrumented before leaves nothing in the next dump
    try:
        for _ in range(REPEATS):
            model.zero_grad(set_to_none=True)  # every counted backward allocates its .grad afresh
            gc.collect()
            gc.disable()  # a collection inside the step would count the whole heap's objects
            hooks.toggle()
            try:
                step()
            finally:  # collection off again, and the dump made, whatever the step did
                hooks.toggle_dump()  # one C call: no Python runs between the two requests
                dumps[0] += 1
                gc.enable()
            out.append(dumps[0])
    finally:
        hooks.stop()
    return out


def main(code: Path, manifest: Path, lib: Optional[str] = None, only: Optional[Sequence[str]] = None) -> int:
    """Counts every registered cell (or those of `only` that this side has) into dumps and
    writes the manifest: env, and per cell its dump numbers or its error, and its seconds."""
    t0 = time.perf_counter()
    import torch

    try:
        from bench.cells.build import build_model
        from bench.cells.registry import REGISTRY
    except ImportError:  # a base commit from before the cells folder (bench/registry.py)
        from bench.registry import REGISTRY, build_model

    torch.set_num_threads(1)
    if not lib and not torch._C._valgrind_supported_platform():
        raise SystemExit(f"torch {torch.__version__} was built without valgrind's client requests")
    hooks = Hooks(lib, torch)
    gc.freeze()  # the imports' objects: never scanned again, so each gc.collect() below is cheap
    env = {"torch_version": torch.__version__, "python_version": sys.version.split()[0],
           "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
           "seed": SEED, "shape": SHAPE, "warmup": WARMUP, "repeats": REPEATS, "version": VERSION,
           "pythonhashseed": os.environ.get("PYTHONHASHSEED"), "code": str(code),
           "hooks": "client requests" if lib else "torch bindings",
           "import_seconds": round(time.perf_counter() - t0, 1)}
    cells, dumps = {}, [0]
    for name in [n for n in REGISTRY if only is None or n in only]:
        t1 = time.perf_counter()
        try:
            cells[name] = {"dumps": count_cell(name, build_model, torch, hooks, dumps)}
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            cells[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        cells[name]["seconds"] = round(time.perf_counter() - t1, 1)
    manifest.write_text(json.dumps({"env": env, "cells": cells}, indent=1))
    return 0


if __name__ == "__main__":
    request = json.loads(sys.argv[1])
    sys.exit(main(Path(request["code"]), Path(request["manifest"]), request["hooks"] or None, request["cells"]))
