"""A range error says both bounds, each as open or closed (before: a key open below and closed above, e.g.
``data.test_fraction`` in (0, 0.9], said "above 0" and dropped its maximum)."""

import pytest

from convlens.checks import number
from convlens.errors import ConvlensError
from convlens.pipeline.config import compose
from convlens.schema import SCHEMA, allowed, check_config
from tests.support.helpers import PROJECT


@pytest.mark.parametrize(
    ("low_open", "high_open", "value", "line"),
    [
        (False, False, 1.5, "k must be a finite number in 0..1, got 1.5; e.g. k=0.5"),
        (False, False, -0.5, "k must be a finite number in 0..1, got -0.5; e.g. k=0.5"),
        (True, False, 1.5, "k must be a finite number above 0 and at most 1, got 1.5; e.g. k=0.5"),
        (True, False, 0, "k must be a finite number above 0 and at most 1, got 0; e.g. k=0.5"),
        (False, True, 1, "k must be a finite number at least 0 and below 1, got 1; e.g. k=0.5"),
        (False, True, -1, "k must be a finite number at least 0 and below 1, got -1; e.g. k=0.5"),
        (True, True, 1, "k must be a finite number above 0 and below 1, got 1; e.g. k=0.5"),
        (True, True, 0.0, "k must be a finite number above 0 and below 1, got 0.0; e.g. k=0.5"),
        (True, False, float("nan"), "k must be a finite number above 0 and at most 1, got nan; e.g. k=0.5"),
        (True, False, "1", "k must be a finite number above 0 and at most 1, got '1'; e.g. k=0.5"),
    ],
)
def test_every_combination_of_open_and_closed_bounds_says_both(low_open, high_open, value, line):
    check = number(0, 1, "0.5", low_open=low_open, high_open=high_open)
    with pytest.raises(ConvlensError) as err:
        check("k", value)
    assert str(err.value) == line


@pytest.mark.parametrize(("low_open", "high_open"), [(False, False), (True, False), (False, True), (True, True)])
def test_the_bounds_themselves_are_in_or_out_as_the_wording_says(low_open, high_open):
    check = number(0, 1, low_open=low_open, high_open=high_open)
    for value, is_out in ((0, low_open), (1, high_open), (0.5, False)):
        if is_out:
            with pytest.raises(ConvlensError):
                check("k", value)
        else:
            check("k", value)


@pytest.mark.parametrize(
    ("key", "value", "line"),
    [  # the outside tester's values (finding 5), one key of each kind of range
        ("data.test_fraction", 0.95, "a finite number above 0 and at most 0.9, got 0.95; e.g. data.test_fraction=0.2"),
        ("activation_max.blur_sigma", 20, "a finite number above 0 and at most 16, got 20"),
        ("train.learning_rate", 11, "a finite number above 0 and at most 10, got 11"),
        ("activation_max.learning_rate", 11, "a finite number above 0 and at most 10, got 11"),
        ("input.scale", 1e-37, "a finite number in 0.001..1000000, got 1e-37; e.g. input.scale=255"),
        ("input.scale", 2e9, "a finite number in 0.001..1000000, got 2000000000.0"),
        ("train.validation_fraction", 1, "a finite number above 0 and below 1, got 1"),
        ("train.architecture.dropout", 1, "a finite number at least 0 and below 1, got 1"),
        ("gradcam.alpha", 2, "a finite number in 0..1, got 2"),
        ("render.filter_vmin", -2e6, "a finite number in -1000000..1000000, got -2000000.0"),
    ],
)
def test_real_keys_out_of_range_name_their_range(key, value, line):
    section, _, leaf = key.rpartition(".")
    config: dict = {}
    node = config
    for part in section.split("."):
        node = node.setdefault(part, {})
    node[leaf] = value
    with pytest.raises(ConvlensError) as err:
        check_config(config, complete=False)
    assert str(err.value).startswith(f"{key} must be {line}")


def test_the_docs_table_says_the_upper_bound_too():
    """docs/configuration.md's "type, range" column is :func:`allowed`, the check's own words."""
    assert allowed(SCHEMA["data.test_fraction"]) == "a finite number above 0 and at most 0.9"
    assert allowed(SCHEMA["activation_max.blur_sigma"]) == "a finite number above 0 and at most 16"
    assert allowed(SCHEMA["train.validation_fraction"]) == "a finite number above 0 and below 1"
    assert "above 0 and at most 0.9" in (PROJECT / "docs" / "configuration.md").read_text(encoding="utf-8")


def test_an_override_out_of_range_is_refused_while_conf_is_composed():
    with pytest.raises(ConvlensError) as err:
        compose(PROJECT, ["data.test_fraction=0.95"])
    assert str(err.value) == (
        "data.test_fraction must be a finite number above 0 and at most 0.9, got 0.95; e.g. data.test_fraction=0.2"
    )
