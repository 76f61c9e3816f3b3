"""`make reference` (bench/run/reference.py): a study is a preset `reference_<study>`, refused from a
tree with uncommitted changes, and swapped in only when every point succeeded."""
import subprocess

import bench.run.reference as ref


def test_every_study_has_its_preset_and_an_unknown_one_is_refused(capsys):
    assert {"classic", "fair", "papers", "modern", "crossover", "cpu_cost"} <= set(ref.studies())
    assert ref.main(["nope"]) == 2
    assert "STUDY=nope is not a reference study (classic" in capsys.readouterr().err


def test_a_dirty_tree_is_refused_before_any_work(monkeypatch, capsys, tmp_path):
    calls = []
    monkeypatch.setattr(ref, "dirty", lambda: ["bench/cells/classic.py"])
    monkeypatch.setattr(ref.subprocess, "call", lambda *a, **k: calls.append(a) or 0)
    monkeypatch.setattr(ref, "REFERENCE", tmp_path)
    assert ref.main(["classic"]) == 2 and not calls
    assert "uncommitted changes (bench/cells/classic.py)" in capsys.readouterr().err


def test_dirty_reads_tracked_changes_only(monkeypatch, tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "a.py").write_text("x = 1\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "a.py"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "a"], check=True)
    monkeypatch.setattr(ref, "ROOT", tmp_path)
    (tmp_path / "untracked.txt").write_text("results\n")
    assert ref.dirty() == []
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.parquet").write_text("old")
    subprocess.run(["git", "-C", str(tmp_path), "add", "results/r.parquet"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "r"], check=True)
    (tmp_path / "results" / "r.parquet").write_text("re-measured")  # a study swapped in: records, not code
    assert ref.dirty() == []
    (tmp_path / "a.py").write_text("x = 20\n")  # another size: git's stat check cannot miss it within a second
    assert ref.dirty() == ["a.py"]


def test_a_failed_run_keeps_the_committed_store(monkeypatch, tmp_path):
    (tmp_path / "classic").mkdir()
    (tmp_path / "classic" / "kept.parquet").write_text("old")
    monkeypatch.setattr(ref, "dirty", lambda: [])
    monkeypatch.setattr(ref, "REFERENCE", tmp_path)
    monkeypatch.setattr(ref.subprocess, "call", lambda *a, **k: 1)
    assert ref.main(["classic"]) == 1 and (tmp_path / "classic" / "kept.parquet").exists()
    monkeypatch.setattr(ref.subprocess, "call", lambda *a, **k: (tmp_path / "classic.new").mkdir() or 0)
    assert ref.main(["classic"]) == 0
    assert (tmp_path / "classic").is_dir() and not (tmp_path / "classic" / "kept.parquet").exists()


def test_make_baseline_records_the_ci_preset_from_a_clean_commit_and_keeps_the_old_one_on_failure(monkeypatch, tmp_path, capsys):
    """The stored baseline: refused from a dirty tree (the old one was recorded from one), measured
    into STORE.new and swapped in only when every point succeeded."""
    store = tmp_path / "baseline"
    store.mkdir()
    (store / "kept.parquet").write_text("old")
    calls = []
    monkeypatch.setattr(ref, "dirty", lambda: ["bench/cells/lru.py"])
    monkeypatch.setattr(ref.subprocess, "call", lambda *a, **k: calls.append(a[0]) or 0)
    assert ref.main(["--baseline", str(store)]) == 2 and not calls
    assert "make baseline: the tree has uncommitted changes (bench/cells/lru.py)" in capsys.readouterr().err
    monkeypatch.setattr(ref, "dirty", lambda: [])
    monkeypatch.setattr(ref.subprocess, "call", lambda *a, **k: calls.append(a[0]) or 1)
    assert ref.main(["--baseline", str(store)]) == 1 and (store / "kept.parquet").exists()
    assert calls[-1][3:] == ["ci", f"results_dir={tmp_path / 'baseline.new'}"]
    assert "make baseline: not every point succeeded (exit 1)" in capsys.readouterr().err
    monkeypatch.setattr(ref.subprocess, "call", lambda *a, **k: (tmp_path / "baseline.new").mkdir() or 0)
    assert ref.main(["--baseline", str(store)]) == 0 and store.is_dir() and not (store / "kept.parquet").exists()
