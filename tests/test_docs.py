"""The README's generated blocks equal what the committed stores give (`make docs`)."""
import re

import pytest

import analysis.readme.docs as docs


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    """The blocks the committed reference stores give, built once (four reports)."""
    return docs.generate(tmp_path_factory.mktemp("docs"), figures=False)


@pytest.fixture
def built(blocks, monkeypatch):
    monkeypatch.setattr(docs, "generate", lambda workdir, figures: blocks)


def test_readme_blocks_match_the_committed_stores(built, capsys):
    assert docs.main(["--check"]) == 0, capsys.readouterr().err


def test_a_hand_edited_number_is_caught(built, tmp_path, monkeypatch, capsys):
    text = docs.README.read_text()
    start = text.index("<!-- docs:modern-tasks -->")
    edited = text[:start] + text[start:].replace("3/3 [0.44, 1.00]", "2/3 [0.21, 0.94]", 1)
    assert edited != text
    readme = tmp_path / "README.md"
    readme.write_text(edited)
    monkeypatch.setattr(docs, "README", readme)
    assert docs.main(["--check"]) == 1
    assert "README blocks differ from the stores: modern-tasks" in capsys.readouterr().err
    assert readme.read_text() == edited                      # --check writes nothing


def test_a_missing_block_is_named(built, tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text("no blocks here\n")
    monkeypatch.setattr(docs, "README", readme)
    with pytest.raises(SystemExit, match="README.md has no block <!-- docs:scorecard -->"):
        docs.main(["--check"])


def test_a_stale_reference_index_is_named(built, tmp_path, monkeypatch, capsys):
    index = tmp_path / "reference"
    index.mkdir()
    (index / "README.md").write_text("# typed by hand\n")
    monkeypatch.setattr(docs, "REFERENCE", index)
    monkeypatch.setattr(docs, "ROOT", tmp_path)
    assert docs.main(["--check"]) == 1
    assert "reference/README.md" in capsys.readouterr().err


def test_no_measured_number_is_typed_in_the_results_section():
    """Outside the generated blocks, the README's results section states no measured figure (a
    decimal, a ratio like 3.6x, a percentage): those come from the stores or not at all."""
    text = docs.README.read_text()
    section = text[text.index("## Reference results"):]
    section = section[:section.index("\n## ", 1)]
    prose = re.sub(r"<!-- docs:([\w-]+) -->.*?<!-- /docs:\1 -->", "", section, flags=re.S)
    prose = re.sub(r"!\[[^]]*\]\([^)]*\)", "", prose)                  # figure links
    prose = prose.replace("95%", "")                                     # the interval level
    typed = re.findall(r"\b\d+\.\d+\b|\b\d+(?:\.\d+)?x\b|\b\d+(?:\.\d+)?%", prose)
    assert not typed, f"typed figures in the README's results section: {typed}"
