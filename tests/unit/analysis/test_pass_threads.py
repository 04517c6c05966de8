"""The fast dataset pass (issue 25 row 8) gives the numbers of the plain one, bit for bit: two worker threads or one,
the conv and pooling layers chunk by chunk or whole, the maps reduced per chunk, the top images' peaks located only
for the pairs a batch adds. No Keras: the network is built from ``ops.layer_op`` with random weights."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from convlens.analysis import dataset as dataset_lib
from convlens.analysis.dataset import stream_pass
from convlens.analysis.examples import RunningTopK, peak_positions, peak_positions_at
from convlens.analysis.stats import max_over_positions, reduce_positions
from convlens.model import ops
from convlens.model.batching import blas_threads
from convlens.model.forward import Network
from convlens.model.ops import conv2d, layer_op, pool2d


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal values, shapes and dtypes, NaN where NaN and the sign of every zero alike."""
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
        and np.array_equal(np.signbit(a), np.signbit(b))
    )


def small_network(seed: int = 0) -> Network:
    """conv (1 → 4, im2col) + ReLU, max pooling, conv (8 channels in: one product per offset), flatten, softmax over
    5 classes: both conv strategies, on 12 × 12 inputs."""
    rng = np.random.default_rng(seed)

    def w(*shape):
        return rng.normal(0, 0.5, shape).astype(np.float32)

    layers = [
        ("c1", "Conv2D", {"strides": 1, "padding": "same", "activation": "relu"}, [w(3, 3, 1, 8), w(8)]),
        ("p1", "MaxPooling2D", {"pool_size": 2}, []),
        ("c2", "Conv2D", {"strides": 1, "padding": "valid", "activation": "relu"}, [w(3, 3, 8, 6), w(6)]),
        ("f", "Flatten", {}, []),
        ("d", "Dense", {"activation": "softmax"}, [w(4 * 4 * 6, 5), w(5)]),
    ]
    built = [layer_op(kind, {"name": name, **cfg}, weights) for name, kind, cfg, weights in layers]
    return Network((12, 12, 1), tuple(n for n, *_ in layers), tuple(built))


def pass_outputs(network, images, labels, batch_size, by="max"):
    tables, predicted = stream_pass(
        network, images, labels, ["c1", "p1", "c2"], 5, 255.0, batch_size, "t", (3, by), "d"
    )
    return tables, predicted


@pytest.mark.parametrize("by", ["max", "mean"])
@pytest.mark.parametrize("batch_size", [1, 4, 7, 40])
def test_two_worker_threads_give_the_single_thread_numbers_bit_for_bit(monkeypatch, batch_size, by):
    rng = np.random.default_rng(batch_size)
    images = rng.integers(0, 256, (37, 12, 12), dtype=np.uint8)
    images[5] = images[9]  # two identical images: tied scores in every channel
    labels = rng.integers(0, 5, 37)
    network = small_network()
    monkeypatch.setattr(dataset_lib, "PASS_WORKERS", 1)
    one_tables, one_predicted = pass_outputs(network, images, labels, batch_size, by)
    monkeypatch.setattr(dataset_lib, "PASS_WORKERS", 2)
    monkeypatch.setattr(dataset_lib, "cpu_count", lambda: 2)
    two_tables, two_predicted = pass_outputs(network, images, labels, batch_size, by)
    assert same_bits(one_predicted, two_predicted)
    for layer, table in one_tables.items():
        assert table.keys() == two_tables[layer].keys()
        for key, value in table.items():
            assert same_bits(value, two_tables[layer][key]), (layer, key)


def test_the_pass_equals_the_plain_numpy_statistics_of_all_maps_at_once():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (29, 12, 12), dtype=np.uint8)
    labels = rng.integers(0, 5, 29)
    network = small_network(1)
    tables, predicted = pass_outputs(network, images, labels, 6)
    maps = network.activations(images.astype(np.float32) / np.float32(255), ["c1", "p1", "c2", "d"])
    assert np.array_equal(predicted, maps[-1].argmax(axis=1))
    for name, m in zip(["c1", "p1", "c2"], maps, strict=False):
        flat = m.reshape(len(m), -1, m.shape[-1])
        t = tables[name]
        assert np.array_equal(t["max"], flat.max(axis=(0, 1)))
        assert np.array_equal(t["fraction_active"], (flat > 0).sum(axis=(0, 1)) / flat[..., 0].size)
        np.testing.assert_allclose(t["mean"], flat.astype(np.float64).mean(axis=(0, 1)), rtol=1e-6)
        peaks = flat.max(axis=1)  # by="max": the top 3 images per channel, lower index first among ties
        order = np.lexsort((np.broadcast_to(np.arange(len(m))[:, None], peaks.shape), -peaks), axis=0)[:3]
        assert np.array_equal(t["example_images"], order)
        rows, columns = peak_positions(m)
        assert np.array_equal(t["example_peak_rows"], np.take_along_axis(rows, order, axis=0))
        assert np.array_equal(t["example_peak_columns"], np.take_along_axis(columns, order, axis=0))
        assert np.array_equal(t["example_peaks"], np.take_along_axis(peaks, order, axis=0))


@pytest.mark.parametrize("positions", [1, 2, 3, 5, 8, 49, 196])
@pytest.mark.parametrize("images", [1, 31, 32, 70])
def test_reduce_positions_is_numpys_sum_count_and_max(positions, images):
    rng = np.random.default_rng(positions * 100 + images)
    maps = rng.normal(size=(images, positions, 3)).astype(np.float32)
    maps[0, -1, 0] = np.nan  # NaN wins the max, as in numpy
    maps[-1, :, 1] = -np.inf
    maps[:, 0, 2] = -0.0  # not active
    sums, active, peaks = reduce_positions(maps)
    assert same_bits(sums, np.ones(positions, np.float32) @ maps)
    assert same_bits(active, np.count_nonzero(maps > 0, axis=(0, 1)).astype(np.int64))
    assert same_bits(peaks, maps.max(axis=1))
    assert same_bits(max_over_positions(maps), maps.max(axis=1))


def test_reduce_positions_keeps_float64_maps_float64():
    maps = np.random.default_rng(0).normal(size=(3, 7, 2))
    sums, _, peaks = reduce_positions(maps)
    assert sums.dtype == peaks.dtype == np.float64
    np.testing.assert_array_equal(peaks, maps.max(axis=1))


def test_peak_positions_at_some_pairs_are_those_of_every_pair():
    rng = np.random.default_rng(0)
    maps = rng.integers(0, 3, (6, 4, 5, 3)).astype(np.float32)  # many equal maxima: the first in row-major order
    rows, columns = peak_positions(maps)
    images, channels = np.array([0, 5, 2, 2, 3]), np.array([1, 0, 2, 0, 1])
    got_rows, got_columns = peak_positions_at(maps, images, channels)
    assert np.array_equal(got_rows, rows[images, channels])
    assert np.array_equal(got_columns, columns[images, channels])
    assert peak_positions_at(maps, np.zeros(0, int), np.zeros(0, int))[0].shape == (0,)


def test_running_top_k_asks_a_function_only_for_the_pairs_a_batch_adds():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 6, (50, 4)).astype(np.float32)  # ties
    extra = rng.normal(size=(50, 4)).astype(np.float32)
    arrays, lazy = RunningTopK(3, 4), RunningTopK(3, 4)
    asked = []
    for start in range(0, 50, 7):
        part = slice(start, start + 7)
        arrays.update(scores[part], (extra[part],))

        def values(rows, channels, part=part):
            asked.append(len(rows))
            return (extra[part][rows, channels],)

        lazy.update(scores[part], values)
    assert max(asked) <= 3 * 4
    assert sum(asked) < scores.size
    want, got = (*arrays.result(), arrays.tied(), *arrays.kept()), (*lazy.result(), lazy.tied(), *lazy.kept())
    assert len(want) == len(got) == 4
    for a, b in zip(want, got, strict=True):
        assert same_bits(a, b)


@pytest.mark.parametrize(
    ("channels", "strides", "padding"),
    [(1, (1, 1), "same"), (3, (2, 1), "valid"), (9, (1, 1), "same"), (9, (2, 2), "same")],
)
def test_conv2d_chunk_by_chunk_is_the_whole_batch_at_once(monkeypatch, channels, strides, padding):
    rng = np.random.default_rng(channels)
    x = rng.normal(size=(11, 9, 8, channels)).astype(np.float32)
    kernel, bias = rng.normal(size=(3, 3, channels, 5)).astype(np.float32), rng.normal(size=5).astype(np.float32)
    relu = ops.IN_PLACE["relu"]
    monkeypatch.setattr(ops, "CHUNK_BYTES", 1 << 30)
    whole = conv2d(x, kernel, bias, strides, padding)
    whole_relu = conv2d(x, kernel, bias, strides, padding, relu)
    assert same_bits(whole_relu, np.maximum(whole, 0))
    for chunk in (1, 700, 5000):  # one image a chunk, a few, several
        monkeypatch.setattr(ops, "CHUNK_BYTES", chunk)
        assert same_bits(conv2d(x, kernel, bias, strides, padding), whole)
        assert same_bits(conv2d(x, kernel, bias, strides, padding, relu), whole_relu)
    wide = conv2d(x, kernel, bias.astype(np.float64), strides, padding, relu)  # a float64 bias: added after
    assert wide.dtype == np.float64
    np.testing.assert_array_equal(
        wide, np.maximum(conv2d(x, kernel, None, strides, padding) + bias.astype(np.float64), 0)
    )


@pytest.mark.parametrize(("size", "strides", "padding"), [((2, 2), (2, 2), "valid"), ((3, 2), (1, 2), "same")])
def test_max_pooling_chunk_by_chunk_is_the_whole_batch_at_once(monkeypatch, size, strides, padding):
    x = np.random.default_rng(0).normal(size=(9, 7, 6, 3)).astype(np.float32)
    monkeypatch.setattr(ops, "CHUNK_BYTES", 1 << 30)
    whole = pool2d(x, size, strides, padding, "max")
    for chunk in (1, 100, 1000):
        monkeypatch.setattr(ops, "CHUNK_BYTES", chunk)
        assert same_bits(pool2d(x, size, strides, padding, "max"), whole)


def blas_limits() -> list[int]:
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_blas_threads_holds_blas_to_one_thread_inside_and_gives_the_count_back():
    before = blas_limits()
    with blas_threads(1):
        assert set(blas_limits()) <= {1}
    assert blas_limits() == before
