"""The training's params (issue 23 §1): bad values stop at composition, in check_config, with one line."""

import pytest

from convlens.errors import ConvlensError
from convlens.pipeline.config import compose
from convlens.schema import conv_layer_names
from tests.support.helpers import PROJECT, one_line


def test_model_train_turns_the_training_stage_on_and_the_other_presets_leave_it_off():
    trained_here = compose(PROJECT, ["model=train"])
    assert list(trained_here.model.train_runs) == ["trained"]
    assert trained_here.model.source == trained_here.model.path == "outputs/train/model.keras"
    assert trained_here.model.film == "outputs/figures/film"
    book = compose(PROJECT)
    assert list(book.model.train_runs) == [] and book.model.film == "outputs/checked_config.txt"
    assert book.train.epochs == 20 and book.train.patience == 2 and book.train.validation_fraction == 0.2
    assert dict(book.train.architecture) == {"filters": [32, 64], "kernel_size": 3, "dense_units": 100, "dropout": 0.4}


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.epochs=0", "train.epochs"),
        ("train.epochs=1e12", "train.epochs"),
        ("train.patience=-1", "train.patience"),
        ("train.validation_fraction=0", "train.validation_fraction"),
        ("train.validation_fraction=1", "train.validation_fraction"),
        ("train.validation_fraction=nan", "train.validation_fraction"),
        ("train.architecture.dropout=1", "train.architecture.dropout"),
        ("train.architecture.dropout=1.5", "train.architecture.dropout"),
        ("train.learning_rate=0", "train.learning_rate"),
        ("train.learning_rate=nan", "train.learning_rate"),
        ("train.learning_rate=inf", "train.learning_rate"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.architecture.filters=[]", "train.architecture.filters"),
        ("train.architecture.filters=[32,0]", "train.architecture.filters[1]"),
        ("train.architecture.kernel_size=0", "train.architecture.kernel_size"),
        ("train.architecture.dense_units=0", "train.architecture.dense_units"),
        ("train.seed=-1", "train.seed"),
        ("model.train_runs=[other]", "model.train_runs[0]"),
    ],
)
def test_a_bad_training_param_is_one_line_naming_it(override, key):
    with pytest.raises(ConvlensError) as err:
        compose(PROJECT, ["model=train", override])
    assert one_line(err).startswith(f"{key} must be ")


def test_conv_layers_must_name_one_layer_per_filters_entry():
    with pytest.raises(ConvlensError) as err:
        compose(PROJECT, ["model=train", "train.architecture.filters=[8,8,8]"])
    assert "model.conv_layers=[conv2d,conv2d_1,conv2d_2]" in one_line(err)
    with pytest.raises(ConvlensError) as err:
        compose(PROJECT, ["model=train", "train.architecture.filters=[8]"])
    assert "must name the conv layers of train.architecture.filters [8]" in one_line(err)  # not "the 1 conv layers"
    cfg = compose(
        PROJECT, ["model=train", "train.architecture.filters=[8,8,8]", "model.conv_layers=[conv2d,conv2d_1,conv2d_2]"]
    )
    assert list(cfg.feature_maps.each) == conv_layer_names(3)


def test_the_book_preset_ignores_the_training_architecture():
    assert compose(PROJECT, ["train.architecture.filters=[8,8,8]"]).model.name == "book"
