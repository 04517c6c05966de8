"""Where each artifact lives under ``outputs/`` and what its files are called (the same paths ``dvc.yaml`` declares).

The one module that spells them: the stages write, and the report, ``compare`` and the tests read, through it
(``tests/project/test_architecture.py`` finds any other ``"outputs/…"``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convlens.checks import layer_item, layer_spec
from convlens.schema import ATTRIBUTION

ROLES = ("trained", "untrained")


def model_path(root: Path, role: str) -> Path:
    return root / "outputs" / "models" / f"{role}.keras"


def data_dir(root: Path) -> Path:
    return root / "outputs" / "data"


def weights_dir(root: Path, role: str) -> Path:
    return root / "outputs" / "weights" / role


def samples_dir(root: Path) -> Path:
    return root / "outputs" / "samples"


def config_check_path(root: Path) -> Path:
    """The ``check_config`` stage's mark that ``params.yaml`` passed the schema (every stage depends on it)."""
    return root / "outputs" / "checked_config.txt"


def composed_conf_path(root: Path) -> Path:
    """``check_config``'s record of ``conf/`` as last composed (git-tracked; ``pipeline.conf_record``)."""
    return root / "outputs" / "composed_conf.yaml"


def layer_stem(address: str) -> str:
    """A layer's address as one file-name part: ``outer/inner`` (a nested model's layer) → ``outer.inner``."""
    return address.replace("/", ".")


def feature_maps_dir(root: Path, layer: str | None = None) -> Path:
    """One ``feature_maps.layers`` entry's folder (``outer/inner``: a folder in ``outer``'s); never outside. The parent
    of every layer's without ``layer``."""
    folder = root / "outputs" / "feature_maps"
    if layer is None:
        return folder
    layer_spec("feature_maps.layers", layer_item(layer))
    return folder / layer


def check_role(role: str) -> str:
    """``role`` when it names one of the project's models (``ROLES``): a stage run per model gets it as its item."""
    if role not in ROLES:
        from convlens.errors import ConvlensError

        raise ConvlensError(f"unknown model {role!r}; use one of {', '.join(ROLES)}")
    return role


NOT_RUN_DEP = "outputs/checked_config.txt"  # what metrics and report depend on in place of an analysis not run
# params.yaml's analyses.<key>: the analysis' output `metrics` or `report` depends on when the list it follows is set
ANALYSIS_DEPS = {
    "activation_max_outputs": ("activation_max", "outputs/activation_max"),
    "activation_max_figures": ("activation_max", "outputs/figures/activation_max"),
    "attribution_metrics": ("attribution", "outputs/metrics/gradcam.json"),
    "attribution_figures": ("attribution", "outputs/figures/gradcam"),
}


def analysis_dep(key: str, analyses: Mapping[str, Any]) -> str:
    """``analyses.<key>`` as its list sets it (``${convlens_analysis_dep:KEY}`` in ``conf/config.yaml``): the
    analysis' output when the list it follows names a run, else :data:`NOT_RUN_DEP`."""
    listed, path = ANALYSIS_DEPS[key]
    return path if analyses.get(listed) else NOT_RUN_DEP


def check_analysis_deps(analyses: Mapping[str, Any]) -> None:
    """The deps ``metrics`` and ``report`` take from ``analyses`` follow its lists: an analysis that runs is a
    dependency (so the report waits for it), one that does not is not (DVC would refuse its missing output)."""
    from convlens.errors import ConvlensError

    for key, (listed, _) in ANALYSIS_DEPS.items():
        want = analysis_dep(key, analyses)
        if analyses.get(key) != want:
            state = "lists a run" if analyses.get(listed) else "is empty"
            raise ConvlensError(
                f"analyses.{key} must be {want} while analyses.{listed} {state}: it follows that list; leave it "
                f"out (conf/config.yaml sets it from the list) and set only analyses.{listed}"
            )


def outputs_dir(root: Path) -> Path:
    """The folder every stage writes under: each artifact's path below lies in it."""
    return root / "outputs"


# Your own files, dependencies of fetch_model and fetch_data: the key, its config section, where a copy may go.
INPUT_PATHS = (("model.path", "model", "models"), ("data.path", "data", "data"))


def is_within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + os.sep)


def inside_outputs(root: Path, value: str) -> bool:
    """Whether ``value`` (relative to ``root``, as DVC reads a dependency, or absolute) lies in ``outputs/``, as
    written or through a symbolic link (itself or a folder above it)."""
    return written_in_outputs(root, value) or linked_into_outputs(root, value) is not None


def written_in_outputs(root: Path, value: str) -> bool:
    """Whether ``value`` as written (``..`` folded, no link followed) lies in ``outputs/``."""
    return is_within(os.path.normpath(os.path.join(root, value)), os.path.normpath(outputs_dir(root)))


def linked_into_outputs(root: Path, value: str) -> str | None:
    """Where in ``outputs/`` (relative to ``root``) ``value`` leads once its links are resolved (the path and each
    folder above it), or None where it does not."""
    outputs, path = os.path.realpath(outputs_dir(root)), os.path.realpath(os.path.join(root, value))
    return os.path.relpath(path, os.path.realpath(root)) if is_within(path, outputs) else None


def check_inputs_outside_outputs(cfg: Mapping[str, Any], root: Path) -> None:
    """``model.path`` and ``data.path`` never lie in ``outputs/``, as written or through a link: DVC would refuse a
    stage depending on its own output ("Same item(s) are defined as both a dependency and an output", naming no key)
    or on a later stage's (a cycle), and a link would have a stage read what it writes. Checked while ``conf/`` is
    composed, before DVC builds its graph. A model trained here (``model.train_runs``, ``-S model=train``) is
    ``train@``'s output by design."""
    for key, section, folder in INPUT_PATHS:
        node = cfg.get(section)
        value = node.get("path") if isinstance(node, Mapping) else None
        if not isinstance(value, str) or "${" in value or (section == "model" and node.get("train_runs")):
            continue
        if inside_outputs(root, value):
            from convlens.errors import ConvlensError

            target = linked_into_outputs(root, value)
            source = value if written_in_outputs(root, value) or target is None else target
            shown = value if source == value else f"{value} (a link to {target})"
            name = os.path.basename(os.path.normpath(source))
            copy = "cp -r" if section == "data" else "cp"
            raise ConvlensError(
                f"{key} {shown} lies inside outputs/, which the pipeline's stages write, so DVC cannot also read it "
                f"as your {section}; copy it elsewhere, e.g. `mkdir -p {folder} && {copy} {source} {folder}/ && "
                f"dvc add {folder}/{name}`, and set -S {key}={folder}/{name}"
            )


def check_pair(pair: str) -> str:
    """``pair`` when it is :data:`ATTRIBUTION`, the item of ``gradcam@`` and ``render_gradcam@`` (both models)."""
    if pair != ATTRIBUTION:
        from convlens.errors import ConvlensError

        raise ConvlensError(f"unknown item {pair!r} of analyses.attribution; use {ATTRIBUTION} (both models)")
    return pair


def dataset_dir(root: Path, role: str | None = None) -> Path:
    """Per model × layer channel tables over a whole split (git-tracked, like the other tables): one folder per model
    (``dataset@<model>``'s output), the parent without ``role``."""
    folder = root / "outputs" / "metrics" / "dataset"
    return folder if role is None else folder / check_role(role)


def activation_max_dir(root: Path, role: str | None = None) -> Path:
    """Per model × layer the optimized inputs, one per channel (channels × H × W × C): one folder per model
    (``activation_max@<model>``'s output), the parent without ``role``."""
    folder = root / "outputs" / "activation_max"
    return folder if role is None else folder / check_role(role)


def activation_max_summary(root: Path, role: str) -> Path:
    """``activation_max@<model>``'s numbers, merged by ``metrics`` into ``activation_max_metrics``."""
    return activation_max_dir(root, role) / SUMMARY_NAME


def gradcam_dir(root: Path) -> Path:
    """Per model the Grad-CAM maps of the samples (samples × targets × H × W) and what they explain."""
    return root / "outputs" / "gradcam"


def examples_dir(root: Path, role: str) -> Path:
    """Per layer, each channel's top images of the split in the ``role`` model (inside its ``dataset_dir``)."""
    return dataset_dir(root, role) / "examples"


def confusion_dir(root: Path, role: str | None = None) -> Path:
    """Per model, one row per image (actual, predicted): ``dataset@<model>``'s table for ``dvc plots`` in its own
    folder, the parent without ``role``."""
    folder = metrics_dir(root) / "confusion"
    return folder if role is None else folder / check_role(role)


def metrics_dir(root: Path) -> Path:
    return root / "outputs" / "metrics"


def input_range_path(root: Path) -> Path:
    """The trained model's record (``dataset@trained``, merged by ``metrics``) of the input range fed and of the
    first conv layer's silent channels (for the report)."""
    return metrics_dir(root) / "input_range.json"


def figures_dir(root: Path) -> Path:
    return root / "outputs" / "figures"


def report_dir(root: Path) -> Path:
    """The report stage's folder: ``index.html``, one self-contained page."""
    return root / "outputs" / "report"


def compare_dir(root: Path) -> Path:
    """``python -m convlens compare``'s folder (not a DVC output): ``<A>_vs_<B>.csv``, ``.png`` and ``.html``."""
    return root / "outputs" / "compare"


def relative(root: Path, path: Path) -> str:
    """``path`` as the project shows it (the report's notes, ``dvc.yaml``): from ``root``, with ``/``."""
    return path.relative_to(root).as_posix()


# -- the files in each folder --------------------------------------------------------------------------------------
# A stage writes a whole folder through ``staged_dir`` (into a staging area, renamed into place when complete), so each
# file there has its name (``…_name``, what the stage writes into its staging area) and its path (what a reader opens,
# from the project ``root``). A name that takes a sample or split also takes ``"*"``: the glob of every such file.
INDEX_NAME = "index.json"  # what a folder holds (samples, dataset, gradcam): split, samples, layers, …
LAYERS_NAME = "layers.json"  # a weights folder's layer names, in layer order
KINDS_NAME = "kinds.json"  # a weights folder's layer classes by name (a depthwise kernel is drawn as its C·m filters)
MAP_LAYER_NAME = "layer.json"  # a feature-maps folder's layer: name, shape, split, samples, labels
MAP_SUMMARY_NAME = "summary.json"  # a feature-maps folder's statistics per model
MAP_SAMPLES_NAME = "samples.json"  # a feature-maps folder's statistics per model and sample, in the samples' order
SUMMARY_NAME = "summary.json"  # a per-model stage's numbers (dataset@, activation_max@), merged by ``metrics``
SAMPLE_IMAGES_NAME = "images.npy"  # the sample images, samples × H × W (× 3 for RGB)
CLASSES_NAME = "classes.json"  # the data's class names by label, as fetch_data found or was told them
REPORT_NAME = "index.html"


def images_name(split: str) -> str:
    return f"{split}_images.npy"


def labels_name(split: str) -> str:
    return f"{split}_labels.npy"


def images(root: Path, split: str) -> Path:
    """One split's images as ``fetch_data`` wrote them (uint8, images × H × W, or × H × W × 3 for RGB)."""
    return data_dir(root) / images_name(split)


def classes(root: Path) -> Path:
    """The data's class names by label (a JSON list): ``data.classes``, or those the data itself names."""
    return data_dir(root) / CLASSES_NAME


def labels(root: Path, split: str) -> Path:
    return data_dir(root) / labels_name(split)


def sample_images(root: Path) -> Path:
    return samples_dir(root) / SAMPLE_IMAGES_NAME


def sample_index(root: Path) -> Path:
    """The samples' split, ids and labels."""
    return samples_dir(root) / INDEX_NAME


def kernel_name(layer: str) -> str:
    return f"{layer_stem(layer)}.kernel.npy"


def bias_name(layer: str) -> str:
    return f"{layer_stem(layer)}.bias.npy"


def kernel(root: Path, role: str, layer: str) -> Path:
    return weights_dir(root, role) / kernel_name(layer)


def weight_layers(root: Path, role: str) -> Path:
    return weights_dir(root, role) / LAYERS_NAME


def weight_kinds(root: Path, role: str) -> Path:
    return weights_dir(root, role) / KINDS_NAME


def filter_metrics_dir(root: Path, role: str) -> Path:
    """Per layer of the ``role`` model, one row per filter (``filter_metrics_name``)."""
    return metrics_dir(root) / "filters" / role


def filter_metrics_name(layer: str) -> str:
    return f"{layer_stem(layer)}.csv"


def weight_metrics(root: Path, role: str, ext: str) -> Path:
    """The ``role`` model's kernel statistics per layer: ``ext`` ``csv`` (a row per layer) or ``json`` (metrics)."""
    return metrics_dir(root) / f"weights_{role}.{ext}"


def maps_name(role: str) -> str:
    return f"{role}.npy"


def map_channels_name(role: str) -> str:
    return f"channels_{role}.csv"


def maps(root: Path, layer: str, role: str) -> Path:
    """One ``feature_maps.layers`` entry's maps of the samples by the ``role`` model (samples × H × W × channels)."""
    return feature_maps_dir(root, layer) / maps_name(role)


def map_channels(root: Path, layer: str, role: str) -> Path:
    return feature_maps_dir(root, layer) / map_channels_name(role)


def map_layer(root: Path, layer: str) -> Path:
    return feature_maps_dir(root, layer) / MAP_LAYER_NAME


def map_summary(root: Path, layer: str) -> Path:
    return feature_maps_dir(root, layer) / MAP_SUMMARY_NAME


def map_samples(root: Path, layer: str) -> Path:
    return feature_maps_dir(root, layer) / MAP_SAMPLES_NAME


def channels_dir(root: Path) -> Path:
    """``map_metrics``' per-channel tables of the ``feature_maps.layers`` (``channels_name``)."""
    return metrics_dir(root) / "channels"


def channels_name(layer: str, role: str) -> str:
    """A layer's channel table in ``channels_dir``: one folder per layer, one table per model."""
    return f"{layer_stem(layer)}/{role}.csv"


def feature_map_metrics(root: Path) -> Path:
    return metrics_dir(root) / "feature_maps.json"


def dataset_metrics(root: Path) -> Path:
    """The dataset statistics' summary per model × layer (a metric, merged by ``metrics``; the tables are in
    ``dataset_dir``)."""
    return metrics_dir(root) / "dataset.json"


def dataset_index(root: Path, role: str = "trained") -> Path:
    """The dataset tables' split, images, layers and classes (the same for both models)."""
    return dataset_dir(root, role) / INDEX_NAME


def dataset_summary(root: Path, role: str) -> Path:
    """``dataset@<model>``'s numbers (statistics, accuracy, input range), merged by ``metrics``."""
    return dataset_dir(root, role) / SUMMARY_NAME


def dataset_table_name(role: str, layer: str) -> str:
    """A model × layer table in ``dataset_dir`` (its channels) and in ``examples_dir`` (its channels' top images)."""
    return f"{role}_{layer_stem(layer)}.csv"


def dataset_table(root: Path, role: str, layer: str) -> Path:
    return dataset_dir(root, role) / dataset_table_name(role, layer)


def examples_table(root: Path, role: str, layer: str) -> Path:
    return examples_dir(root, role) / dataset_table_name(role, layer)


def evaluate_metrics(root: Path) -> Path:
    """The accuracy per model, overall and per class (``dataset@<model>``'s, merged by ``metrics``)."""
    return metrics_dir(root) / "evaluate.json"


def confusion_name(role: str) -> str:
    """A model's rows in ``confusion_dir``."""
    return f"{role}.csv"


def activation_max_name(role: str, layer: str) -> str:
    """A model × layer's optimized inputs in ``activation_max_dir``."""
    return f"{role}_{layer_stem(layer)}.npy"


def activation_max_channels_name(role: str, layer: str) -> str:
    """A model × layer's channels in ``activation_max_dir``: each one's own input's mean activation, its best
    dataset image's (empty where ``dataset@<model>`` has no such layer) and its mark (dead, below or empty), what
    ``render_activation_max@<model>`` draws with the inputs."""
    return f"{role}_{layer_stem(layer)}_channels.csv"


def activation_max_metrics(root: Path) -> Path:
    return metrics_dir(root) / "activation_max.json"


def activation_max_curves_dir(root: Path, role: str | None = None) -> Path:
    """``activation_max``' objective curves: per model × layer, the objective at every step (``dvc plots``), one
    folder per model, the parent without ``role``."""
    folder = metrics_dir(root) / "activation_max_curves"
    return folder if role is None else folder / check_role(role)


def gradcam_name(role: str) -> str:
    """A model's Grad-CAM maps in ``gradcam_dir`` (its ``INDEX_NAME``: what they explain)."""
    return f"{role}.npy"


def gradcam_probabilities_name(role: str) -> str:
    """A model's class probabilities of the samples (samples × classes) in ``gradcam_dir``: the panels' titles."""
    return f"{role}_probabilities.npy"


def gradcam_metrics(root: Path) -> Path:
    return metrics_dir(root) / "gradcam.json"


def attribution_name(role: str, method: str) -> str:
    """A model's maps of one attribution method in ``gradcam_dir``: Grad-CAM's are ``gradcam_name``."""
    return gradcam_name(role) if method == "gradcam" else f"{role}_{method}.npy"


def sanity_dir(root: Path) -> Path:
    """The sanity checks' curves, one CSV per method each: ``cascading/`` and ``deletion/`` (``dvc plots``)."""
    return metrics_dir(root) / "attribution"


SANITY_CURVES = ("cascading", "deletion")  # the folders of sanity_dir, each a plot of gradcam@ in dvc.yaml


def sanity_curve_name(curve: str, method: str) -> str:
    """One method's ``curve`` (``cascading`` or ``deletion``) in ``sanity_dir``."""
    return f"{curve}/{method}.csv"


def report_page(root: Path) -> Path:
    return report_dir(root) / REPORT_NAME


# -- figures (PNG), one folder per stage that draws them -----------------------------------------------------------
def weight_figures_dir(root: Path) -> Path:
    """``render_figures``' weight histograms and filter grids."""
    return figures_dir(root) / "weights"


def histogram_name(role: str, layer: str) -> str:
    return f"{role}_{layer_stem(layer)}_hist.png"


def histogram(root: Path, role: str, layer: str) -> Path:
    return weight_figures_dir(root) / histogram_name(role, layer)


def histogram_overlay_name(layer: str) -> str:
    """Both models' histograms of a layer overlaid."""
    return f"{layer_stem(layer)}_hist_overlay.png"


def histogram_overlay(root: Path, layer: str) -> Path:
    return weight_figures_dir(root) / histogram_overlay_name(layer)


def filters_figure_name(role: str, layer: str) -> str:
    return f"{role}_{layer_stem(layer)}_filters.png"


def filters_figure(root: Path, role: str, layer: str) -> Path:
    return weight_figures_dir(root) / filters_figure_name(role, layer)


def sample_figures_dir(root: Path) -> Path:
    return figures_dir(root) / "samples"


def sample_figure_name(sample: int | str) -> str:
    return f"sample_{sample}.png"


def sample_figure(root: Path, sample: int | str) -> Path:
    return sample_figures_dir(root) / sample_figure_name(sample)


def map_figures_dir(root: Path, layer: str | None = None) -> Path:
    """``render_maps``' figures: of every ``feature_maps.layers`` entry, or of ``layer``'s (a folder each)."""
    folder = figures_dir(root) / "feature_maps"
    return folder if layer is None else folder / layer


def map_figure_name(role: str, sample: int | str) -> str:
    return f"{role}_sample_{sample}.png"


def map_figure(root: Path, layer: str, role: str, sample: int | str) -> Path:
    return map_figures_dir(root, layer) / map_figure_name(role, sample)


def dataset_figures_dir(root: Path, role: str | None = None) -> Path:
    """``render_dataset@<model>``'s class heatmaps, one folder per model (its output, with the dataset examples in
    ``examples_figures_dir``), the parent without ``role``."""
    folder = figures_dir(root) / "dataset"
    return folder if role is None else folder / check_role(role)


def class_heatmap_name(layer: str) -> str:
    return f"{layer_stem(layer)}_classes.png"


def class_heatmap(root: Path, role: str, layer: str) -> Path:
    """One model's channels × classes heatmap of ``layer`` (one figure per model: the report shows them side by
    side)."""
    return dataset_figures_dir(root, role) / class_heatmap_name(layer)


def examples_figures_dir(root: Path, role: str) -> Path:
    return dataset_figures_dir(root, role) / "examples"


def examples_figure_name(role: str, layer: str) -> str:
    """A model × layer's top images per channel; the report reads ``role`` and the layer back from the name."""
    return f"{role}_{layer_stem(layer)}.png"


def evaluate_figures_dir(root: Path, role: str | None = None) -> Path:
    """The confusion matrices: one folder per model (``render_dataset@<model>``'s output), the parent without
    ``role``."""
    folder = figures_dir(root) / "evaluate"
    return folder if role is None else folder / check_role(role)


def confusion_figure_name(role: str) -> str:
    return f"{role}_confusion.png"


def confusion_figure(root: Path, role: str) -> Path:
    return evaluate_figures_dir(root, role) / confusion_figure_name(role)


def activation_max_figures_dir(root: Path, role: str | None = None) -> Path:
    """The optimized inputs' mosaics, one folder per model (``activation_max@<model>``), the parent without ``role``."""
    folder = figures_dir(root) / "activation_max"
    return folder if role is None else folder / check_role(role)


def activation_max_figure_name(role: str, layer: str) -> str:
    """A model × layer's optimized inputs as one mosaic; the report reads ``role`` and the layer back from the name."""
    return f"{role}_{layer_stem(layer)}.png"


def gradcam_figures_dir(root: Path) -> Path:
    return figures_dir(root) / "gradcam"


def gradcam_figure_name(sample: int | str) -> str:
    return f"sample_{sample}.png"


# -- render_film@trained's film of the filters (-S model=train) ---------------------------------------------------
def film_dir(root: Path) -> Path:
    """``render_film@trained``'s film of the filters: strips, GIFs, the learning curves, the kernel std."""
    return figures_dir(root) / "film"


FILM_NAME = "film.json"  # the film folder's record for the report: the run's epochs, why it stopped, what was drawn
LEARNING_CURVES_NAME = "learning_curves.png"
KERNEL_STD_NAME = "kernel_std.png"


def film_strip_name(layer: str) -> str:
    return f"{layer_stem(layer)}_filters_strip.png"


def film_filters_name(layer: str) -> str:
    return f"{layer_stem(layer)}_filters.gif"


FILM_SAMPLES = 4  # the samples whose feature maps get a film (the report's full-size samples); later ones none


def film_maps_name(layer: str, position: int) -> str:
    """The first conv layer's maps of the sample at ``position`` in the samples, at every snapshot."""
    return f"{layer_stem(layer)}_maps_{position}.gif"


# Training here (-S model=train): train@<run>'s outputs, FILM's input (docs/training.md).
TRAIN_MODEL_NAME = "model.keras"  # the best epoch's model; conf/model/train.yaml's model.path names it too
TRAIN_HISTORY_NAME = "history.json"
TRAIN_LIVE_NAME = "live"  # DVCLive's folder: metrics.json, plots/metrics/*.tsv
TRAIN_SNAPSHOTS_NAME = "snapshots"


def train_dir(root: Path) -> Path:
    return root / "outputs" / "train"


def train_model(root: Path) -> Path:
    return train_dir(root) / TRAIN_MODEL_NAME


def train_history(root: Path) -> Path:
    return train_dir(root) / TRAIN_HISTORY_NAME


def train_live_dir(root: Path) -> Path:
    return train_dir(root) / TRAIN_LIVE_NAME


def train_snapshots_dir(root: Path) -> Path:
    return train_dir(root) / TRAIN_SNAPSHOTS_NAME


def snapshot_kernels_name(layer: str) -> str:
    """A conv layer's kernels at every snapshot: float32 (epochs + 1, kh, kw, in, out), index 0 the initialisation."""
    return f"{layer_stem(layer)}_kernels.npy"


def snapshot_maps_name(layer: str) -> str:
    """A conv layer's feature maps of the samples at every snapshot: float32 (epochs + 1, samples, H, W, C)."""
    return f"{layer_stem(layer)}_maps.npy"
