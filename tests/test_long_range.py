"""Long-lag tasks: generators, the measure's rows, and (slow) the recipe's headline result."""
import math

import pandas as pd
import pytest
import torch

from bench.run import run_point
from bench.tasks import COPY_ALPHABET, adding_batch, adding_spec, copy_batch, copy_spec


def test_adding_problem_markers_and_target():
    x, y = adding_batch(20, 256, torch.Generator().manual_seed(0))
    assert x.shape == (20, 256, 2) and y.shape == (256, 1)
    markers = x[..., 1]
    assert (markers.sum(0) == 2).all()
    assert (markers[:10].sum(0) == 1).all() and (markers[10:].sum(0) == 1).all()  # one per half
    assert torch.allclose((x[..., 0] * markers).sum(0), y[:, 0])
    assert adding_spec(20).baseline_loss == pytest.approx(1 / 6)
    # the constant predictor (mean 1) scores about var(U + U) = 1/6
    _, big = adding_batch(20, 20000, torch.Generator().manual_seed(1))
    assert ((big - 1) ** 2).mean().item() == pytest.approx(1 / 6, rel=0.03)


def test_copy_memory_layout():
    T, S = 15, 10
    x, y = copy_batch(T, 8, torch.Generator().manual_seed(0), S)
    assert x.shape == (T + 2 * S, 8, COPY_ALPHABET + 2) and y.shape == (T + 2 * S, 8)
    tokens = x.argmax(-1)
    assert (tokens[:S] >= 1).all() and (tokens[:S] <= COPY_ALPHABET).all()
    assert (tokens[T + S - 1] == COPY_ALPHABET + 1).all()          # the delimiter
    assert (y[-S:] == tokens[:S]).all() and (y[:-S] == 0).all()     # recall after the gap
    assert copy_spec(T, S).baseline_loss == pytest.approx(S * math.log(8) / (T + 2 * S))


@pytest.mark.parametrize("task", ["adding", "copy"])
def test_long_range_point_rows(make_cfg, tmp_path, task):
    cfg = make_cfg(["measure=long_range", f"measure.task={task}", "model.hidden_size=8",
                    "data.batch_size=8", "data.seq_len=10", "measure.steps=20", "measure.eval_every=10",
                    "measure.test_size=16", f"results_dir={tmp_path}", "model.cell=lstm"])
    assert run_point(cfg) == "ok"
    df = pd.read_parquet(next(tmp_path.glob("*.parquet")))
    lr = df[df["measure"] == "long_range"]
    assert lr["step"].tolist() == [0, 10, 20] and (lr["task"] == task).all()
    assert lr["elapsed_s"].is_monotonic_increasing and lr["test_loss"].notna().all()
    grads = df[df["measure"] == "gradients"]
    assert sorted(grads["condition"].unique()) == ["init", "trained"]
    assert (grads["profile_dtype"] == "float64").all() and (df["input_size"] == (2 if task == "adding" else 10)).all()
    T = 10 if task == "adding" else 30
    assert (grads.groupby("condition")["t"].nunique() == T).all()


@pytest.mark.slow
def test_recipe_lstm_solves_adding_at_100_and_rnn_does_not(make_cfg, tmp_path):
    status = {}
    for cell in ("lstm", "rnn"):
        cfg = make_cfg(["measure=long_range", f"model.cell={cell}", "data.seq_len=100",
                        f"results_dir={tmp_path}"])
        run_point(cfg)
    df = pd.concat(pd.read_parquet(p) for p in tmp_path.glob("*.parquet"))
    lr = df[df["measure"] == "long_range"].sort_values("step")
    for cell, g in lr.groupby("cell"):
        status[cell] = (bool(g["solved"].any()), g["test_loss"].iloc[-1])
    assert status["lstm"][0] and status["lstm"][1] < 0.01
    assert not status["rnn"][0] and status["rnn"][1] > 0.1
