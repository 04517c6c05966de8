"""docs/configuration.md's table of keys is what convlens/schema.py and conf/ say (``python -m convlens
docs-config``)."""

from __future__ import annotations

import shutil

import pytest
from omegaconf import OmegaConf

from convlens.cli import docs_config
from convlens.errors import ConvlensError
from convlens.pipeline.config import compose
from convlens.schema import MEANING, SCHEMA, allowed, config_table
from tests.support.helpers import PROJECT

PAGE = PROJECT / "docs" / "configuration.md"


def defaults() -> dict:
    return OmegaConf.to_container(compose(PROJECT), resolve=True)


def test_the_page_shows_the_table_the_schema_renders():
    page = PAGE.read_text(encoding="utf-8")
    assert docs_config.with_table(page, config_table(defaults())) == page, (
        "docs/configuration.md's table differs from convlens/schema.py and conf/: run python -m convlens docs-config"
    )


def test_every_key_has_one_sentence_of_meaning_and_a_row_with_its_default():
    assert list(MEANING) == list(SCHEMA)
    assert all(text[0].isupper() or text[0] == "`" for text in MEANING.values())
    assert all(text.endswith(".") and "\n" not in text for text in MEANING.values())
    rows = config_table(defaults()).splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == [f"| `{key}`" for key in SCHEMA]
    by_key = {row.split(" | ")[0][3:-1]: row.split(" | ") for row in rows}
    assert by_key["untrained.seed"][2] == "`42`" and by_key["feature_maps.layers"][2] == "`null`"
    assert by_key["model.conv_layers"][2] == "`[conv2d, conv2d_1]`"
    assert by_key["weights.layers"][2] == "`null`" and by_key["render.dpi"][1] == "an integer in 10..600"


def test_a_default_changed_in_conf_changes_the_table(tmp_path):
    shutil.copytree(PROJECT / "conf", tmp_path / "conf")
    seed = tmp_path / "conf" / "untrained" / "default.yaml"
    seed.write_text(seed.read_text(encoding="utf-8").replace("seed: 42", "seed: 7"), encoding="utf-8")
    table = config_table(OmegaConf.to_container(compose(tmp_path), resolve=True))
    assert table != config_table(defaults())
    row = next(r for r in table.splitlines() if r.startswith("| `untrained.seed`"))
    assert row.split(" | ")[2] == "`7`"


@pytest.mark.parametrize(
    ("key", "said", "refused", "accepted"),
    [
        ("render.dpi", "an integer in 10..600", 601, 600),
        ("samples.indices", "a list of at least 1; each an integer in 0..2147483647; at most 100", [0] * 101, [0, 5]),
        ("weights.layers", "null or a list of at least 1; each a layer name", ["../x"], None),
        ("render.input_channels", "one of first, mean, all", "sum", "all"),
        ("gradcam.alpha", "a finite number in 0..1", 1.5, 0.5),
        ("data.urls", "a list; each an http(s) URL", ["ftp://x"], []),
    ],
)
def test_the_type_column_is_what_the_check_enforces(key, said, refused, accepted):
    assert allowed(SCHEMA[key]).startswith(said)
    with pytest.raises(ConvlensError):
        SCHEMA[key](key, refused)
    SCHEMA[key](key, accepted)


def test_the_command_writes_the_table_and_check_says_when_it_differs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(PROJECT)
    page = tmp_path / "configuration.md"
    good = PAGE.read_text(encoding="utf-8")
    stale = good.replace("| `untrained.seed` | an integer in 0..4294967295 | `42` |", "| `untrained.seed` | x | `1` |")
    assert stale != good
    page.write_text(stale, encoding="utf-8")
    with pytest.raises(SystemExit) as checked:
        docs_config.main(["--check", "--page", str(page)])
    assert "run python -m convlens docs-config" in str(checked.value.code)
    assert page.read_text(encoding="utf-8") == stale
    docs_config.main(["--page", str(page)])
    assert page.read_text(encoding="utf-8") == good
    docs_config.main(["--check", "--page", str(page)])
    assert capsys.readouterr().out.splitlines() == [f"docs-config: wrote {page}", f"docs-config: {page} is up to date"]


def test_a_page_without_the_markers_is_one_error_line(tmp_path, monkeypatch):
    monkeypatch.chdir(PROJECT)
    page = tmp_path / "configuration.md"
    page.write_text("# no table here\n", encoding="utf-8")
    with pytest.raises(SystemExit) as err:
        docs_config.main(["--page", str(page)])
    assert str(err.value.code).startswith("docs-config: error: the page has no lines <!-- keys:")
    assert page.read_text(encoding="utf-8") == "# no table here\n"
