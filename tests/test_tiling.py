"""tconv.tiling: tiled inference equals whole-image inference (threads and a dask.distributed
cluster of worker processes), naive cut-and-stitch does not, plans, sources (NumPy, memory
map, zarr, dask) and ``tconv unet segment``."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

from tconv import nn, tiling  # noqa: E402
from tconv.errors import TconvError  # noqa: E402
from nn_helpers import randomise

#: name -> (unet arguments, image size step, smallest image side)
CONFIGS = {
    "course": (dict(input_size=(96, 128, 3), n_filters=4, n_classes=23), 16, 32),
    "depth2_nearest": (dict(input_size=(64, 80, 3), n_filters=3, n_classes=3, depth=2,
                            upsampling="upsample"), 4, 8),
    "depth3_bilinear_bn": (dict(input_size=(48, 64, 2), n_filters=3, n_classes=5, depth=3,
                                upsampling="upsample", interpolation="bilinear",
                                batch_norm=True), 8, 16),
    "valid_paper": (dict(input_size=(92, 92, 1), n_filters=3, n_classes=2, depth=2,
                         padding="valid"), 4, 92),
    "depth1_wide_k2": (dict(input_size=(32, 32, 3), n_filters=8, n_classes=4, depth=1,
                            up_kernel=2, final_activation="softmax"), 2, 4),
}
_MODELS: dict = {}




def _model(name):
    if name not in _MODELS:
        model = nn.unet(**CONFIGS[name][0])
        randomise(model, np.random.default_rng(len(name)))
        _MODELS[name] = model
    return _MODELS[name]


def _rel(a, b) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(b).max(), 1e-12))


def _image(name, height, width, seed=0, batch=None):
    channels = CONFIGS[name][0]["input_size"][2]
    shape = (height, width, channels) if batch is None else (batch, height, width, channels)
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


@st.composite
def _case(draw, name):
    _, step, smallest = CONFIGS[name]
    side = st.integers(0, 6).map(lambda k: smallest + step * k)
    return draw(side), draw(side), (draw(st.integers(1, 72)), draw(st.integers(1, 72)))


@pytest.fixture(scope="module")
def client():
    """Two worker processes, started once for the module (not the default client)."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, worker_dashboard_address=None)
    c = distributed.Client(cluster, set_as_default=False)
    yield c
    c.close()
    cluster.close()


# ------------------------------------------------------------------ exactness


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_tiled_equals_whole_threads(name):
    model = _model(name)

    @settings(max_examples=4, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(_case(name))
    def check(case):
        height, width, tile = case
        image = _image(name, height, width, seed=height * 1000 + width)
        whole = model(image[None])[0]
        tiled = tiling.predict(model, image, tile=tile, scheduler="threads")
        assert tiled.shape == whole.shape and tiled.dtype == whole.dtype
        assert _rel(tiled, whole) < 1e-5, f"{name}: {height}x{width} tile {tile}"

    check()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_tiled_equals_whole_distributed(name, client):
    model = _model(name)

    @settings(max_examples=2, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(_case(name))
    def check(case):
        height, width, tile = case
        image = _image(name, height, width, seed=height + width, batch=2)
        whole = model(image)
        tiled = tiling.predict(model, image, tile=tile, scheduler=client)
        assert _rel(tiled, whole) < 1e-5, f"{name}: {height}x{width} tile {tile}"

    check()


def test_course_unet_default_client_and_edge_tiles(client):
    """An active Client is used by default; edge tiles smaller than the others are exact."""
    model = _model("course")
    image = _image("course", 80, 112, seed=3)
    whole = model(image[None])[0]
    with client.as_current():
        tiled = tiling.predict(model, image, tile=(48, 32))
    assert _rel(tiled, whole) < 1e-5


def test_naive_cut_and_stitch_differs_at_seams():
    model = _model("course")
    image = _image("course", 96, 128, seed=7)
    whole = model(image[None])[0]
    tile = 32
    naive = np.zeros_like(whole)
    for r in range(0, 96, tile):
        for c in range(0, 128, tile):
            naive[r: r + tile, c: c + tile] = model(image[None, r: r + tile, c: c + tile])[0]
    error = np.abs(naive - whole).max(axis=-1)
    scale = np.abs(whole).max()
    seams = np.zeros(error.shape, bool)
    seams[[31, 32, 63, 64], :] = True
    seams[:, [31, 32, 63, 64, 95, 96]] = True
    assert error[seams].max() / scale > 1e-2  # the seams are visibly wrong
    tiled = tiling.predict(model, image, tile=tile, scheduler="synchronous")
    assert _rel(tiled, whole) < 1e-5  # tconv's tiles are not


# ------------------------------------------------------------------ sources


def test_zarr_in_and_out(tmp_path):
    model = _model("depth2_nearest")
    image = _image("depth2_nearest", 72, 88, seed=1, batch=2)
    whole = model(image)
    source = zarr.open_array(str(tmp_path / "in.zarr"), mode="w", shape=image.shape,
                             chunks=(1, 24, 24, 3), dtype="float32")
    source[:] = image
    for chunks in ((1, 16, 32, 3), (1, 20, 20, 3)):  # aligned with the tiles, and not
        out = zarr.open_array(str(tmp_path / f"out{chunks[1]}.zarr"), mode="w", shape=whole.shape,
                              chunks=chunks, dtype="float32")
        assert tiling.predict(model, source, tile=32, out=out, scheduler="threads") is out
        assert _rel(out[:], whole) < 1e-5
    with pytest.raises(TconvError, match="out"):
        tiling.predict(model, source, tile=32, out=zarr.zeros((1, 2, 3, 3), dtype="float32"))


def test_dask_in_gives_lazy_dask_out():
    model = _model("depth3_bilinear_bn")
    image = _image("depth3_bilinear_bn", 64, 96, seed=2)
    lazy = tiling.predict(model, da.from_array(image, chunks=(40, 40, 2)), tile=32)
    assert isinstance(lazy, da.Array)
    assert lazy.chunks[:2] == ((32, 32), (32, 32, 32))
    assert _rel(lazy.compute(scheduler="threads"), model(image[None])[0]) < 1e-5


def test_memmap_source(tmp_path):
    model = _model("depth1_wide_k2")
    image = _image("depth1_wide_k2", 40, 52, seed=4, batch=1)
    mapped = np.memmap(tmp_path / "x.dat", dtype=np.float32, mode="w+", shape=image.shape)
    mapped[:] = image
    mapped.flush()
    mapped = np.memmap(tmp_path / "x.dat", dtype=np.float32, mode="r", shape=image.shape)
    reader, squeeze = tiling._as_reader(mapped)
    assert not squeeze and len(pickle.dumps(reader)) < 1000  # sent by path, not by value
    assert _rel(tiling.predict(model, mapped, tile=16, scheduler="threads"), model(image)) < 1e-5


def test_models_pickle_as_config_and_weights():
    model = _model("depth3_bilinear_bn")
    copy = pickle.loads(pickle.dumps(model))
    image = _image("depth3_bilinear_bn", 24, 32, batch=1)
    assert [layer.name for layer in copy.layers] == [layer.name for layer in model.layers]
    np.testing.assert_array_equal(copy(image), model(image))


def test_shipped_model_runs_on_other_sizes():
    model = nn.load_shipped()
    assert model.input_shape == (None, 96, 128, 3)
    image = np.random.default_rng(0).random((1, 192, 256, 3), dtype=np.float32)
    assert model(image).shape == (1, 192, 256, 4)
    assert _rel(tiling.predict(model, image, tile=64, scheduler="threads"), model(image)) < 1e-5


# ------------------------------------------------------------------ plans


def test_plan_of_the_course_unet():
    model = nn.unet(n_filters=4, n_classes=2)
    p = tiling.plan(model, 500, image_shape=(1024, 1024, 3))
    assert p.tile == (496, 496) and p.requested_tile == (500, 500)
    assert p.alignment == (16, 16) and p.total_stride == (16, 16)
    assert p.halo == ((110, 94), (110, 94)) and p.input_tile == (700, 700)
    assert p.grid == (3, 3) and p.output == (1024, 1024)
    assert 1 < p.work_overhead < p.read_overhead
    text = str(p)
    for words in ("Alignment", "Receptive field", "Halo", "Exactness", "padding", "crop"):
        assert words in text
    assert json.loads(json.dumps(p.to_dict()))["halo"] == [[110, 94], [110, 94]]


def test_plan_halo_covers_the_receptive_field():
    for name in CONFIGS:
        p = tiling.plan(_model(name), 64)
        for axis in range(2):
            assert sum(p.halo[axis]) + p.tile[axis] >= p.receptive_field[axis] - p.alignment[axis]
            assert p.tile[axis] % p.alignment[axis] == 0


def test_refusals():
    x = nn.Input((16, 16, 3))
    model = nn.Model(x, nn.Conv2D(2, 3, padding="same", data_format="channels_first")(x))
    with pytest.raises(TconvError, match="channels_last"):
        tiling.plan(model, 8)
    with pytest.raises(TconvError, match="tile"):
        tiling.plan(_model("course"), 0)
    with pytest.raises(TconvError, match="channels"):
        tiling.predict(_model("course"), np.zeros((32, 32, 1), np.float32), tile=16)


# ------------------------------------------------------------------ CLI


def _picture(tmp_path):
    from PIL import Image

    from tconv.nn import data

    images, _ = data.shapes(4, size=(48, 64), seed=11)
    big = np.concatenate([np.concatenate(list(images[:2]), axis=1),
                          np.concatenate(list(images[2:]), axis=1)], axis=0)
    pixels = (big * 255).round().astype(np.uint8)
    path = tmp_path / "scene.png"
    Image.fromarray(pixels).save(path)
    return path, pixels


def test_cli_segment_png_matches_whole_image(tmp_path, capsys):
    from PIL import Image

    from tconv.cli import main

    path, pixels = _picture(tmp_path)
    model = nn.load_shipped()
    expected = model(pixels[None].astype(np.float32) / np.float32(255))[0].argmax(-1)
    out = tmp_path / "labels.png"
    assert main(["unet", "segment", str(path), "--tile", "32", "-o", str(out)]) == 0
    labels = np.asarray(Image.open(out))
    assert labels.dtype == np.uint8 and labels.shape == expected.shape
    np.testing.assert_array_equal(labels, expected)
    captured = capsys.readouterr()
    assert "100% Completed" in captured.err and "wrote" in captured.out


def test_cli_segment_tiff_and_zarr_on_processes_and_a_cluster(tmp_path, client):
    import tifffile

    from tconv.cli import main

    path, pixels = _picture(tmp_path)
    tif = tmp_path / "scene.tif"
    tifffile.imwrite(tif, pixels)
    model = nn.load_shipped()
    expected = model(pixels[None].astype(np.float32) / np.float32(255))[0].argmax(-1)
    assert main(["unet", "segment", str(tif), "--tile", "48", "-o", str(tmp_path / "a.tif"),
                 "--scheduler", "processes", "--no-progress"]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "a.tif"), expected)
    address = client.scheduler.address
    assert main(["unet", "segment", str(tif), "--tile", "32x64", "-o", str(tmp_path / "b.zarr"),
                 "--scheduler", address]) == 0
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "b.zarr"), mode="r")[:], expected)
    assert main(["unet", "segment", str(tif), "--tile", "big", "-o", str(tmp_path / "c.png")]) != 0
