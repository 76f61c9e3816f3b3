"""Instruction-count regression tracking (`make ci-counts`): the verdict on synthetic counts
(threshold, improvements, fail closed, new cells, unusable input), the history, the runner's
dump reading and refusals, and the worker's step on every registered cell (no valgrind needed;
the one test that runs valgrind is `slow`)."""
import json
import shutil
import subprocess
import sys

import pytest

from analysis.ci import counts as verdict
from analysis.history import main as history_main
from bench.ab import counts as runner
from bench.ab import counts_worker as worker
from bench.cells.registry import REGISTRY

CELLS = {"rnn": 3_934_000, "lstm": 2_295_000, "gru": 10_528_000}


def steps(median, rel=0.003, n=10, malloc=0.2):
    """A cell's entry: n per-step counts around `median` outside malloc, spread over +-rel/2,
    and the malloc internals' share of each step on top (so `counts` is the total)."""
    outside = [round(median * (1 + rel * (k / (n - 1) - 0.5))) for k in range(n)]
    inside = [round(c * malloc) for c in outside]
    return {"counts": [o + i for o, i in zip(outside, inside)], "malloc": inside}


def write(tmp_path, base=None, head=None, name="c"):
    """A bench.counts directory; base/head: {cell: median | {"error": ...} | raw entry}."""
    def side(cells):
        return {"env": {"torch_version": "test", "threads": 1},
                "cells": {c: (steps(v) if isinstance(v, int) else v) for c, v in cells.items()}}
    d = tmp_path / name
    d.mkdir()
    meta = {"base": "HEAD~1 (abc)", "head": f"working tree (def{name})", "base_sha": "abc", "head_sha": f"def{name}",
            "seconds": 1.0, "sides": {"base": side(base or CELLS), "head": side(head or CELLS)}}
    (d / "counts.json").write_text(json.dumps(meta))
    return d


def judge(d, capsys, *extra):
    code = verdict.main([str(d), *extra])
    io = capsys.readouterr()
    return code, io.out + io.err


def rows(text):
    """{cell: verdict} from the printed table."""
    out = {}
    for line in text.splitlines():
        if line.startswith("| instructions "):
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[cells[0].split()[-1]] = cells[-1]
    return out


def test_threshold_is_set_from_the_measured_spread():
    assert 2 * verdict.SPREAD_MAX <= verdict.THRESHOLD <= 5 * verdict.SPREAD_MAX


def test_identical_counts_are_ok(tmp_path, capsys):
    code, text = judge(write(tmp_path), capsys)
    assert code == 0 and set(rows(text).values()) == {"ok"}
    assert "no regression; 3 of 3 cells judged" in text


def test_a_two_percent_plant_is_flagged_on_that_cell_only(tmp_path, capsys):
    code, text = judge(write(tmp_path, head={**CELLS, "gru": round(CELLS["gru"] * 1.02)}), capsys)
    assert code == 1
    assert rows(text) == {"rnn": "ok", "lstm": "ok", "gru": "REGRESSION"}


def test_the_threshold_is_the_boundary(tmp_path, capsys):
    t = verdict.THRESHOLD
    below = write(tmp_path, head={**CELLS, "lstm": round(CELLS["lstm"] * (1 + 0.9 * t))}, name="below")
    above = write(tmp_path, head={**CELLS, "lstm": round(CELLS["lstm"] * (1 + 1.1 * t))}, name="above")
    assert judge(below, capsys)[0] == 0
    assert judge(above, capsys)[0] == 1
    assert judge(above, capsys, "--threshold", str(2 * t))[0] == 0


def test_malloc_internals_alone_are_shown_not_judged(tmp_path, capsys):
    """The heap's state moves glibc's free-list work, not the code: judged outside it."""
    code, text = judge(write(tmp_path, head={**CELLS, "lstm": steps(CELLS["lstm"], malloc=0.25)}), capsys)
    assert code == 0 and rows(text)["lstm"] == "ok"
    assert "+4.167%" in text  # in all: (1 + 0.25) / (1 + 0.2) - 1


def test_improvements_are_listed_not_failed(tmp_path, capsys):
    code, text = judge(write(tmp_path, head={**CELLS, "rnn": round(CELLS["rnn"] * 0.97)}), capsys)
    assert code == 0 and rows(text)["rnn"] == "improvement"
    assert "1 improvement(s)" in text


def test_a_cell_new_in_head_is_listed_not_judged(tmp_path, capsys):
    code, text = judge(write(tmp_path, head={**CELLS, "slstm": 18_300_000}), capsys)
    assert code == 0 and rows(text)["slstm"].startswith("new")
    assert "3 of 4 cells judged; 1 new" in text


def test_a_cell_missing_on_head_fails_closed(tmp_path, capsys):
    code, text = judge(write(tmp_path, head={"rnn": CELLS["rnn"], "lstm": CELLS["lstm"]}), capsys)
    assert code == 1 and rows(text)["gru"] == "REGRESSION (cell missing on head)"


def test_a_cell_head_cannot_count_fails_closed(tmp_path, capsys):
    code, text = judge(write(tmp_path, head={**CELLS, "lstm": {"error": "RuntimeError: boom"}}), capsys)
    assert code == 1 and rows(text)["lstm"].startswith("REGRESSION (head could not count it: RuntimeError")


def test_a_cell_base_cannot_count_is_inconclusive(tmp_path, capsys):
    code, text = judge(write(tmp_path, base={**CELLS, "lstm": {"error": "KeyError: x"}}), capsys)
    assert code == 0 and rows(text)["lstm"].startswith("inconclusive")
    assert "2 of 3 cells judged; 1 inconclusive" in text


@pytest.mark.parametrize("content, what", [
    (None, "cannot read"),
    ("{not json", "cannot read"),
    ('{"sides": {"head": {"cells": {}}}}', "no base and head"),
    ('{"sides": {"base": {}, "head": {"cells": {}}}}', "base has no cells"),
    ('{"sides": {"base": {"cells": {"rnn": {"counts": []}}}, "head": {"cells": {}}}}', "rnn on base"),
    ('{"sides": {"base": {"cells": {}}, "head": {"cells": {"rnn": {"counts": [1, -2]}}}}}', "rnn on head"),
    ('{"sides": {"base": {"cells": {"rnn": {"counts": ["1"]}}}, "head": {"cells": {}}}}', "rnn on base"),
    ('{"sides": {"base": {"cells": {"rnn": {"counts": [1.5]}}}, "head": {"cells": {}}}}', "rnn on base"),
    ('{"sides": {"base": {"cells": {"rnn": 7}}, "head": {"cells": {}}}}', "rnn on base"),
    ('{"sides": {"base": {"cells": {"rnn": {"counts": [5]}}}, "head": {"cells": {}}}}', "rnn on base"),
    ('{"sides": {"base": {"cells": {"rnn": {"counts": [5, 6], "malloc": [1]}}}, "head": {"cells": {}}}}', "rnn on base"),
    ('{"sides": {"base": {"cells": {"rnn": {"counts": [5], "malloc": [5]}}}, "head": {"cells": {}}}}', "rnn on base"),
])
def test_unusable_input_exits_2_in_one_line(tmp_path, capsys, content, what):
    d = tmp_path / "c"
    d.mkdir()
    if content is not None:
        (d / "counts.json").write_text(content)
    code, text = judge(d, capsys, "--out", str(tmp_path / "v.md"), "--history", str(tmp_path / "hist"))
    assert code == 2 and what in text and len(text.strip().splitlines()) == 1
    assert not (tmp_path / "v.md").exists() and not (tmp_path / "hist").exists()


def test_every_run_appends_to_the_history_and_is_drawn(tmp_path, capsys):
    judge(write(tmp_path, name="a"), capsys, "--history", str(tmp_path / "hist"))
    judge(write(tmp_path, name="b", head={**CELLS, "gru": round(CELLS["gru"] * 1.02)}), capsys,
          "--out", str(tmp_path / "v.md"), "--history", str(tmp_path / "hist"))
    assert len(list((tmp_path / "hist").glob("*.parquet"))) == 2
    assert "REGRESSION" in (tmp_path / "v.md").read_text()
    assert history_main([str(tmp_path / "hist"), "--out", str(tmp_path / "h.png")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "h.png").stat().st_size > 10_000
    assert [int(line.split("|")[6]) for line in out.splitlines() if "| counts " in line] == [0, 1]


def dump(outside, inside):
    """A callgrind dump in its compressed format: `step` calls malloc, which calls glibc's
    _int_malloc; self costs outside + inside."""
    return (f"version: 1\ncreator: callgrind-3.19.0\npositions: line\nevents: Ir\nsummary: {outside + inside}\n\n"
            f"ob=(1) /lib/libc.so.6\nfl=(1) malloc.c\nfn=(1) _int_malloc\n0 {inside - 2}\n+3 2\n\n"
            f"fn=(2) malloc\n0 7\ncfn=(1)\ncalls=1 0\n0 {inside}\n\n"
            f"ob=(2) /bin/python\nfl=(2) step.c\nfn=(3) step\n0 {outside - 7}\n"
            f"cob=(1)\ncfl=(1)\ncfn=(2)\ncalls=2 0\n0 {inside + 7}\n\ntotals: {outside + inside}\n")


def test_a_dump_reads_as_its_total_and_its_malloc_internals(tmp_path):
    from bench.ab.callgrind import DumpError, step_counts
    (tmp_path / "d").write_text(dump(1000, 300))
    assert step_counts(tmp_path / "d") == (1300, 300)
    (tmp_path / "t").write_text(dump(1000, 300)[:-60])  # truncated: the self costs fall short
    with pytest.raises(DumpError, match="not a complete callgrind dump"):
        step_counts(tmp_path / "t")


def test_runner_reads_each_dump_and_keeps_the_median_one(tmp_path):
    side = tmp_path / "head"
    side.mkdir()
    for n, (outside, inside) in enumerate([(120, 10), (100, 50), (110, 20)], start=1):
        (side / f"callgrind.out.{n}").write_text(dump(outside, inside))
    manifest = {"env": {}, "cells": {"rnn": {"dumps": [1, 2, 3], "seconds": 1}, "gru": {"error": "E: x"}}}
    (side / "manifest.json").write_text(json.dumps(manifest))
    got = runner.collect("head", tmp_path)
    assert got["cells"]["rnn"]["counts"] == [130, 150, 130] and got["cells"]["rnn"]["malloc"] == [10, 50, 20]
    assert got["cells"]["gru"] == {"error": "E: x"}
    assert "summary: 130" in (side / "rnn.callgrind").read_text()  # the median outside malloc: 110
    assert "fn=(3) step\n0 103" in (side / "rnn.callgrind").read_text()
    assert not list(side.glob("callgrind.out*"))


def test_runner_refuses_in_one_line_without_valgrind(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner.shutil, "which", lambda name: None)
    assert runner.main(["--base", "HEAD", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert "valgrind not found" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "c").exists()


def test_runner_refuses_an_unknown_ref(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "valgrind", lambda: "valgrind-test")
    assert runner.main(["--base", "no-such-ref-xyz", "--out", str(tmp_path / "c")]) == 2
    assert "no-such-ref-xyz" in capsys.readouterr().err


@pytest.mark.parametrize("cell", list(REGISTRY))
def test_the_counted_step_runs_on_every_registered_cell(cell, monkeypatch):
    """The worker's loop outside valgrind (the hooks do nothing): each cell's step builds, runs
    forward, loss and backward, and makes REPEATS dumps numbered on from the ones before."""
    import torch

    monkeypatch.setattr(worker.gc, "collect", lambda: 0)  # pytest's heap is not the worker's frozen one

    class NoHooks:
        start = stop = zero = toggle = toggle_dump = staticmethod(lambda: None)

    dumps, threads = [3], torch.get_num_threads()
    from bench.cells.build import build_model
    torch.set_num_threads(1)  # as the worker runs (and tiny ops on a busy machine need it)
    try:
        assert worker.count_cell(cell, build_model, torch, NoHooks(), dumps) == list(range(4, 4 + worker.REPEATS))
    finally:
        torch.set_num_threads(threads)
    assert dumps == [3 + worker.REPEATS]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_counts_of_identical_code_agree_under_valgrind(tmp_path):
    """One real run, one cell: both sides count; the verdict of identical code is ok."""
    r = subprocess.run([sys.executable, "-m", "bench.ab.counts", "--base", "HEAD", "--cells", "rnn",
                        "--out", str(tmp_path / "c")], text=True, capture_output=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    code, text, table = verdict.compare_counts(tmp_path / "c")
    assert code == 0 and list(table["verdict"]) == ["ok"], text
    assert table["base"].iloc[0] > 1e6  # a real step: millions of instructions
