"""The whole config described once: every key of ``params.yaml``, its type and its range.

One table (:data:`SCHEMA`) says what each key may hold; :func:`check_config` checks a config against it
and raises one :class:`ConvlensError` line naming the key, the value and a valid example. It runs when
``conf/`` is composed (``make params``, a standalone stage's overrides), in the ``check_config`` stage
that heads the DVC pipeline (so a bad value stops ``dvc repro`` / ``dvc exp run`` before DVC deletes any
stage's outputs), and at the start of every stage for the keys it reads.

Checks that need the model or the data (a layer name the model lacks, a sample index beyond the split)
are made by the stage that has them, with the same kind of line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from convlens.checks import (
    SHA256,
    Check,
    choice,
    colormap,
    data_files,
    data_location,
    data_path,
    folder_layers,
    image_size,
    integer,
    items,
    layer_spec,
    model_path,
    number,
    optional,
    safe_name,
    text,
    url,
)
from convlens.errors import ConvlensError

SPLITS = ("train", "test")
ENGINES = ("auto", "numpy", "keras")  # compute.engine: convlens/model/engine.py (its ENGINES), docs/gpu.md
ATTRIBUTION_METHODS = ("saliency", "smoothgrad", "integrated_gradients", "occlusion")  # beside Grad-CAM


# data.format: the reader; DATA_ROLES: the files a download of each format names in data.files (data.path replaces
# them: an .npz, a CIFAR .tar.gz or an image folder of your own). data.color: how images are stored.
DATA_ROLES = {
    "idx": ("train_images", "train_labels", "test_images", "test_labels"),
    "npz": ("archive",),
    "cifar10": ("archive",),
    "cifar100": ("archive",),
    "folder": (),
}
DATA_COLORS = ("keep", "gray", "rgb")
MAX_SIDE = 4096  # data.resize: 4096 × 4096 × 3 is 48 MiB an image
MAX_CLASSES = (10_000, "one row per class in the report's tables")


INPUT_CHANNEL_MODES = ("first", "mean", "all", "rgb", "auto")


EXAMPLE_MODES = ("max", "mean")  # dataset examples: a channel's activation on one image, over its positions
HEATMAP_SCALES = ("absolute", "channel")  # class heatmaps: one colour range per model, or one per channel
HEATMAP_ORDERS = ("selectivity", "layer")  # class heatmaps' rows: most selective channel first, or as in the layer
LANGUAGES = ("en", "ko")  # report.language: the tables in convlens/report/templates/strings.yaml


RESOLVER = "convlens_checked"  # ${convlens_checked:} in conf/config.yaml, see register_resolver


CHECKED = "conf/ passed convlens/schema.py"


MAX_BATCH = 100_000


ANALYSIS_MODELS = ("trained", "untrained")  # analyses.activation_max: the activation_max@<model> stages
ATTRIBUTION = "trained_vs_untrained"  # analyses.attribution's one item: gradcam@ and render_gradcam@ (both models)


TRAIN_RUNS = ("trained",)  # model.train_runs: the train@<run> stages; the model trained here is the pipeline's trained
MAX_EPOCHS = 10_000
MAX_FILTERS = 4096  # train.architecture.filters: channels of one conv layer
MAX_CONV_LAYERS = (16, "each conv layer is followed by a 2×2 max pooling, which halves the image")


MAX_DPI = 600


MAX_EXAMPLES = 1024  # dataset examples per channel: each channel's tile holds this many images


MAX_COLUMNS = 1024


MAX_BINS = 10_000


MAX_STEPS = 100_000  # gradient-ascent steps: ~10 ms each for the book's conv2d_1


# samples.indices: each sample's maps are drawn for every layer, trained and untrained, and the one report page
# embeds them all (~0.3 MB a sample with the book's two layers): 100 make a ~40 MB page, 1,000 one no browser opens
MAX_SAMPLES = (100, "the report embeds every sample's feature maps of every layer")


SCHEMA: dict[str, Check] = {
    "model.name": safe_name,
    "model.file": optional(safe_name),
    "model.url": optional(url),
    "model.sha256": optional(text(SHA256, "64 lowercase hex digits (the file's sha256)")),
    "model.path": model_path,
    "model.source": model_path,
    "model.conv_layers": optional(items(layer_spec, "[conv2d,conv2d_1]")),
    "model.train_runs": items(choice(TRAIN_RUNS), "[trained]", min_len=0),
    "model.film": text(want="a path (outputs/figures/film or outputs/checked_config.txt)"),
    "analyses.name": safe_name,
    "analyses.activation_max": items(choice(ANALYSIS_MODELS), "[trained,untrained]", min_len=0),
    "analyses.attribution": items(choice((ATTRIBUTION,)), f"[{ATTRIBUTION}]", min_len=0),
    **{
        f"analyses.{key}": text(want="a path (the analysis' output, or outputs/checked_config.txt)")
        for key in ("activation_max_outputs", "activation_max_figures", "attribution_metrics", "attribution_figures")
    },
    "data.name": safe_name,
    "data.format": choice(list(DATA_ROLES)),
    "data.subdir": optional(safe_name),
    "data.urls": items(url, "[https://host/path/]", min_len=0),
    "data.files": data_files,
    "data.path": data_path,
    "data.source": data_path,
    "data.classes": optional(items(text(), "[T-shirt/top, Trouser]", max_len=MAX_CLASSES)),
    "data.resize": optional(image_size(MAX_SIDE)),
    "data.color": choice(DATA_COLORS),
    "data.test_fraction": number(0, 0.9, "0.2", low_open=True),
    "data.seed": integer(0, 2**32 - 1, "0"),
    "untrained.seed": integer(0, 2**32 - 1, "42"),
    "train.epochs": integer(1, MAX_EPOCHS, "20"),
    "train.patience": integer(0, MAX_EPOCHS, "2"),
    "train.batch_size": integer(1, MAX_BATCH, "32"),
    "train.learning_rate": number(0, 10, "0.001", low_open=True),
    "train.seed": integer(0, 2**32 - 1, "42"),
    "train.validation_fraction": number(0, 1, "0.2", low_open=True, high_open=True),
    "train.architecture.filters": items(integer(1, MAX_FILTERS), "[32,64]", unique=False, max_len=MAX_CONV_LAYERS),
    "train.architecture.kernel_size": integer(1, 64, "3"),
    "train.architecture.dense_units": integer(1, 100_000, "100"),
    "train.architecture.dropout": number(0, 1, "0.4", high_open=True),
    "input.scale": number(1e-3, 1e6, "255"),  # beyond: inputs that overflow float32 or vanish (every map NaN or 0)
    "samples.split": choice(SPLITS),
    "samples.indices": items(integer(0, 2**31 - 1), "[0,1]", max_len=MAX_SAMPLES),
    "weights.layers": optional(items(layer_spec, "[conv2d,conv2d_1]")),
    "weights.percentiles": items(number(0, 100), "[5,50,95]"),
    "feature_maps.layers": optional(folder_layers),
    "feature_maps.each": folder_layers,
    "feature_maps.batch_size": integer(1, MAX_BATCH, "256"),
    "dataset.split": choice(SPLITS),
    "dataset.limit": optional(integer(1, 2**31 - 1, "1000")),
    "dataset.layers": optional(items(layer_spec, "[conv2d,max_pooling2d]")),
    "dataset.batch_size": integer(1, MAX_BATCH, "500"),
    "dataset.examples.k": integer(1, MAX_EXAMPLES, "9"),
    "dataset.examples.by": choice(EXAMPLE_MODES),
    "render.dpi": integer(10, MAX_DPI, "100"),
    "render.hist_bins": integer(1, MAX_BINS, "10"),
    "render.filter_cmap": colormap,
    "render.filter_vmin": number(-1e6, 1e6, "-0.5"),
    "render.filter_vmax": number(-1e6, 1e6, "0.5"),
    "render.filter_columns": integer(1, MAX_COLUMNS, "16"),
    "render.input_channels": choice(INPUT_CHANNEL_MODES),
    "render.map_cmap": colormap,
    "render.map_columns": optional(integer(1, MAX_COLUMNS, "8")),
    "render.sample_cmap": colormap,
    "render.heatmap_cmap": colormap,
    "render.heatmap_scale": choice(HEATMAP_SCALES),
    "render.heatmap_order": choice(HEATMAP_ORDERS),
    "activation_max.layers": optional(items(layer_spec, "[conv2d,conv2d_1]")),
    "activation_max.seed": integer(0, 2**32 - 1, "0"),
    "activation_max.steps": integer(1, MAX_STEPS, "256"),
    "activation_max.learning_rate": number(0, 10, "0.05", low_open=True),
    "activation_max.jitter": integer(0, 64, "1"),
    "activation_max.blur_every": integer(0, MAX_STEPS, "4"),
    "activation_max.blur_sigma": number(0, 16, "0.5", low_open=True),
    "activation_max.decay": number(0, 0.5, "0.0"),
    "activation_max.tolerance": number(0, 1, "0.001"),
    "activation_max.window": integer(1, MAX_STEPS, "32"),
    "activation_max.start": choice(("noise", "top_image")),
    "activation_max.starts": integer(1, 64, "4"),
    "activation_max.scale": number(0, 0.5, "0.05"),
    "activation_max.rotate": number(0, 180, "5"),
    "activation_max.tv": number(0, 1e6, "0.1"),
    "activation_max.l2": number(0, 1e6, "0.1"),
    "gradcam.layer": optional(layer_spec),
    "gradcam.cmap": colormap,
    "gradcam.alpha": number(0, 1, "0.85"),
    "attribution.methods": items(choice(ATTRIBUTION_METHODS), "[saliency,integrated_gradients]", min_len=0),
    "attribution.scale": choice(("shared", "each")),
    "attribution.baseline": choice(("black", "mean")),
    "attribution.ig_steps": integer(1, 4096, "32"),
    "attribution.smoothgrad_samples": integer(1, 1024, "16"),
    "attribution.smoothgrad_noise": number(0, 1, "0.15"),
    "attribution.occlusion_window": integer(1, MAX_SIDE, "4"),
    "attribution.occlusion_stride": integer(1, MAX_SIDE, "4"),
    "attribution.sanity_split": choice(SPLITS),
    "attribution.sanity_images": integer(0, 1_000_000, "200"),
    "attribution.batch_size": integer(1, MAX_BATCH, "100"),
    "attribution.deletion_steps": integer(1, 1000, "10"),
    "attribution.seed": integer(0, 2**32 - 1, "0"),
    "attribution.sanity_max_rho": number(0, 1, "0.5"),
    "report.language": choice(LANGUAGES),
    "film.filters": integer(1, MAX_COLUMNS, "16"),
    "film.frame_ms": integer(20, 60_000, "500"),
    "compute.engine": choice(ENGINES),
    "checked": choice([CHECKED]),
}


# What each key means, one sentence each: docs/configuration.md's table is rendered from this, SCHEMA (type, range)
# and conf/ (default) by `python -m convlens docs-config` (config_table); tests/project/test_docs_config.py keeps
# them equal.
MEANING: dict[str, str] = {
    "model.name": "The model's name in the log: `book`, `local`, or that of your own `conf/model/<name>.yaml`.",
    "model.file": "The file name the book's model is downloaded and cached as; `null` for your own model.",
    "model.url": "Where the book's model is downloaded from, pinned to a commit of rickiepark/hg-mldl (MIT, © Haesun "
    "Park); `null` for your own model.",
    "model.sha256": "The book's model's sha256: a download or local copy with another is refused; `null` for your "
    "own model, which is still checked as a safe, loadable Keras file.",
    "model.path": "Your own model (`-S model=local -S model.path=FILE`): a `.keras` or legacy `.h5` file, relative "
    "to the project root or absolute, checked before anything reads it; `null` for the book's model.",
    "model.source": "The file `fetch_model` depends on in `dvc.yaml`: `conf/model/book.yaml` (which pins the "
    "download) for the book, `model.path` itself for yours, so replacing it in place reruns the pipeline.",
    "model.conv_layers": "The preset model's conv layers, so `feature_maps.layers=null` is filled in before the "
    "download (`fetch_model` checks them); `null` for your own model, whose file is read while `conf/` is composed.",
    "model.train_runs": "Not a setting of yours: `[trained]` in `conf/model/train.yaml` (DVC's `foreach` makes the "
    "`train@trained` stage of it), `[]` in every other model preset (no training stage).",
    "model.film": "The film of the filters the report depends on: `outputs/figures/film` with `-S model=train`, else "
    "`outputs/checked_config.txt` (a file it depends on anyway).",
    "analyses.name": "Which analyses beyond the chapter run: `light` (the default: the chapter, one pass over the "
    "data per model, the report) or `full` (`-S analyses=full`: also activation maximization and attribution).",
    "analyses.activation_max": "The models whose channels get activation maximization (DVC's `foreach` makes "
    "`activation_max@<model>` and `render_activation_max@<model>` of it): `[]` with `light`, `[trained,untrained]` "
    "with `full` (`-S analyses=full -S 'analyses.activation_max=[trained]'`: the trained model's only).",
    "analyses.attribution": f"`[{ATTRIBUTION}]` with `full` (DVC's `foreach` makes `gradcam@{ATTRIBUTION}` and "
    f"`render_gradcam@{ATTRIBUTION}` of it: both models on one scale), `[]` with `light` (no attribution).",
    "analyses.activation_max_outputs": "Not a setting of yours: what `metrics` depends on, `outputs/activation_max` "
    "when `analyses.activation_max` lists a model, else `outputs/checked_config.txt` (a file it depends on anyway).",
    "analyses.activation_max_figures": "Not a setting of yours: what `report` depends on, "
    "`outputs/figures/activation_max` when `analyses.activation_max` lists a model, else `outputs/checked_config.txt`.",
    "analyses.attribution_metrics": "Not a setting of yours: what `report` depends on, `outputs/metrics/gradcam.json` "
    "when `analyses.attribution` is not empty, else `outputs/checked_config.txt`.",
    "analyses.attribution_figures": "Not a setting of yours: what `report` depends on, `outputs/figures/gradcam` when "
    "`analyses.attribution` is not empty, else `outputs/checked_config.txt`.",
    "data.name": "The data's name in the log: `fashion_mnist`, `mnist`, `cifar10`, `cifar100`, `npz`, `folder`, or "
    "that of your own `conf/data/<name>.yaml`.",
    "data.format": "How the data is read: `idx` (four IDX files), `npz` (`keras.datasets` layout: x_train, y_train, "
    "x_test, y_test, optional class_names; read without pickle), `cifar10` / `cifar100` (the python `.tar.gz`, "
    "read without unpickling or extracting) or `folder` (one subfolder of PNG/JPEG/BMP images per class).",
    "data.subdir": "The data's folder in a mirror or cache, also looked up in `~/.keras/datasets/` (Keras's own "
    "cache); `null` for `data.path`.",
    "data.urls": "Where `data.files` are downloaded from, in order (Fashion-MNIST: the Keras bucket, then Zalando's "
    "server); `[]` for `data.path`.",
    "data.files": "The files to download, each a role (`train_images`, … for `idx`; `archive` for `npz` and CIFAR), "
    "a name and the sha256 that decides whatever its source; `{}` for `data.path`.",
    "data.path": "Your own data (`-S data=npz -S data.path=FILE`, `-S data=folder -S data.path=DIR`, or a CIFAR "
    "`.tar.gz`: `-S data=npz -S data.format=cifar10 -S data.path=FILE`), relative to the project root or absolute, "
    "checked before anything reads it; `null` to download.",
    "data.source": "The file `fetch_data` depends on in `dvc.yaml`: `conf/data/<preset>.yaml` (which pins the "
    "download) for a preset, `data.path` itself for yours, so replacing it in place reruns the pipeline.",
    "data.classes": "The class names by label, as figures, tables and the report show them; `null`: the data's own "
    "(CIFAR's meta file, an NPZ's class_names, a folder's class folder names), else `0`..`K-1`.",
    "data.resize": "`null`: images keep their size (a folder's must all have one); `[H, W]`: every image resized "
    "with Pillow's bilinear filter (antialiased when shrinking).",
    "data.color": "`keep`: gray stays N×H×W and colour N×H×W×3 (a folder's must all be one); `gray`: Pillow's ITU-R "
    "601-2 luma (L = 0.299 R + 0.587 G + 0.114 B); `rgb`: three channels.",
    "data.test_fraction": "The share of a folder's images held out as the test split when it has no `train/` and "
    "`test/` folders.",
    "data.seed": "Seed of the order of a folder's images (shuffled, as Keras does) and of its train/test split.",
    "untrained.seed": "Seed of the untrained model (the trained model's architecture freshly initialised, the book's "
    "baseline); 42, the book notebook's, reproduces the book's untrained numbers.",
    "train.epochs": "`-S model=train`: the most epochs of training (the book's 20); early stopping usually ends "
    "sooner.",
    "train.patience": "Epochs without a lower `val_loss` before training stops, the best epoch's weights restored "
    "(Keras's `EarlyStopping(patience=…, restore_best_weights=True)`; the book's 2; 0: stop at the first rise).",
    "train.batch_size": "Images per training step (Keras's default 32, as the book's `fit`).",
    "train.learning_rate": "Adam's learning rate (the book's `optimizer='adam'`: 0.001).",
    "train.seed": "Seed of the training's randomness (`keras.utils.set_random_seed`, deterministic ops on): the "
    "order of the images in each epoch and the dropout masks. The initial weights come from `untrained.seed`.",
    "train.validation_fraction": "The share of the train split held out to validate on, chosen as scikit-learn's "
    "`train_test_split(test_size=…, random_state=42)` chooses it (the book's 0.2).",
    "train.architecture.filters": "One `Conv2D(f, kernel_size, relu, same)` followed by a 2×2 max pooling per "
    "entry (the book's [32, 64]); name `model.conv_layers` `[conv2d, conv2d_1, …]`, one per entry.",
    "train.architecture.kernel_size": "The side of every conv kernel (the book's 3).",
    "train.architecture.dense_units": "Units of the hidden `Dense(…, relu)` after `Flatten` (the book's 100).",
    "train.architecture.dropout": "The `Dropout` rate before the softmax layer (the book's 0.4); below 1.",
    "input.scale": "Pixels / scale are the model's inputs in every forward pass (the book's `/ 255.0`; `1`: raw "
    "0–255 pixels); a model with `Rescaling` or `Normalization` before its first conv layer gets raw pixels and the "
    "log says so. A divisor outside 0.001..1000000 would make inputs whose activations overflow or vanish.",
    "samples.split": "The split the sample images come from.",
    "samples.indices": "The images to look at (the book: training image 0); each one's maps are drawn for every "
    "layer and embedded in the report.",
    "weights.layers": "Layers whose kernels are extracted and drawn (names, `outer/inner` in a nested model, or "
    "indices into Keras's `load_model(path).layers`, whose list starts with the InputLayer in a functional model and "
    "not in a Sequential one); `null`: every Conv2D, DepthwiseConv2D and SeparableConv2D, nested ones too.",
    "weights.percentiles": "The percentiles of each kernel that `metrics/weights_<model>.csv` lists.",
    "feature_maps.layers": "Layers whose feature maps are computed and drawn, one `feature_maps@`/`render_maps@` "
    "stage each (names, `outer/inner`, indices; Conv2D, pooling, Dense, any layer: Keras computes what numpy "
    "does not); `null`: every conv layer of the model (the book's: conv2d, conv2d_1).",
    "feature_maps.each": "Not a setting: the layers DVC's `foreach` makes stages of, filled in by "
    "`${convlens_layers:}` while `conf/` is composed: `feature_maps.layers`, or every conv layer of the model.",
    "feature_maps.batch_size": "Images per forward-pass batch, capped (with a log line) where a batch would not fit "
    "in memory.",
    "dataset.split": "The split `dataset@<model>` streams through each model, once: the statistics, the top images "
    "and the accuracy (the book's `model.evaluate(test_scaled, test_target)`).",
    "dataset.limit": "`null`: every image of the split; N: its first N images.",
    "dataset.layers": "Layers whose channels get dataset statistics and examples; `null`: every conv and pooling "
    "layer.",
    "dataset.batch_size": "Images per batch while `dataset@<model>` streams the split.",
    "dataset.examples.k": "The top images kept per channel (at most the images streamed, `dataset.limit`).",
    "dataset.examples.by": "How a channel's feature map scores one image: its `max` or its `mean` over positions.",
    "render.dpi": "Resolution of every figure.",
    "render.hist_bins": "Bins of the weight histograms (`plt.hist`'s default, as the book).",
    "render.filter_cmap": "Colormap of the filter grids (`imshow`'s default, as the book).",
    "render.filter_vmin": "Lower end of the filter grids' fixed colour range (the book's -0.5); below "
    "`render.filter_vmax`.",
    "render.filter_vmax": "Upper end of the filter grids' fixed colour range (the book's 0.5).",
    "render.filter_columns": "Filters per row of a filter grid (the book's 2 × 16 grid for 32 filters).",
    "render.input_channels": "Kernels with several input channels: `first` (as the book), their `mean`, `all` "
    "(one row per input channel), `rgb` (a kernel with 3 input channels as colour tiles, each filter min–max "
    "scaled; other kernels refused) or `auto` (`rgb` for a kernel with exactly 3 input channels, `first` otherwise).",
    "render.map_cmap": "Colormap of the feature-map grids.",
    "render.map_columns": "Maps per row of a feature-map grid; `null`: derived (4 × 8 for 32 maps, 8 × 8 for 64, as "
    "the book).",
    "render.sample_cmap": "Colormap of the sample images.",
    "render.heatmap_cmap": "Colormap of the channels × classes heatmaps (`dataset@<model>`'s class means).",
    "render.heatmap_scale": "Colour range of the class heatmaps (one figure per model): `absolute` (the activations "
    "themselves, 0 to the model's largest class mean, read on its colourbar: a weak channel looks pale) or `channel` "
    "(each channel from its least to its most active class: which classes make it fire, however weakly).",
    "render.heatmap_order": "Rows of the class heatmaps: `selectivity` (most selective channel first; the selectivity "
    "is drawn beside each row) or `layer` (the layer's channel order).",
    "activation_max.layers": "Layers whose channels get the input that maximizes them; `null`: every conv layer (the "
    "book: conv2d, conv2d_1); or names, `outer/inner`, indices.",
    "activation_max.seed": "Seed of the starting gray noise and of the random shifts, zooms and rotations.",
    "activation_max.steps": "The most gradient-ascent steps per layer and start (all of a layer's channels at once); "
    "the stopping rule (`tolerance`) usually ends the ascent sooner.",
    "activation_max.learning_rate": "How far each step moves an input, as a fraction of the pixel range (rms of the "
    "normalized gradient).",
    "activation_max.jitter": "Each step sees the input shifted by up to this many pixels: robust, less noisy patterns.",
    "activation_max.blur_every": "A Gaussian blur every this many steps (0: never): smooth, readable inputs.",
    "activation_max.blur_sigma": "The blur's sigma, in pixels.",
    "activation_max.decay": "Each step x ← (1 − decay)·x, so pixels no channel needs fade to the background (0: off).",
    "activation_max.tolerance": "The stopping rule: a layer's ascent stops once no channel's best activation rose by "
    "more than this fraction over the last `window` steps; each channel keeps its best input (0: run all `steps`).",
    "activation_max.window": "Steps over which the stopping rule looks for progress.",
    "activation_max.start": "Where each channel's first ascent starts: `noise` (gray noise) or `top_image` (the "
    "channel's best image of the dataset split, from `dataset@<model>`; noise for a layer it did not compute).",
    "activation_max.starts": "Ascents per channel, the first from `start`, the others from gray noise of the next "
    "seeds; each channel keeps its best, and `start_ratio_median` says how far the first fell short (1: off).",
    "activation_max.scale": "Each step sees the input zoomed by a random factor in 1 ± scale (transformation "
    "robustness; 0: off).",
    "activation_max.rotate": "Each step sees the input rotated by a random angle of up to this many degrees (0: off).",
    "activation_max.tv": "Weight of the total-variation penalty (mean absolute difference of neighbouring pixels, as "
    "fractions of the pixel range) subtracted from the objective (0: off).",
    "activation_max.l2": "Weight of the L2 penalty (mean squared pixel, as a fraction of the range) subtracted from "
    "the objective (0: off).",
    "gradcam.layer": "The layer Grad-CAM looks at (name or index), a layer of the model itself whose output is a "
    "feature map: not a layer inside a nested model (`outer/inner` is refused), but the nested model itself (a "
    "transfer-learning base: `gradcam.layer=base`); `null`: the last conv layer of the model itself.",
    "gradcam.cmap": "Colormap of the Grad-CAM maps over the sample image.",
    "gradcam.alpha": "Opacity of the attribution maps over the sample image at the top of their scale; each pixel is "
    "as opaque as its attribution is strong, so where a map is zero the image shows as it is.",
    "attribution.methods": "Pixel-level attribution methods drawn and checked beside Grad-CAM (always there): "
    "`saliency`, `integrated_gradients` (cheap), `smoothgrad`, `occlusion` (heavier).",
    "attribution.scale": "`shared`: a figure row's trained and untrained maps on one colour scale with its colourbar "
    "(a weak map looks weak); `each`: each map scaled to its own maximum.",
    "attribution.baseline": "The input a removed pixel becomes: integrated gradients' starting point, occlusion's "
    "patch, the deletion curve's removed pixels (`black`: zeros; `mean`: the sanity images' mean).",
    "attribution.ig_steps": "Integrated gradients: gradient evaluations (midpoints) along the path from the baseline.",
    "attribution.smoothgrad_samples": "SmoothGrad: noisy copies of each image whose absolute gradients are averaged.",
    "attribution.smoothgrad_noise": "SmoothGrad: the noise's standard deviation as a fraction of each image's value "
    "range.",
    "attribution.occlusion_window": "Occlusion: the side of the square patch set to the baseline, in pixels.",
    "attribution.occlusion_stride": "Occlusion: how far the patch moves each step, in pixels.",
    "attribution.sanity_split": "The split whose first images the sanity checks stream.",
    "attribution.sanity_images": "How many images the sanity checks (cascading randomization, deletion curve) run "
    "over; 0: none, the samples' randomization test only.",
    "attribution.batch_size": "Images per batch of the sanity checks.",
    "attribution.deletion_steps": "The deletion curve's points: 0, 1/N, …, all of the pixels removed.",
    "attribution.seed": "Seed of SmoothGrad's noise and of the order in which tied pixels are removed: each "
    "image and method draws from its own stream, so a method's numbers do not depend on the others or the batches.",
    "attribution.sanity_max_rho": "The randomization check passes a method where the median |ρ| of its trained and "
    "untrained maps (over the pixels not zero in both) is at most this, fails it above (a warning; the stage still "
    "succeeds); over fewer than 10 images (or samples) with a ρ it says too few to decide.",
    "report.language": "Language of the report's and the comparison page's headings and captions, and of every "
    "figure's text (`ko`: the chapter's own terms, Hangul in NanumGothic from koreanize-matplotlib).",
    "film.filters": "`-S model=train`: the filters each conv layer's strip shows as columns, one row per epoch (its "
    "first N; all where it has fewer); the GIFs show every filter.",
    "film.frame_ms": "`-S model=train`: how long each frame of the film's GIFs shows, in milliseconds (20 or more: "
    "browsers slow faster frames down).",
    "compute.engine": "What computes the layers when `dataset@<model>` streams a split through the model: `numpy` "
    "(the numpy forward pass, starts at once), `keras` (TensorFlow: ~3.5 s to start, then faster per image; a GPU "
    "when one is set up, docs/gpu.md) or `auto` (Keras from 175 G multiply-adds per pass, ~42,000 images of "
    "the book's model, or when a GPU is visible; the log says which and why).",
    "checked": "Not a setting: `${convlens_checked:}` in `conf/config.yaml` checks the whole config against this "
    "schema while it is composed, before DVC touches any output.",
}


# Render params checked together (a colour range), and again by the drawing functions that take them.


def check_input_channels(mode: str) -> None:
    """How filters with several input channels are drawn: one of ``INPUT_CHANNEL_MODES``."""
    if mode not in INPUT_CHANNEL_MODES:
        raise ConvlensError(f"render.input_channels={mode!r} is not one of {', '.join(INPUT_CHANNEL_MODES)}")


def check_filter_range(vmin: float, vmax: float) -> None:
    """The fixed colour range of filter grids must be a real interval."""
    for key, value in (("filter_vmin", vmin), ("filter_vmax", vmax)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConvlensError(f"render.{key} must be a number, got {value!r}")
    if not vmin < vmax:
        raise ConvlensError(f"render.filter_vmin ({vmin}) must be below render.filter_vmax ({vmax})")


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``, stopping at keys the schema describes as a whole."""
    flat: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and key not in SCHEMA:
            flat.update(flatten(v, f"{key}."))
        else:
            flat[key] = v
    return flat


# A run's own choices only where they apply: the training recipe (train.*) where the run trained its model
# (model.train_runs), model.path where it is not the file training writes (model=train pins it); elsewhere blank
# (the experiments table, the compare page).
TRAINED_HERE = "model.train_runs"
RECIPE = "train"
TRAINED_MODEL_PATH = "model.path"


def not_chosen(flat: Mapping[str, Any]) -> set[str]:
    """The keys of a run's flat params that are not its choice, so blank in its row: ``train.*`` where it did not
    train its model here (no :data:`TRAINED_HERE`: the recipe is params.yaml's default, unused), ``model.path``
    where it did (the path training writes, pinned by ``conf/model/train.yaml``)."""
    if flat.get(TRAINED_HERE):
        return {TRAINED_MODEL_PATH} & set(flat)
    return {k for k in flat if k.startswith(f"{RECIPE}.")}


def short(value: Any, limit: int = 30) -> str:
    """A value as a message shows it, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def own_data_overrides(fmt: str, path: Any) -> str:
    """The ``-S`` options that read ``path`` as ``fmt``: the npz and folder presets are the ones without files to
    download, so your own CIFAR archive is ``-S data=npz`` with its ``data.format``."""
    if fmt in ("npz", "folder"):
        return f"-S data={fmt} -S data.path={path}"
    return f"-S data=npz -S data.format={fmt} -S data.path={path}"


def _data_checks(flat: Mapping[str, Any]) -> None:
    """``data.format``, ``data.path`` and ``data.files`` agree: a download names its format's files, your own data
    is ``data.path`` alone, and ``data.source`` is what ``fetch_data`` depends on."""
    fmt, files, path = flat.get("data.format"), flat.get("data.files"), flat.get("data.path")
    if fmt not in DATA_ROLES or not isinstance(files, Mapping) or "data.path" not in flat:
        return
    if path is None and (fmt == "folder" or (not files and fmt != "idx")):
        raise ConvlensError(
            f"data.format={fmt} reads data.path, which is null; set it: -S data={fmt} -S data.path=FILE (or DIR)"
        )
    if path is None and set(files) != set(DATA_ROLES[fmt]):
        raise ConvlensError(
            f"data.format={fmt} downloads data.files {', '.join(DATA_ROLES[fmt])}, got {', '.join(files) or 'none'}; "
            "use a preset of conf/data/ (-S data=mnist) or your own data.path"
        )
    if path is not None and fmt == "idx":
        raise ConvlensError(
            "data.format=idx reads the IDX files of data.files, not data.path; for your own data use "
            "-S data=npz or -S data=folder with data.path"
        )
    if path is not None and (files or flat.get("data.urls")):
        raise ConvlensError(
            f"data.path ({path}) is your own data, so data.files and data.urls must be empty; "
            f"start from a preset without them: {own_data_overrides(fmt, path)}"
        )
    source = flat.get("data.source", "")
    if path is not None and source not in ("", path):
        raise ConvlensError(
            f"data.source ({source}) must be data.path ({path}): it is the file fetch_data depends on; leave it as "
            "conf/data/npz.yaml sets it (${data.path})"
        )
    if path is None and source is None:
        raise ConvlensError("data.source is null; name the preset's file, e.g. data.source=conf/data/mnist.yaml")


def conv_layer_names(count: int) -> list[str]:
    """The names Keras gives a fresh model's conv layers: ``conv2d``, ``conv2d_1``, …"""
    return ["conv2d" if i == 0 else f"conv2d_{i}" for i in range(count)]


def _train_checks(flat: Mapping[str, Any]) -> None:
    """With ``model.train_runs`` (``-S model=train``) the model is built here: its conv layers are known."""
    runs, filters = flat.get("model.train_runs"), flat.get("train.architecture.filters")
    if not runs or not isinstance(filters, list | tuple) or "model.conv_layers" not in flat:
        return
    names = conv_layer_names(len(filters))
    if list(flat["model.conv_layers"] or []) != names:
        raise ConvlensError(
            f"model.conv_layers ({flat['model.conv_layers']}) must name the conv layers of "
            f"train.architecture.filters {list(filters)}: set -S 'model.conv_layers=[{','.join(names)}]'"
        )


def _cross_checks(flat: Mapping[str, Any]) -> None:
    if flat.get("model.path") is not None and "model.source" in flat and flat["model.source"] != flat["model.path"]:
        if flat.get("model.name") not in (None, "local"):  # model.path given to a preset (model=book)
            raise ConvlensError(
                f"model.path ({flat['model.path']}) is your own model, but model={flat['model.name']} is a preset "
                f"that downloads its own; choose yours with -S model=local -S model.path={flat['model.path']}"
            )
        raise ConvlensError(
            f"model.source ({flat['model.source']}) must be model.path ({flat['model.path']}): it is the file "
            "fetch_model depends on; leave it as conf/model/local.yaml sets it (${model.path})"
        )
    if flat.get("model.path") is None and flat.get("model.url") is None and "model.url" in flat:
        raise ConvlensError("the model has neither model.path nor model.url; use -S model=book or model.path=FILE")
    layers, each = flat.get("feature_maps.layers"), flat.get("feature_maps.each")
    if layers is not None and each is not None and list(each) != list(layers):
        raise ConvlensError(
            f"feature_maps.each ({list(each)}) must be feature_maps.layers ({list(layers)}); it is filled in while "
            "conf/ is composed: recompose params.yaml with `make params` instead of editing it"
        )
    _data_checks(flat)
    _train_checks(flat)
    k, limit = flat.get("dataset.examples.k"), flat.get("dataset.limit")
    if isinstance(k, int) and isinstance(limit, int) and k > limit:
        raise ConvlensError(
            f"dataset.examples.k={k} is more than the dataset.limit={limit} images streamed; "
            f"use dataset.examples.k={limit} or less, or a larger dataset.limit"
        )
    if "render.filter_vmin" in flat and "render.filter_vmax" in flat:
        check_filter_range(flat["render.filter_vmin"], flat["render.filter_vmax"])


# Keys an earlier version had, and where their job went (a params.yaml or an override from before says so).
MOVED = {
    "evaluate.split": "one pass over dataset.split now gives the statistics and the accuracy; set dataset.split",
    "evaluate.batch_size": "one pass over dataset.split now gives the statistics and the accuracy; set "
    "dataset.batch_size",
}


def check_config(cfg: Mapping[str, Any], complete: bool = True) -> None:
    """Check ``cfg`` against :data:`SCHEMA`: unknown keys, wrong types, ranges, names that would be paths.

    ``complete``: every key of the schema must be present (the whole ``params.yaml``); a stage's own cut
    of the config passes ``False``. Values still holding an interpolation (``${…}``, while Hydra composes)
    are checked once resolved.
    """
    if not isinstance(cfg, Mapping):
        raise ConvlensError(f"the config must be a mapping of keys, got {type(cfg).__name__}; see params.yaml")
    every = flatten(cfg)
    flat = {k: v for k, v in every.items() if not (isinstance(v, str) and "${" in v)}
    unknown = [k for k in every if k not in SCHEMA]
    if gone := [k for k in unknown if k in MOVED]:
        raise ConvlensError(f"config key {gone[0]} is gone: {MOVED[gone[0]]}")
    if unknown:
        raise ConvlensError(
            f"unknown config key {unknown[0]}; the keys are those of conf/ (see README 'Changing the config')"
        )
    if complete:
        missing = [k for k in SCHEMA if k not in every]
        if missing:
            raise ConvlensError(
                f"config key {missing[0]} is missing; every key of conf/ is needed: drop an override that deletes it "
                f"(-S '~{missing[0]}'), or recompose a hand-edited params.yaml with `make params`"
            )
    for key, value in flat.items():
        SCHEMA[key](key, value)
    _cross_checks(flat)


def check_data_location(cfg: Mapping[str, Any], root: Path) -> None:
    """Your own data's ``data.path`` exists and is what its format reads (a folder for ``data=folder``): checked
    while ``conf/`` is composed, as the model file is, not left to DVC (``fetch_data`` depends on it, and DVC's
    own error for a missing dependency names neither the key nor the fix)."""
    data = cfg.get("data")
    if isinstance(data, Mapping) and isinstance(data.get("path"), str):
        data_location(root, data["path"], directory=data.get("format") == "folder")


def register_resolver(also: Sequence[Callable[[Mapping[str, Any]], None]] = (), root: Path | None = None) -> None:
    """Make ``${convlens_checked:}`` (``checked`` in ``conf/config.yaml``) check the whole config while Hydra
    composes it. DVC composes ``conf/`` on every ``dvc exp run`` and, right after, checks out every stage's
    outputs with force, deleting those it has no hash for: a layer named ``../../x`` would be gone before
    any stage runs. Hydra's plugin scan imports ``hydra_plugins/convlens.py`` in DVC's own process (DVC's
    ``hydra.plugins_path`` is the project root), which calls this, so a bad value fails the composition.
    ``also``: checks of the layers above the schema (the artifact paths'), run after it on the same config.
    ``root``: the project a relative ``data.path`` is read from (default: the working directory, where DVC
    composes).
    """
    from omegaconf import OmegaConf

    def checked(_root_: Any) -> str:
        cfg = OmegaConf.to_container(_root_, resolve=False)
        check_config(cfg)
        for check in also:
            check(cfg)
        check_data_location(cfg, Path.cwd() if root is None else root)
        return CHECKED

    OmegaConf.register_new_resolver(RESOLVER, checked, replace=True)


class _Probe:
    """A value no check accepts, to make a check say what it wants."""

    def __repr__(self) -> str:
        return "<probe>"


_PASSED = "passed"


def _wanted(check: Check, value: Any) -> str:
    """What ``check`` says a key must be when given ``value`` (``_PASSED`` when it accepts it)."""
    try:
        check("key", value)
    except ConvlensError as e:
        found = re.match(r"key(?:\[0\])? must be (.+?), got ", str(e))
        return found[1] if found else str(e)
    return _PASSED


def allowed(check: Check) -> str:
    """What a key may hold, in the words its check uses for a wrong value (a list: for its entries too)."""
    probe = _Probe()
    want = _wanted(check, probe)
    if want.startswith("a list of at least"):
        want = want.removesuffix(" of at least 0") + f"; each {_wanted(check, [probe])}"
        most = _wanted(check, [probe] * 1_000_000)
        if most.startswith("a list of at most"):
            want += f"; {most.removeprefix('a list of ')}"
    if _wanted(check, None) == _PASSED and not want.startswith("null"):
        want = f"null or {want}"
    return want


def _shown(value: Any, limit: int = 40) -> str:
    """A default as compact YAML, cut to ``limit`` characters."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, allow_unicode=True)
    text = text.removesuffix("\n...\n").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def config_table(defaults: Mapping[str, Any]) -> str:
    """docs/configuration.md's table: one row per key of :data:`SCHEMA`, its type and range (:func:`allowed`), its
    default (``defaults``: ``params.yaml`` as composed from ``conf/``) and its :data:`MEANING`."""
    flat = flatten(defaults)
    rows = ["| key | type, range | default | meaning |", "|---|---|---|---|"]
    for key, check in SCHEMA.items():
        cells = (f"`{key}`", allowed(check), f"`{_shown(flat[key])}`", MEANING[key])
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"
