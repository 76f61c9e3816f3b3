"""Long-lag tasks: generators, the measure's rows, and (slow) the recipe's headline result."""
import math

import pandas as pd
import pytest
import torch

from bench.run.runner import run_point
from bench.tasks.long_lag import (
    COPY_ALPHABET,
    adding_batch,
    adding_hs97_batch,
    adding_hs97_spec,
    adding_spec,
    copy_batch,
    copy_spec,
)
from bench.tasks.selection import selective_copy_batch, selective_copy_spec
from bench.tasks.state import PARITY_TEST_FACTORS, parity_batch, parity_spec


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


def test_parity_is_the_running_parity_of_the_bits():
    x, y = parity_batch(30, 64, torch.Generator().manual_seed(0))
    assert x.shape == (30, 64, 2) and y.shape == (30, 64)
    bits = x.argmax(-1)
    assert (x.sum(-1) == 1).all() and 0.4 < bits.double().mean() < 0.6
    for t in (0, 7, 29):
        assert (y[t] == bits[: t + 1].sum(0) % 2).all()
    assert parity_spec(30).baseline_loss == pytest.approx(math.log(2))


def test_selective_copy_layout():
    """S tokens at distinct, increasing, varying positions among the first T-1 steps; the
    delimiter at T-1; recall of the tokens in order in the last S steps."""
    T, S, B = 40, 4, 256
    x, y = selective_copy_batch(T, B, torch.Generator().manual_seed(0), S)
    assert x.shape == (T + S, B, COPY_ALPHABET + 2) and y.shape == (T + S, B)
    tokens = x.argmax(-1)
    data = (tokens[: T - 1] >= 1) & (tokens[: T - 1] <= COPY_ALPHABET)
    assert (data.sum(0) == S).all() and (tokens[T - 1] == COPY_ALPHABET + 1).all()
    assert (tokens[T:] == 0).all() and (y[:-S] == 0).all()
    for b in range(B):
        assert y[-S:, b].tolist() == tokens[: T - 1, b][data[:, b]].tolist()   # in order
    first = data.float().argmax(0)
    assert first.unique().numel() > 10                          # the spacing varies
    assert selective_copy_spec(T, S).baseline_loss == pytest.approx(S * math.log(8) / (T + S))
    with pytest.raises(ValueError, match="selective_copy needs seq_len > measure.copy_symbols=4"):
        selective_copy_batch(4, 2, torch.Generator(), 4)


def test_selective_copy_too_short_is_refused(make_cfg):
    from bench.config.errors import ConfigError
    from bench.config.validate import validate
    with pytest.raises(ConfigError, match="data.seq_len=5: selective_copy needs seq_len > measure.copy_symbols=10"):
        validate(make_cfg(["measure=long_range", "measure.task=selective_copy", "data.seq_len=5"]))


def test_adding_hs97_follows_the_paper():
    """Hochreiter & Schmidhuber (1997): values in [-1, 1]; X1 marked in the first 10 steps, X2
    in the first T/2 - 1, never the same step; first and last steps marked -1 unless chosen;
    target 0.5 + (X1 + X2) / 4; the constant predictor 0.5 scores var = 1/24."""
    T = 40
    x, y = adding_hs97_batch(T, 4096, torch.Generator().manual_seed(0))
    values, markers = x[..., 0], x[..., 1]
    assert values.min() >= -1 and values.max() <= 1 and values.min() < -0.9
    marked = markers == 1
    assert (marked.sum(0) == 2).all()
    pos = marked.float().argmax(0)                                   # first marked step
    assert (pos < 10).all() and (marked[T // 2 - 1:].sum(0) == 0).all()
    assert ((markers[0] == -1) | marked[0]).all() and (markers[-1] == -1).all()
    assert torch.allclose(0.5 + (values * marked).sum(0) / 4, y[:, 0])
    assert ((y - 0.5) ** 2).mean().item() == pytest.approx(adding_hs97_spec(T).baseline_loss, rel=0.1)
    assert y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("task", ["adding", "copy", "adding_hs97", pytest.param("parity", marks=pytest.mark.slow),
                                  "selective_copy"])
def test_long_range_point_rows(make_cfg, tmp_path, task):
    cfg = make_cfg(["measure=long_range", f"measure.task={task}", "model.hidden_size=8",
                    "data.batch_size=8", "data.seq_len=24", "measure.steps=20", "measure.eval_every=10",
                    "measure.test_size=16", "measure.copy_symbols=4", f"results_dir={tmp_path}", "model.cell=lstm"])
    assert run_point(cfg) == "ok"
    df = pd.read_parquet(next(tmp_path.glob("*.parquet")))
    lr = df[df["measure"] == "long_range"]
    assert lr["step"].tolist() == [0, 10, 20] and (lr["task"] == task).all()
    assert lr["elapsed_s"].is_monotonic_increasing and lr["test_loss"].notna().all()
    if task == "adding_hs97":
        assert lr["test_acc"].between(0, 1).all()  # fraction of sequences within 0.04
    grads = df[df["measure"] == "gradients"]
    assert sorted(grads["condition"].unique()) == ["init", "trained"]
    assert (grads["profile_dtype"] == "float64").all()
    assert (df["input_size"] == (10 if "copy" in task else 2)).all()
    T = {"copy": 32, "selective_copy": 28}.get(task, 24)
    gen = df[df["measure"] == "length_generalisation"]
    if task == "parity":
        assert gen["test_len"].tolist() == [f * 24 for f in PARITY_TEST_FACTORS]
        assert gen["test_acc"].between(0, 1).all() and gen["test_acc_beyond"].between(0, 1).all()
        assert (gen["test_sequences"] == 16).all()
    else:
        assert gen.empty
    kinds = grads.groupby(["condition", "loss_kind"])["t"].nunique().to_dict()
    assert kinds == {("init", "random_projection"): T, ("trained", "random_projection"): T,
                     ("trained", "task_loss"): T}
    task_rows = grads[grads["loss_kind"] == "task_loss"]
    assert (task_rows["grad_norm"] > 0).all() and task_rows["jacobian_decay_per_step"].isna().all()


def test_task_loss_profile_is_the_gradient_of_the_task_loss(make_cfg):
    """The task_loss profile equals dL_task/dx computed directly through the trained model."""
    from bench.measures.long_range import TaskModel, profile
    torch.manual_seed(0)
    core = torch.nn.LSTM(2, 6)
    model = TaskModel(core, 1, per_step=False)
    x, y = adding_batch(12, 5, torch.Generator().manual_seed(3))
    rows = profile(core, x, 0, "trained", False, (model, torch.nn.functional.mse_loss, y, None))
    xd = x.double().requires_grad_(True)
    m64 = TaskModel(core, 1, per_step=False)
    m64.load_state_dict(model.state_dict())
    torch.nn.functional.mse_loss(m64.double()(xd), y.double()).backward()
    direct = xd.grad.norm(dim=-1).log10().mean(dim=1)
    got = torch.tensor([r["log10_grad_norm"] for r in sorted(rows, key=lambda r: r["t"])], dtype=torch.float64)
    assert torch.allclose(got, direct, rtol=0, atol=1e-12)


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


def test_lstm_learns_parity_and_keeps_it_at_ten_times_the_length(make_cfg, tmp_path):
    """The state-tracking reference point: LSTM (hidden 64) solves running parity at L=20 within
    1000 steps (about 200 on this recipe) and is still right at 10L. Deterministic on CPU."""
    cfg = make_cfg(["measure=long_range", "measure.task=parity", "model.cell=lstm", "data.seq_len=20",
                    "measure.steps=1000", "measure.test_size=256", "threads=1", f"results_dir={tmp_path}"])
    assert run_point(cfg) == "ok"
    df = pd.read_parquet(next(tmp_path.glob("*.parquet")))
    assert df[df["measure"] == "long_range"]["solved"].any()
    gen = df[df["measure"] == "length_generalisation"].set_index("test_factor")
    assert gen.loc[10, "test_acc"] > 0.95 and gen.loc[10, "test_acc_beyond"] > 0.95


def test_lstm1997_keeps_its_forget_gate_open_through_training():
    """The 1997 cell: f = 1 before and after Adam steps (its forget block never moves), so the
    cell state is the constant error carousel c_t = c_{t-1} + i_t g_t, checked by an unroll."""
    from bench.cells.build import build_model
    torch.manual_seed(0)
    m = build_model("lstm1997", 3, 6)
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    for _ in range(5):
        out, _ = m(torch.randn(12, 4, 3))
        out.pow(2).sum().backward()
        opt.step()
        opt.zero_grad()
    H = 6
    assert (m.bias_ih_l0[H:2 * H] == m.FORGET_OPEN).all()
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_hh_l0"):
        assert (getattr(m, name)[H:2 * H] == 0).all()
    m = m.double()
    x = torch.randn(10, 2, 3, dtype=torch.float64)
    h = c = torch.zeros(2, H, dtype=torch.float64)
    for x_t in x:
        i, _, g, o = (x_t @ m.weight_ih_l0.T + m.bias_ih_l0 + h @ m.weight_hh_l0.T + m.bias_hh_l0).chunk(4, -1)
        c = c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
    assert torch.allclose(m(x)[0][-1], h, atol=1e-10)


def test_diverged_training_is_recorded_where_it_diverged(make_cfg, tmp_path):
    """A learning rate that blows the loss up: training stops at the first non-finite loss, the
    last row names that step and loss, and no trained profile is summarised from a broken model."""
    cfg = make_cfg(["measure=long_range", "model.cell=rnn", "model.nonlinearity=relu", "model.init=identity",
                    "model.gain=3", "data.seq_len=100", "model.hidden_size=8", "data.batch_size=8",
                    "measure.steps=200", "measure.eval_every=50", "measure.test_size=16", "measure.clip=1e9",
                    "measure.lr=1000", f"results_dir={tmp_path}"])
    assert run_point(cfg) == "ok"
    df = pd.concat(pd.read_parquet(p) for p in tmp_path.glob("*.parquet"))
    lr = df[df["measure"] == "long_range"].sort_values("step")
    last = lr.iloc[-1]
    assert bool(last["diverged"]) and last["diverged_step"] == last["step"] == 0  # 3^100 overflows float32
    assert not math.isfinite(last["train_loss"]) and not lr.iloc[:-1]["diverged"].any()
    grads = df[df["measure"] == "gradients"]
    assert set(grads["condition"]) == {"init"}        # no trained profile of a diverged model
