"""README.md's and docs/results.md's generated blocks equal what the committed stores give (`make docs`)."""
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


@pytest.mark.slow
def test_readme_blocks_match_the_committed_stores(built, capsys):
    assert docs.main(["--check"]) == 0, capsys.readouterr().err


@pytest.mark.slow
def test_a_hand_edited_number_is_caught(built, tmp_path, monkeypatch, capsys):
    text = docs.RESULTS.read_text()
    start = text.index("<!-- docs:half-lives -->")
    body = text[start:text.index("<!-- /docs:half-lives -->")]
    number = re.search(r"\b\d+\.\d+\b", body).group()
    edited = text[:start] + body.replace(number, number + "1", 1) + text[start + len(body):]
    assert edited != text
    results = tmp_path / "results.md"
    results.write_text(edited)
    monkeypatch.setattr(docs, "RESULTS", results)
    assert docs.main(["--check"]) == 1
    assert "differ from the stores: half-lives" in capsys.readouterr().err
    assert results.read_text() == edited                     # --check writes nothing


@pytest.mark.slow
def test_a_missing_block_is_named(built, tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text("no blocks here\n")
    monkeypatch.setattr(docs, "README", readme)
    with pytest.raises(SystemExit, match="README.md has no block <!-- docs:verdicts -->"):
        docs.main(["--check"])


@pytest.mark.slow
def test_a_stale_reference_index_is_named(built, tmp_path, monkeypatch, capsys):
    index = tmp_path / "reference"
    index.mkdir()
    (index / "README.md").write_text("# typed by hand\n")
    monkeypatch.setattr(docs, "REFERENCE", index)
    monkeypatch.setattr(docs, "ROOT", tmp_path)
    assert docs.main(["--check"]) == 1
    assert "reference/README.md" in capsys.readouterr().err


@pytest.mark.parametrize("page", ["README", "RESULTS"])
def test_no_measured_number_is_typed_outside_the_blocks(page):
    """Outside the generated blocks, the README and docs/results.md state no measured figure (a
    decimal, a ratio like 3.6x, a percentage): those come from the stores or not at all."""
    text = getattr(docs, page).read_text()
    prose = re.sub(r"<!-- docs:([\w-]+) -->.*?<!-- /docs:\1 -->", "", text, flags=re.S)
    prose = re.sub(r"!\[[^]]*\]\([^)]*\)", "", prose)                  # figure links
    prose = re.sub(r"`[^`]*`|\b\d+\.\d+\.\d+\b", "", prose)              # code spans, versions
    prose = prose.replace("95%", "")                                     # the interval level
    typed = re.findall(r"\b\d+\.\d+\b|\b\d+(?:\.\d+)?x\b|\b\d+(?:\.\d+)?%", prose)
    assert not typed, f"typed figures in {page}: {typed}"


@pytest.mark.parametrize("page", ["README", "RESULTS"])
def test_every_figure_a_page_shows_is_committed(page):
    path = getattr(docs, page)
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", path.read_text())
    missing = [link for link in links if not (path.parent / link).is_file()]
    assert not missing, f"{path.name} shows figures that are not committed: {missing}"
