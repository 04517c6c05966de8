"""A folder's seeded split is Keras's own: the same files in ``image_dataset_from_directory``'s training and
validation subsets, in its order, for the same ``seed`` and ``validation_split`` (checked against Keras itself)."""

from pathlib import Path

import numpy as np
import pytest

from convlens.data import folder
from tests.support.datasets import write_image

# Class folders Keras sorts as convlens must ("C" before "a"), nested subfolders whose walk order is not
# os.walk's depth-first one ("sub-b" sorts before "sub/deep" as a path), hidden image files and a hidden subfolder
# Keras indexes, upper-case extensions, uneven counts: 14 images, so int(N × 0.2) = 2 where round gives 3.
FILES = (
    "C/1.png",
    "C/0.PNG",
    "a/b.jpg",
    "a/a.png",
    "a/sub/x.png",
    "a/sub/deep/y.bmp",
    "a/sub-b/z.jpeg",
    "a/.ipynb_checkpoints/a-checkpoint.png",
    "a/._a.png",
    "b/only.png",
    "dog/3.png",
    "dog/10.png",
    "dog/2.png",
    "dog/zz/1.png",
)


def keras_folder(top: Path) -> Path:
    """The tiny folder of ``FILES`` (4×4 gray PNG, JPEG and BMP files), with what both leave out beside them."""
    for i, name in enumerate(FILES):
        write_image(top / name, np.full((4, 4), i * 9, dtype=np.uint8))
    write_image(top / ".hidden-class" / "0.png", np.zeros((4, 4), dtype=np.uint8))  # not a class for either
    (top / "README.md").write_text("beside the class folders", encoding="utf-8")
    (top / "a" / ".DS_Store").write_bytes(b"\0")
    return top.resolve()


def as_keras_paths(entries: list[folder.Entry], top: Path, names: list[str]) -> list[tuple[str, str]]:
    """Each entry's path relative to ``top`` and its class name."""
    return [(str(e.path.relative_to(top)), names[e.label]) for e in entries]


def keras_subsets(directory: Path, top: Path, **kwargs) -> list[list[tuple[str, str]]]:
    """The files of each dataset Keras's ``image_dataset_from_directory`` makes, relative to ``top``, each with
    its class (the first folder under ``directory``)."""
    import keras

    made = keras.utils.image_dataset_from_directory(str(directory), image_size=(4, 4), verbose=False, **kwargs)
    return [
        [(str(Path(p).relative_to(top)), Path(p).relative_to(directory).parts[0]) for p in dataset.file_paths]
        for dataset in (made if isinstance(made, list | tuple) else [made])
    ]


@pytest.mark.parametrize("seed", [0, 7, 1337, 2**32 - 1])
@pytest.mark.parametrize("fraction", [0.2, 0.3, 0.5, 0.9])
def test_a_seeded_split_holds_the_files_keras_holds_out_in_its_order(tmp_path, seed, fraction):
    top = keras_folder(tmp_path / "pics")
    splits, names = folder.scan(top, fraction, seed)
    train, validation = keras_subsets(top, top, validation_split=fraction, subset="both", seed=seed)
    assert names == ["C", "a", "b", "dog"]
    assert as_keras_paths(splits["test"], top, names) == validation
    assert as_keras_paths(splits["train"], top, names) == train
    assert len(validation) == int(len(FILES) * fraction)


def test_train_and_test_folders_are_each_in_the_order_keras_indexes_them(tmp_path):
    top = tmp_path / "pics"
    keras_folder(top / "train")
    for name in FILES[:4]:
        write_image(top / "test" / name, np.zeros((4, 4), dtype=np.uint8))
    write_image(top / "test" / "b" / "t.png", np.zeros((4, 4), dtype=np.uint8))
    write_image(top / "test" / "dog" / "t.png", np.zeros((4, 4), dtype=np.uint8))
    top = top.resolve()
    splits, names = folder.scan(top, 0.2, 5)
    for split in folder.SPLIT_DIRS:
        assert [as_keras_paths(splits[split], top, names)] == keras_subsets(top / split, top, seed=5, shuffle=True)


def test_a_fraction_that_keras_would_round_down_to_no_test_image_is_one_line(tmp_path):
    top = tmp_path / "pics"
    for name in ("a/0.png", "a/1.png", "b/0.png"):
        write_image(top / name, np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(folder.FolderError) as raised:
        folder.scan(top, 0.3, 0)  # round(0.9) would be 1; Keras holds out int(0.9) = 0 and trains on nothing
    assert "holds 3 image(s); data.test_fraction=0.3 of them makes 0 test image(s)" in str(raised.value)


def test_a_split_without_a_seed_is_refused_as_keras_refuses_it(tmp_path):
    import keras

    from convlens.errors import ConvlensError
    from tests.support.datasets import data_config

    top = keras_folder(tmp_path / "pics")
    with pytest.raises(ValueError, match="you must provide a `seed` argument"):
        keras.utils.image_dataset_from_directory(str(top), validation_split=0.2, subset="both", seed=None)
    with pytest.raises(ConvlensError, match="data.seed must be an integer"):
        data_config("folder", path=str(top), seed=None)
