"""The README's generated blocks equal what the committed stores give (`make docs`)."""
import pytest

import analysis.docs as docs


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    """The blocks the committed stores give, built once (two reports, about 20 s)."""
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
    with pytest.raises(SystemExit, match="README.md has no block <!-- docs:crossover -->"):
        docs.main(["--check"])
