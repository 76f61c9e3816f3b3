"""Compare fails closed on its own input (issue 29): a baseline with a file truncated, emptied or
deleted, or a file that is not a record, is exit 2 naming the file (never "no regression" on fewer
points); a malformed ab.json is exit 2, not a traceback with the regression's exit 1; the hints name
`make baseline`. The store reader names and leaves out a file whose columns are not a record's."""
import json
import shutil

import pandas as pd
import pytest

from analysis.ci.manifest import MANIFEST, write_manifest
from analysis.compare import main as compare_main
from analysis.load import load_store
from tests.synthetic import write_gradients, write_throughput


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    store = tmp_path_factory.mktemp("baseline")
    write_gradients(store)
    write_throughput(store)
    write_manifest(store, "synthetic")
    return store


def copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_a_damaged_baseline_is_unusable_input_naming_each_file(baseline, tmp_path, capsys):
    damaged = copy(baseline, tmp_path / "damaged")
    files = sorted(damaged.glob("*.parquet"))
    truncated, emptied, deleted = files[0], files[1], files[2]
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    emptied.write_bytes(b"")
    deleted.unlink()
    assert compare_main([str(damaged), str(baseline)]) == 2
    err = capsys.readouterr().err
    assert f"{deleted} (listed in {MANIFEST}) is missing" in err and "make baseline" in err
    assert f"{truncated} (unreadable" in err and f"{emptied} (unreadable" in err
    deleted.write_bytes(b"")  # the file back, as empty as the other: now its contents are judged
    assert compare_main([str(damaged), str(baseline)]) == 2
    err = capsys.readouterr().err
    assert all(f"{f} (unreadable" in err for f in (truncated, emptied, deleted)), err
    assert "re-record the store with `make baseline`" in err


def test_a_baseline_without_its_manifest_is_unusable_input(baseline, tmp_path, capsys):
    bare = copy(baseline, tmp_path / "bare")
    (bare / MANIFEST).unlink()
    assert compare_main([str(bare), str(baseline)]) == 2
    assert f"{bare / MANIFEST} is missing" in capsys.readouterr().err


def retype(path, **columns):
    df = pd.read_parquet(path)
    for col, fn in columns.items():
        df = fn(df) if col == "frame" else df.assign(**{col: fn(df[col])})
    df.to_parquet(path, index=False)


@pytest.mark.parametrize("edit,why", [
    ({"threads": lambda s: s.astype(float)}, "column `threads` is double, not int"),
    ({"frame": lambda df: df.drop(columns=["torch_version"])}, "no column `torch_version`"),
    ({"frame": lambda df: df.drop(columns=["grad_norm"])}, "no column `grad_norm` for its gradients rows"),
    ({"seed": lambda s: s.astype(str)}, "column `seed` is large_string, not int"),
])
def test_a_file_that_is_not_a_record_is_named_and_left_out(baseline, tmp_path, capsys, edit, why):
    store = copy(baseline, tmp_path / "store")
    bad = next(f for f in sorted(store.glob("*.parquet")) if "grad_norm" in pd.read_parquet(f))
    retype(bad, **edit)
    warnings = []
    df = load_store(store, warn=warnings.append)
    assert warnings == [f"warning: skipping record file {bad} (not a record file: {why})"]
    assert bad.stem not in set(df["config_hash"]) and df["threads"].dtype.kind == "i"
    assert compare_main([str(store), str(baseline)]) == 2  # as a baseline: refused, named
    assert f"{bad} (not a record file: {why})" in capsys.readouterr().err


def test_a_candidate_that_lost_a_file_is_a_regression_named_by_point(baseline, tmp_path, capsys):
    cand = copy(baseline, tmp_path / "cand")
    lost = sorted(cand.glob("*.parquet"))[0]
    lost.write_bytes(b"")
    assert compare_main([str(baseline), str(cand)]) == 1
    captured = capsys.readouterr()
    assert f"warning: skipping record file {lost} (unreadable" in captured.err
    assert f"point {lost.stem}" in captured.out and "missing from the candidate" in captured.out


@pytest.mark.parametrize("text", ["{not json", "[]", json.dumps({"base": "x", "head": "y"}),
                                  json.dumps({"base": "x", "head": "y", "rounds": "two"})])
def test_a_malformed_ab_json_is_unusable_input(tmp_path, capsys, text):
    (tmp_path / "ab.json").write_text(text)
    assert compare_main(["--ab", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"compare: {tmp_path / 'ab.json'} cannot be used" in err and "Traceback" not in err


def test_hints_name_make_baseline(tmp_path, capsys):
    assert compare_main([str(tmp_path / "none"), str(tmp_path)]) == 2
    assert f"no record store at {tmp_path / 'none'}: run `make baseline` first" in capsys.readouterr().err


def test_the_committed_baseline_is_whole():
    """results/baseline's manifest lists every record file it holds, and each is a record."""
    from analysis.ci.manifest import manifest_problems
    from tests.conftest import ROOT
    store = ROOT / "results" / "baseline"
    assert manifest_problems(store) == []
    listed = json.loads((store / MANIFEST).read_text())["points"]
    assert sorted(p.stem for p in store.glob("*.parquet")) == listed
    assert load_store(store, strict=True)["config_hash"].nunique() == len(listed)
