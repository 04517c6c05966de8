"""The forward pass in numpy: feature maps without TensorFlow.

A ``.keras`` archive's layer chain (config + weights, read once by ``archive.Archive``) becomes a list of
numpy functions, one per layer (``ops``), so the stages that compute activations start in a fraction of
a second instead of importing TensorFlow. What it does not compute (a branch, a nested model, other layer
kinds) raises ``ops.Unsupported``, and :func:`open_network` hands the model to Keras instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np

from convlens.errors import ConvlensError
from convlens.model.archive import Archive
from convlens.model.layer_config import (
    LAYER_KEYS,
    chain_problem,
    initializers_problem,
    layer_problem,
    model_problem,
)
from convlens.model.ops import Op, Unsupported, layer_op

T = TypeVar("T")


class Activations(Protocol):
    """What computes layer outputs: :class:`Network` (numpy), ``keras_models.KerasNetwork`` or ``KerasEngine``."""

    names: tuple[str, ...]

    def activations(self, x: np.ndarray, names: Sequence[str]) -> list[np.ndarray]: ...


@dataclass(frozen=True)
class Network:
    """A layer chain ready to run: input shape (no batch axis), layer names and their functions."""

    input_shape: tuple[int | None, ...]
    names: tuple[str, ...]
    ops: tuple[Op, ...]

    def activations(self, x: np.ndarray, names: Sequence[str]) -> list[np.ndarray]:
        """The named layers' outputs for the batch ``x``, stopping after the deepest one."""
        x = (x[..., np.newaxis] if x.ndim == len(self.input_shape) else x).astype(np.float32, copy=False)
        wanted, last = set(names), max(self.names.index(n) for n in names)
        found: dict[str, np.ndarray] = {}
        for name, op in zip(self.names[: last + 1], self.ops, strict=False):
            x = op(x)
            if name in wanted:
                found[name] = x
        return [found[n] for n in names]


def sized_input(batch_shape: Sequence[int | None], sample: Sequence[int] | None) -> tuple[int | None, ...]:
    """The model's input shape (``batch_shape`` without its batch axis) with its open axes (``None``) the images'
    size, ``sample`` (H, W[, C], as the data holds them; a missing channel axis is 1); as it is without images or
    where they do not have its rank (``Archive.check_input`` refuses those)."""
    shape = tuple(batch_shape[1:])
    if sample is None or None not in shape:
        return shape
    size = tuple(sample) if len(sample) == len(shape) else (*sample, 1)
    if len(size) != len(shape):
        return shape
    return tuple(int(s) if d is None else d for d, s in zip(shape, size, strict=True))


def _chain(
    config: dict, upto: str | None = None, sample: Sequence[int] | None = None
) -> tuple[tuple[int | None, ...], list[dict], list[dict]]:
    """The model's input shape, its layer entries up to layer ``upto`` (the input layer first) and the entries whose
    shapes Keras's build must give (see ``load_network``), after checking that Keras reads them as the numpy forward
    pass computes them (``layer_config``): the model, one chain from its input layer, each layer's keys and values,
    its initializers. Keras loads the whole model, so a layer after ``upto`` that Keras would refuse is checked too:
    the whole chain, shapes included, when the model is one; else each later layer of a kind the forward pass knows
    (a branch or merge after ``upto``, and what follows it, is left to Keras's loader). The input shape: a model of
    open input size's at the images' size ``sample`` (:func:`sized_input`)."""
    if upto is not None and "/" in upto:
        raise Unsupported(f"layer {upto!r} is inside the nested model {upto.split('/')[0]!r}")
    problem = model_problem(config, upto)
    if problem:
        raise Unsupported(problem)
    entries = config["config"]["layers"]
    names = [entry["config"]["name"] for entry in entries]
    chain = entries if upto is None else entries[: names.index(upto) + 1]
    walked = entries if upto is None or model_problem(config) is None else chain
    unknown = [i for i, entry in enumerate(walked) if i >= len(chain) and entry.get("class_name") not in LAYER_KEYS]
    walked = walked[: unknown[0]] if unknown else walked  # a kind numpy lacks after ``upto``: left to Keras's loader
    later = [entry for entry in entries[len(chain) :] if entry.get("class_name") in LAYER_KEYS]
    for entry in chain + later:
        problem = layer_problem(entry) or initializers_problem(entry["config"])
        if problem:
            raise Unsupported(problem)
    return sized_input(chain[0]["config"]["batch_shape"], sample), chain, walked


def load_network(
    archive: Archive,
    upto: str | None = None,
    weights: Mapping[str, list[np.ndarray]] | None = None,
    sample: Sequence[int] | None = None,
) -> Network:
    """The network stored in a ``.keras`` archive (no TensorFlow), up to (and including) layer ``upto``; ``weights``:
    its layers' variables when the caller has read them already (``archive.weights``). Raises ``Unsupported`` for a
    model Keras would read or compute otherwise (:func:`_chain`; the chain's shapes and stored variables, the whole
    model's when it is one chain, must be the ones Keras builds: ``layer_config.chain_problem``). ``sample``: the
    images' shape (H, W[, C]), at which a model of open input size is checked and computed (the numpy ops take any
    size); without it such a model is ``Unsupported``."""
    input_shape, chain, walked = _chain(archive.config, upto, sample)
    entries = chain[1:]
    names = [entry["config"]["name"] for entry in entries]
    weights = archive.weights([entry["config"]["name"] for entry in walked[1:]]) if weights is None else weights
    problem = chain_problem(walked, weights, input_shape)
    if problem:
        raise Unsupported(problem)
    # Keras loads each stored variable into a float32 one (a float64 kernel rounded, an integer one converted)
    stored = {n: [np.asarray(v).astype(np.float32, copy=False) for v in weights.get(n, [])] for n in names}
    for name, values in stored.items():  # NaN or inf would reach pooling, whose NaN is numpy's and TensorFlow's own
        if not all(np.isfinite(v).all() for v in values):
            raise Unsupported(f"layer {name!r}, which stores numbers that are not finite (NaN or infinity)")
    ops = [layer_op(e["class_name"], e["config"], stored[n]) for e, n in zip(entries, names, strict=True)]
    return Network(input_shape, tuple(names), tuple(ops))


def built_by_keras(archive: Archive, build: Callable[[], T]) -> T:
    """``build()``, which loads ``archive`` with Keras (TensorFlow starts here), with what Keras's loader lets
    through as a traceback while it builds the layers (a string where a number belongs, pooling strides of 0, an axis
    past the input's) refused in one line, as a ``ValueError`` of its loader is (``keras_models.load_model``)."""
    from convlens.model.keras_models import one_line, tf

    try:
        return build()
    except (ArithmeticError, LookupError, ValueError, TypeError, tf.errors.OpError) as e:
        raise ConvlensError(f"{archive.path}: Keras cannot build this model ({one_line(e)})") from e


def _grown(sample: tuple[int, ...], open_axes: tuple[bool, ...], n: int) -> tuple[int, ...]:
    """``sample`` with its open axes (``open_axes``) grown to at least ``n``."""
    return tuple(max(d, n) if grow else d for d, grow in zip(sample, open_axes, strict=False))


def refuse_small_images(model: object, path: object, sample: tuple[int, ...], open_axes: tuple[bool, ...]) -> None:
    """Refuse in one line images of shape ``sample`` (H, W, C) too small for the Keras ``model`` (its file ``path``)
    whose input axes ``open_axes`` are of open size: a layer's output Keras's shape inference finds empty or refuses
    (``keras_models.empty_layer``: a window larger than its input), with the smallest size that fits, before
    anything is computed (TensorFlow's eager depthwise convolution returns numbers from uninitialised memory
    there). Nothing to check for a model of fixed input size (the images fit it: ``Archive.check_input``), nor when
    no larger size fits either (not the size's fault: Keras refuses the model in its own line)."""
    if not any(open_axes):
        return
    from convlens.model.keras_models import empty_layer

    layer = empty_layer(model, sample)
    if layer is None:
        return
    larger = (n for n in (2**k for k in range(13)) if n > max(sample[:2]))
    fits = next((n for n in larger if empty_layer(model, _grown(sample, open_axes, n)) is None), None)
    if fits is None:
        return  # not the size's fault: Keras computes it and refuses it in its own line
    low, high = min(sample[:2]), fits  # grown to ``low`` the images are as they are: too small
    while high - low > 1:  # the smallest side that fits, the open sides grown to it
        mid = (low + high) // 2
        low, high = (low, mid) if empty_layer(model, _grown(sample, open_axes, mid)) is None else (mid, high)
    if any(empty_layer(model, _grown(sample, open_axes, n)) for n in (high + 1, high + 2, high + 3, 2 * high)):
        return  # a size that fits here and there (a Reshape), not a window too large: Keras refuses it itself
    size = _grown(sample, open_axes, high)
    raise ConvlensError(
        f"{path}: images of {sample[0]}×{sample[1]} are too small for this model: its layer {layer!r} would "
        f"give an empty output (Keras's shape inference); resize them to at least {size[0]}×{size[1]} "
        f"(-S data.resize=[{size[0]},{size[1]}]) or use another model"
    )


@dataclass
class SizeGuard:
    """A Keras network's ``activations`` for a model whose input size is open, refusing images too small for it in
    one line (:func:`refuse_small_images`) instead of empty maps, NaN statistics or, from TensorFlow's eager
    convolution, numbers from uninitialised memory. Each image size is checked once."""

    compute: Callable[[np.ndarray, Sequence[str]], list[np.ndarray]]  # the network's own ``activations``
    model: object  # the Keras model it computes with
    path: object  # the model's file, which the line names
    open_axes: tuple[bool, ...]  # the model's input axes of open size (batch axis left out)
    checked: set[tuple[int, ...]] = field(default_factory=set)

    def __call__(self, x: np.ndarray, names: Sequence[str]) -> list[np.ndarray]:
        sample = tuple(x.shape[1:]) if len(x.shape) == len(self.open_axes) + 1 else (*x.shape[1:], 1)
        if sample not in self.checked:
            refuse_small_images(self.model, self.path, sample, self.open_axes)
            self.checked.add(sample)
        found = self.compute(x, names)
        for name, out in zip(names, found, strict=True):
            if out.size == 0 and len(x):
                raise ConvlensError(
                    f"{self.path}: images of {sample[0]}×{sample[1]} are too small for this model: its layer "
                    f"{name!r} gives an empty output {out.shape[1:]}; use larger images (-S data.resize=[h,w]) or "
                    "another model"
                )
        return found


def size_checked(archive: Archive, network: T) -> T:
    """``network`` (Keras's: ``KerasNetwork`` or ``KerasEngine``) with its ``activations`` a :class:`SizeGuard`
    where the model's input size is open; as it is where it is fixed (the images fit it: ``Archive.check_input``)."""
    shape = archive.input_shape
    if None in shape:
        guard = SizeGuard(network.activations, network.model, archive.path, tuple(d is None for d in shape))  # type: ignore[attr-defined]
        network.activations = guard  # type: ignore[attr-defined]
    return network


def open_network(
    archive: Archive,
    names: Sequence[str],
    log: Callable[[str], None],
    engine: str = "numpy",
    sample: Sequence[int] | None = None,
) -> Activations:
    """What computes the ``names`` layers' outputs: with ``engine="numpy"`` the numpy forward pass where it can (a
    model of open input size at the images' size ``sample``, H, W[, C]), else Keras itself (TensorFlow starts;
    ``log`` says why); with ``engine="keras"`` one multi-output Keras model (``keras_models.KerasEngine``, chosen by
    ``engine.choose_engine``)."""
    if engine == "keras":
        from convlens.model.keras_models import KerasEngine  # TensorFlow starts here

        return size_checked(archive, built_by_keras(archive, lambda: KerasEngine.load(archive, names)))
    order = [layer.name for layer in archive.layers]
    try:
        return load_network(archive, upto=max(names, key=order.index), sample=sample)
    except Unsupported as e:
        log(f"{archive.path.name}: {e}, which the numpy forward pass does not compute; computing it with Keras")
    from convlens.model.keras_models import KerasNetwork  # TensorFlow starts here, for such models only

    return size_checked(archive, built_by_keras(archive, lambda: KerasNetwork.load(archive, names)))
