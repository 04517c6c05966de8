"""Where each artifact lives under ``outputs/`` (the same paths ``dvc.yaml`` declares)."""

from __future__ import annotations

from pathlib import Path

ROLES = ("trained", "untrained")


def model_path(root: Path, role: str) -> Path:
    return root / "outputs" / "models" / f"{role}.keras"


def data_dir(root: Path) -> Path:
    return root / "outputs" / "data"


def weights_dir(root: Path, role: str) -> Path:
    return root / "outputs" / "weights" / role


def feature_maps_dir(root: Path) -> Path:
    return root / "outputs" / "feature_maps"


def metrics_dir(root: Path) -> Path:
    return root / "outputs" / "metrics"


def figures_dir(root: Path) -> Path:
    return root / "outputs" / "figures"
