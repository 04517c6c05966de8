"""Where each artifact lives under ``outputs/`` (the same paths ``dvc.yaml`` declares)."""

from __future__ import annotations

from pathlib import Path

from convlens.checks import layer_item, layer_spec

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


def layer_stem(address: str) -> str:
    """A layer's address as one file-name part: ``outer/inner`` (a nested model's layer) → ``outer.inner``."""
    return address.replace("/", ".")


def feature_maps_dir(root: Path, layer: str) -> Path:
    """One ``feature_maps.layers`` entry's folder (``outer/inner``: a folder in ``outer``'s); never outside."""
    layer_spec("feature_maps.layers", layer_item(layer))
    return root / "outputs" / "feature_maps" / layer


def dataset_dir(root: Path) -> Path:
    """Per model × layer channel tables over a whole split (git-tracked, like the other tables)."""
    return root / "outputs" / "metrics" / "dataset"


def activation_max_dir(root: Path) -> Path:
    """Per model × layer the optimized inputs, one per channel (channels × H × W × C)."""
    return root / "outputs" / "activation_max"


def gradcam_dir(root: Path) -> Path:
    """Per model the Grad-CAM maps of the samples (samples × targets × H × W) and what they explain."""
    return root / "outputs" / "gradcam"


def examples_dir(root: Path) -> Path:
    """Per model × layer, each channel's top images of the split (``dataset_stats``; inside ``dataset_dir``)."""
    return dataset_dir(root) / "examples"


def confusion_dir(root: Path) -> Path:
    """Per model, one row per image (actual, predicted): ``evaluate``'s tables for ``dvc plots``."""
    return metrics_dir(root) / "confusion"


def metrics_dir(root: Path) -> Path:
    return root / "outputs" / "metrics"


def input_range_path(root: Path) -> Path:
    """``evaluate``'s record of the input range fed and of the first conv layer's silent channels (for the report)."""
    return metrics_dir(root) / "input_range.json"


def figures_dir(root: Path) -> Path:
    return root / "outputs" / "figures"


def report_dir(root: Path) -> Path:
    """The report stage's folder: ``index.html``, one self-contained page."""
    return root / "outputs" / "report"
