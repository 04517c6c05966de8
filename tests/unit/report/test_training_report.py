"""The film stage (render_film@trained) on tiny made-up training records, and the report's section "How the filters
formed" from what it draws (issue 23 §3, §5)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf
from PIL import Image

from convlens.errors import ConvlensError
from convlens.pipeline import paths
from convlens.report.build import SECTIONS, write_report
from convlens.report.pages import Strings, inline_code
from stages import render_film
from tests.support.helpers import PROJECT
from tests.support.report_pages import Page

EPOCHS = 3
LAYERS = {"conv2d": (3, 3, 1, 32), "conv2d_1": (3, 3, 32, 4)}  # conv2d the book's shape; conv2d_1 not


def write_training(root, epochs: int = EPOCHS, seed: int = 0) -> dict:
    """What train@trained leaves (outputs/train: history.json, snapshots), the samples and the class names."""
    rng = np.random.default_rng(seed)
    snapshots = paths.train_snapshots_dir(root)
    snapshots.mkdir(parents=True)
    kernel_std = {}
    for layer, shape in LAYERS.items():
        base = rng.normal(0, 0.05, shape)
        kernels = np.stack([base * (1 + 0.3 * e) for e in range(epochs + 1)]).astype(np.float32)
        np.save(snapshots / paths.snapshot_kernels_name(layer), kernels)
        kernel_std[layer] = [float(k.std()) for k in kernels]
    maps = rng.random((epochs + 1, 2, 6, 6, 32)).astype(np.float32)
    np.save(snapshots / paths.snapshot_maps_name("conv2d"), maps)
    val_accuracy = [0.8 + 0.01 * e for e in range(epochs)]
    history = {
        "epochs_run": epochs,
        "best_epoch": epochs - 1,
        "stopped_early": True,
        "reason": "val_loss did not improve for 1 epoch (train.patience=1)",
        "loss": [0.6 - 0.1 * e for e in range(epochs)],
        "accuracy": [0.78 + 0.02 * e for e in range(epochs)],
        "val_loss": [0.5 - 0.05 * e for e in range(epochs)],
        "val_accuracy": val_accuracy,
        "kernel_mean": {layer: [0.0] * (epochs + 1) for layer in LAYERS},
        "kernel_std": kernel_std,
        "seconds_per_epoch": [2.0] * epochs,
    }
    paths.train_history(root).write_text(json.dumps(history), encoding="utf-8")
    paths.samples_dir(root).mkdir(parents=True)
    np.save(paths.sample_images(root), np.zeros((2, 6, 6), np.uint8))
    paths.sample_index(root).write_text(
        json.dumps({"split": "train", "samples": [0, 5], "labels": [9, 0]}), encoding="utf-8"
    )
    paths.data_dir(root).mkdir(parents=True)
    paths.classes(root).write_text(json.dumps([f"c{i}" for i in range(9)] + ["Ankle boot"]), encoding="utf-8")
    return history


def film_config(**film) -> OmegaConf:
    return OmegaConf.create(
        {
            "model": {"train_runs": ["trained"]},
            "film": {"filters": 4, "frame_ms": 200} | film,
            "render": {
                "dpi": 30,
                "filter_cmap": "viridis",
                "filter_columns": 16,
                "input_channels": "auto",
                "map_cmap": "viridis",
                "map_columns": None,
            },
            "report": {"language": "en"},
        }
    )


@pytest.fixture(scope="module")
def filmed(tmp_path_factory):
    root = tmp_path_factory.mktemp("film")
    history = write_training(root)
    render_film.run(film_config(), root, "trained")
    return root, history


def test_the_stage_draws_every_layers_film_with_one_frame_per_snapshot(filmed):
    root, history = filmed
    folder = paths.film_dir(root)
    names = {p.name for p in folder.iterdir()}
    assert names == {
        "conv2d_filters_strip.png", "conv2d_filters.gif", "conv2d_1_filters_strip.png", "conv2d_1_filters.gif",
        "conv2d_maps_0.gif", "conv2d_maps_1.gif", "learning_curves.png", "kernel_std.png", "film.json",
    }  # fmt: skip
    for gif in ("conv2d_filters.gif", "conv2d_1_filters.gif", "conv2d_maps_0.gif", "conv2d_maps_1.gif"):
        with Image.open(folder / gif) as film:
            assert film.n_frames == EPOCHS + 1, gif  # the acceptance: one frame per snapshot
            assert film.info["duration"] == 200
    record = json.loads((folder / paths.FILM_NAME).read_text(encoding="utf-8"))
    assert record["best_epoch"] == history["best_epoch"]
    best = history["best_epoch"]  # the reason in report.language, from the numbers (history's is the log's English)
    assert record["reason"] == (
        f"early stopping: val_loss did not improve for 1 epoch after epoch {best}; the weights of epoch {best} "
        "were restored"
    )
    assert record["reference_std"] == {"conv2d": {"trained": 0.23351653, "untrained": 0.08463709}}
    assert [m["sample"] for m in record["maps"]] == ["train image 0: Ankle boot", "train image 5: c0"]  # each sample
    assert record["layers"]["conv2d"]["mode"] == "first"
    kernels = np.load(paths.train_snapshots_dir(root) / paths.snapshot_kernels_name("conv2d"))
    assert record["layers"]["conv2d"]["scale"] == pytest.approx(float(np.percentile(np.abs(kernels), 99)))
    with Image.open(folder / "conv2d_filters_strip.png") as strip:
        assert strip.height > strip.width / 4  # 4 rows (snapshots) of 4 filters


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: h.update(val_accuracy=h["val_accuracy"][:-1]), "val_accuracy does not have one value per epoch"),
        (lambda h: h.pop("reason"), "lacks reason"),
        (lambda h: h.update(epochs_run=EPOCHS + 1, loss=[1.0] * 4, accuracy=[1] * 4, val_loss=[1] * 4,
                            val_accuracy=[1] * 4, kernel_std={k: [1.0] * 5 for k in LAYERS}),
         "do not make 5 frames"),
    ],
)  # fmt: skip
def test_a_history_that_does_not_fit_the_snapshots_is_one_line_and_keeps_the_old_film(tmp_path, change, message):
    history = write_training(tmp_path)
    render_film.run(film_config(), tmp_path, "trained")
    before = {p.name: p.read_bytes() for p in paths.film_dir(tmp_path).iterdir()}
    change(history)
    paths.train_history(tmp_path).write_text(json.dumps(history), encoding="utf-8")
    with pytest.raises(ConvlensError, match=message):
        render_film.run(film_config(), tmp_path, "trained")
    assert {p.name: p.read_bytes() for p in paths.film_dir(tmp_path).iterdir()} == before


def test_the_stage_runs_only_for_a_training_run(tmp_path):
    cfg = film_config()
    cfg.model.train_runs = []
    with pytest.raises(ConvlensError, match="use -S model=train"):
        render_film.run(cfg, tmp_path, "trained")


@pytest.fixture(scope="module")
def params() -> dict:
    params = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))
    params["model"]["train_runs"] = ["trained"]
    return params


@pytest.mark.parametrize("language", ["en", "ko"])
def test_the_section_shows_the_film_as_files_beside_the_page(filmed, params, tmp_path, language):
    root, _ = filmed
    out = tmp_path / "report"
    write_report(root, params, language, out)
    html = (out / paths.REPORT_NAME).read_text(encoding="utf-8")
    page = Page(html)
    assert page.sections == list(SECTIONS) and "training" in SECTIONS
    shown = page.section_notes(html, "training")
    t = Strings(language)
    assert t("training_title") in shown
    for gif in ("conv2d_filters.gif", "conv2d_1_filters.gif", "conv2d_maps_0.gif", "conv2d_maps_1.gif"):
        src = f"figures/film/{gif}"
        assert f'src="{src}"' in shown  # a relative path inside the page's folder: it plays offline
        with Image.open(out / src) as film:
            assert film.n_frames == EPOCHS + 1
    for png in ("learning_curves.png", "kernel_std.png", "conv2d_filters_strip.png"):
        assert f'src="figures/film/{png}"' in shown and (out / "figures" / "film" / png).is_file()
    assert "val_loss did not improve for 1 epoch" in shown  # why it stopped
    stopped = t("training_stopped_early", epochs_words=t.count("training_epochs", 3), reason="x", best=2,
                val_accuracy="0.81", seconds="2")  # fmt: skip
    assert stopped.split("x")[0] in shown  # when it stopped
    assert "0.2335" in shown and "0.08464" in shown  # the book's values beside this run's
    assert "not run yet" not in shown and "아직" not in shown


def test_the_section_inline_plays_the_gif(filmed, params):
    from convlens.report.build import report_page

    root, _ = filmed
    html = report_page(root, params, "en")  # the default: images inline, one file
    assert html.count('src="data:image/gif;base64,') == 4  # two filter films, the maps films of two samples


def test_without_training_here_the_section_is_one_note(filmed, params):
    """With the book's model (model.train_runs: []), a film left from an earlier run is not shown."""
    from convlens.report.build import report_page

    root, _ = filmed
    book = params | {"model": params["model"] | {"train_runs": []}}
    html = report_page(root, book, "en")
    shown = Page(html).section_notes(html, "training")
    assert inline_code(Strings("en")("training_off", command="dvc exp run -S model=train")) in shown
    assert "<img" not in shown and "not run yet" not in shown  # a sentence, not a warning: nothing is missing


def test_trained_here_without_the_film_yet_is_a_note(tmp_path, params):
    from convlens.report.build import report_page

    html = report_page(tmp_path, params, "en")
    shown = Page(html).section_notes(html, "training")
    assert "not run yet: outputs/figures/film/film.json is missing" in shown and "(stage render_film@trained)" in shown


def test_a_one_epoch_run_is_said_once_in_the_singular_and_the_kept_epoch_is_not_called_the_last(tmp_path, params):
    from convlens.report.build import report_page

    history = write_training(tmp_path, epochs=1) | {"best_epoch": 1, "stopped_early": False}
    paths.train_history(tmp_path).write_text(json.dumps(history), encoding="utf-8")
    render_film.run(film_config(), tmp_path, "trained")
    html = report_page(tmp_path, params, "en")
    shown = Page(html).section_notes(html, "training")
    assert (
        "Training ran 1 epoch (2 s each on average): train.epochs reached; the weights of epoch 1 (lowest val_loss) "
        "were kept. The model kept is epoch 1&#39;s (val accuracy 0.8)."
    ) in shown
    assert "1 epochs" not in shown and "ran all" not in shown
    assert "the last epoch the model kept" not in shown and "the epoch of the lowest val_loss" in shown
    korean = report_page(tmp_path, params, "ko")
    assert "1개 에포크를 훈련했습니다" in Page(korean).section_notes(korean, "training")


@pytest.mark.filterwarnings("error:Glyph .* missing from font:UserWarning")
def test_the_korean_film_has_every_glyph(tmp_path):
    """report.language=ko: the film's words from the figures' catalogue, drawn in the Korean font."""
    write_training(tmp_path, epochs=1)
    cfg = film_config()
    cfg.report.language = "ko"
    render_film.run(cfg, tmp_path, "trained")
    with Image.open(paths.film_dir(tmp_path) / "conv2d_filters.gif") as film:
        assert film.n_frames == 2
