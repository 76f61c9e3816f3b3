"""The state-tracking tasks (generators against their definitions written out here), the signed
control cell, sLSTM's official forget gate, and the long_range rows of a final-label task."""
import itertools
import math

import pandas as pd
import pytest
import torch

from bench.run.runner import run_point
from bench.tasks.registry import IGNORE, TASKS
from bench.tasks.state import MOD_OPS, S3, STATE_TEST_LENGTHS, modular_arithmetic_batch, parity_final_batch, word_s3_batch


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_parity_final_labels_the_parity_of_each_own_length():
    x, y, lengths = parity_final_batch(20, 300, gen(), 3)
    assert x.shape == (20, 300, 2) and y.shape == (300,)
    assert lengths.min() >= 3 and lengths.max() <= 20 and len(set(lengths.tolist())) > 10
    for b in range(300):
        L = int(lengths[b])
        bits = x[:L, b].argmax(-1)
        assert (x[:L, b].sum(-1) == 1).all() and (x[L:, b] == 0).all()   # one-hot, then padding
        assert int(y[b]) == int(bits.sum()) % 2


def test_modular_arithmetic_is_evaluated_with_precedence_at_every_number():
    """Against Python's own evaluation of the expression (precedence: * before + and -)."""
    x, y, lengths = modular_arithmetic_batch(15, 200, gen(), 1)
    tokens = x.argmax(-1)
    for b in range(200):
        own = int(lengths[b])
        assert own % 2 == 1 and (x[own:, b] == 0).all()        # ends on a number
        for t in range(0, own, 2):
            expr = "".join(str(int(k)) if k < 5 else MOD_OPS[int(k) - 5] for k in tokens[:t + 1, b])
            assert int(y[t, b]) == eval(expr) % 5
        assert (y[1:own:2, b] == IGNORE).all() and (y[own:, b] == IGNORE).all()


def test_word_problem_labels_the_running_product_of_permutations():
    x, y, lengths = word_s3_batch(12, 100, gen(), 1)
    elements = x.argmax(-1)
    for b in range(100):
        p = tuple(range(3))
        for t in range(int(lengths[b])):
            g = S3[int(elements[t, b])]
            p = tuple(g[p[k]] for k in range(3))   # apply the product so far, then g_t
            assert S3.index(p) == int(y[t, b])
        assert (y[int(lengths[b]):, b] == IGNORE).all()


def test_s3_is_non_abelian_and_has_parity_as_a_quotient():
    """What the control relies on: S3 does not commute (no diagonal transition tracks it) and the
    sign of a permutation (its parity) is a homomorphism a signed diagonal cell can track."""
    from bench.tasks.state import S3_TABLE
    assert any(S3_TABLE[a, b] != S3_TABLE[b, a] for a, b in itertools.product(range(6), repeat=2))

    def sign(p):
        return (-1) ** sum(p[i] > p[j] for i in range(3) for j in range(i + 1, 3))
    for a, b in itertools.product(range(6), repeat=2):
        assert sign(S3[int(S3_TABLE[a, b])]) == sign(S3[a]) * sign(S3[b])


def test_hs97_lengths_follow_the_paper():
    from bench.tasks.long_lag import adding_hs97_spread_batch
    x, y, lengths = adding_hs97_spread_batch(100, 500, gen(), 0.1)
    assert x.shape[0] == 110 and lengths.min() >= 100 and lengths.max() <= 110
    for b in range(0, 500, 7):
        L = int(lengths[b])
        marks = x[:L, b, 1]
        assert marks[L - 1] == -1 and (x[L:, b] == 0).all()
        marked = (marks == 1).nonzero().flatten()
        assert len(marked) == 2 and marked[0] < 10 and marked[1] < 100 // 2 - 1
        assert torch.isclose(y[b, 0], 0.5 + x[marked, b, 0].sum() / 4)


@pytest.mark.parametrize("task", [t for t, d in TASKS.items() if d.generalise == "lengths"])
def test_state_task_point_rows(make_cfg, tmp_path, task):
    """A short run: its evaluations, then the final-step accuracy at every test length, scaled so
    that chance is 0 and perfect 1."""
    cfg = make_cfg(["measure=long_range", f"measure.task={task}", "data.seq_len=12", "measure.min_len=1",
                    "model.hidden_size=8", "data.batch_size=8", "measure.steps=20", "measure.eval_every=10",
                    "measure.test_size=16", "model.cell=lstm", f"results_dir={tmp_path}"])
    assert run_point(cfg) == "ok"
    df = pd.concat(pd.read_parquet(p) for p in tmp_path.glob("*.parquet"))
    lr = df[df["measure"] == "long_range"]
    assert list(lr["step"]) == [0, 10, 20] and not lr["diverged"].any()
    gen_rows = df[df["measure"] == "length_generalisation"].sort_values("test_len")
    assert list(gen_rows["test_len"]) == list(STATE_TEST_LENGTHS)
    chance = TASKS[task].chance
    assert ((gen_rows["scaled_acc"] - (gen_rows["test_acc"] - chance) / (1 - chance)).abs() < 1e-12).all()
    assert gen_rows["beyond_training"].tolist() == [n > 12 for n in STATE_TEST_LENGTHS]


def test_varying_lengths_refuse_a_bidirectional_model(make_cfg):
    from bench.config.errors import ConfigError
    from bench.config.validate import validate
    with pytest.raises(ConfigError, match="model.bidirectional=true with sequences of varying length"):
        validate(make_cfg(["measure=long_range", "measure.task=parity_final", "measure.min_len=3",
                           "data.seq_len=20", "model.bidirectional=true"]))
    with pytest.raises(ConfigError, match=r"measure.min_len=3: only for measure.task in"):
        validate(make_cfg(["measure=long_range", "measure.task=adding", "measure.min_len=3"]))
    with pytest.raises(ConfigError, match="measure.min_len=30: must be between 1 and data.seq_len=20"):
        validate(make_cfg(["measure=long_range", "measure.task=parity_final", "measure.min_len=30",
                           "data.seq_len=20"]))


def test_signed_transition_lies_in_minus_one_one_and_tracks_parity_by_construction():
    """a = 1 - 2z: z = 0 keeps the state, z = 1 flips it. With weights that send bit 1 to z = 1
    and bit 0 to z = 0, h tracks parity exactly at any length (h in {0, c}); the unsigned minGRU's
    a = 1 - z in (0, 1) cannot flip a sign."""
    from bench.cells.build import build_model
    m = build_model("mingru_signed", 2, 1).double()
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.tensor([[-40.0, 40.0], [0.0, 0.0]]))  # k: bit 0 -> -40, 1 -> 40
        m.bias_ih_l0.zero_()                                             # h~ = 0: g = 1/2
    bits = torch.randint(0, 2, (500, 3), generator=gen(4))
    h, _ = m(torch.nn.functional.one_hot(bits, 2).double())
    parity = torch.cumsum(bits, 0) % 2
    assert torch.allclose(h[..., 0], 0.5 * parity.double(), atol=1e-9)
    a, _ = m.transition(torch.randn(1000, 2, dtype=torch.float64) * 5)
    assert (a > -1).all() and (a < 1).all() and (a < 0).any()


def test_slstm_official_forget_gate_init():
    from bench.cells.build import build_model
    from bench.cells.xlstm import powerlaw_forget_bias
    m = build_model("slstm", 3, 16, forget_gate="sigmoid")
    b = m.bias_ih_l0.detach()
    assert torch.allclose(b[16:32].double(), powerlaw_forget_bias(16), atol=1e-6)
    assert b[16].item() == pytest.approx(5.0) and b[31].item() == pytest.approx(-7.0)
    assert (b[:16] == 0).all() and (b[32:] == 0).all()
    assert (m.weight_hh_l0 == 0).all() and (m.bias_hh_l0 == 0).all()
    assert build_model("slstm", 3, 16).forget_gate == "exponential"


def test_forget_gate_is_refused_for_other_cells(make_cfg):
    from bench.config.errors import ConfigError
    from bench.config.validate import validate
    with pytest.raises(ConfigError, match="model.forget_gate=sigmoid with model.cell=lstm: only for model.cell in"):
        validate(make_cfg(["model.cell=lstm", "model.forget_gate=sigmoid"]))


def test_the_horizon_table_lists_tasks_then_cells_in_registry_order():
    """Rows in the order the registries give (tasks, then cells), whatever order the runs came in;
    each seed's horizon is its first length below 0.9, inf where it tracks every length."""
    from analysis.reduce.state import summary
    rows = []
    for task, cell in [("word_s3", "mingru"), ("parity_final", "lstm"), ("word_s3", "rnn"), ("parity_final", "mingru")]:
        for seed in (100, 101):
            for n in STATE_TEST_LENGTHS:
                acc = 1.0 if cell in ("lstm", "rnn") or n < 64 else 0.5
                rows.append({"task": task, "cell": cell, "seed": seed, "test_len": n, "scaled_acc": acc,
                             "solved": True, "measure_lr": 0.01, "on_edge": False, "budget": 5000})
    s = summary(pd.DataFrame(rows))
    assert list(zip(s["task"], s["cell"])) == [("parity_final", "lstm"), ("parity_final", "mingru"),
                                                ("word_s3", "rnn"), ("word_s3", "mingru")]
    assert s["horizon_median"].tolist() == [math.inf, 64, math.inf, 64] and s["tracking"].tolist() == [2, 0, 2, 0]
