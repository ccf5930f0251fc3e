"""tconv.nn: layers, the U-Net against Keras and PyTorch, the planner against both, weight
files (and bad ones), the shipped model and its demo."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from oracles.harness import require
from tconv import nn
from tconv.errors import TconvError
from tconv.nn import io as nn_io
from tconv.nn.plan import plan_unet
from tconv.nn.unet import build_unet
from nn_helpers import randomise

#: the course architecture and four other configurations
CONFIGS = {
    "course": dict(),
    "depth2_bilinear": dict(input_size=(64, 80, 3), n_filters=4, n_classes=3, depth=2,
                            upsampling="upsample", interpolation="bilinear"),
    "valid_paper": dict(input_size=(92, 92, 1), n_filters=4, n_classes=2, depth=2, padding="valid"),
    "depth3_bn_nearest": dict(input_size=(48, 64, 3), n_filters=6, n_classes=5, depth=3,
                              batch_norm=True, upsampling="upsample"),
    "depth5_wide": dict(input_size=(64, 96, 2), n_filters=3, n_classes=4, depth=5),
}


def _keras():
    keras = require("keras")
    return keras




def _rel(a, b) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(b).max(), 1e-12))


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_unet_matches_keras_and_torch(name, tmp_path):
    keras = _keras()
    torch = require("torch")
    cfg = CONFIGS[name]
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    kmodel = build_unet(keras.layers, keras.Input, keras.Model, **cfg)
    randomise(kmodel, rng)
    kmodel.save_weights(tmp_path / "u.weights.h5")
    model = nn.unet(**cfg)
    model.load_weights(tmp_path / "u.weights.h5")  # Keras' own file: layer order and layout
    assert [layer.name for layer in model.layers] == [layer.name for layer in kmodel.layers]
    x = rng.random((2,) + model.input_shape[1:], dtype=np.float32)
    expected = kmodel.predict(x, verbose=0)
    got = model(x)
    assert got.shape == expected.shape and got.dtype == np.float32
    assert _rel(got, expected) < 1e-4, name
    tmodel = nn.to_torch(model)
    with torch.no_grad():
        theirs = tmodel(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
    assert _rel(got, theirs.transpose(0, 2, 3, 1)) < 1e-4, name
    # the state dict round-trips through both PyTorch formats
    model.save_weights(tmp_path / "u.safetensors")
    torch.save(tmodel.state_dict(), tmp_path / "u.pt")
    for path in ("u.safetensors", "u.pt"):
        other = nn.unet(**cfg)
        other.load_weights(tmp_path / path)
        np.testing.assert_allclose(other(x), got, rtol=1e-5, atol=1e-5 * np.abs(got).max())


def test_layers_basics():
    x = np.arange(2 * 5 * 6 * 3, dtype=np.float32).reshape(2, 5, 6, 3)
    assert nn.MaxPooling2D()(x).shape == (2, 2, 3, 3)
    assert nn.MaxPooling2D(padding="same")(x).shape == (2, 3, 3, 3)
    assert nn.UpSampling2D((2, 3))(x).shape == (2, 10, 18, 3)
    assert nn.Cropping2D(((1, 0), (2, 1)))(x).shape == (2, 4, 3, 3)
    assert nn.ZeroPadding2D(1)(x).shape == (2, 7, 8, 3)
    assert nn.Concatenate()([x, x]).shape == (2, 5, 6, 6)
    assert np.array_equal(nn.Dropout(0.5)(x), x)
    s = nn.Softmax()(x)
    np.testing.assert_allclose(s.sum(-1), 1, rtol=1e-6)
    with pytest.raises(TconvError, match="Concatenate"):
        nn.Concatenate()([x, x[:, :4]])
    with pytest.raises(TconvError, match="cropping"):
        nn.Cropping2D(((3, 3), (0, 0)))(x)


@pytest.mark.oracle
def test_layers_match_keras():
    keras = _keras()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 7, 9, 4)).astype(np.float32)
    cases = [
        ("MaxPooling2D", dict(pool_size=3, strides=2, padding="same")),
        ("MaxPooling2D", dict(pool_size=(2, 3), padding="valid")),
        ("UpSampling2D", dict(size=(2, 3), interpolation="bilinear")),
        ("UpSampling2D", dict(size=3, interpolation="bilinear")),
        ("UpSampling2D", dict(size=2, interpolation="nearest")),
        ("Cropping2D", dict(cropping=((1, 2), (0, 3)))),
        ("ZeroPadding2D", dict(padding=((1, 0), (2, 3)))),
        ("ReLU", dict(max_value=0.8, negative_slope=0.1, threshold=0.2)),
        ("Activation", dict(activation="sigmoid")),
        ("Softmax", dict()),
    ]
    keep = x.copy()
    for cls, kwargs in cases:
        theirs = np.asarray(getattr(keras.layers, cls)(**kwargs)(x))
        mine = getattr(nn, cls)(**kwargs)(x)
        assert mine.shape == theirs.shape, (cls, kwargs)
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6, err_msg=f"{cls}{kwargs}")
        np.testing.assert_array_equal(x, keep, err_msg=f"{cls}{kwargs} wrote into its input")
    bn = keras.layers.BatchNormalization(epsilon=0.01)
    bn.build(x.shape)
    bn.set_weights([rng.uniform(0.5, 1.5, 4).astype("float32") for _ in range(4)])
    mine = nn.BatchNormalization(epsilon=0.01)
    mine.build(x.shape)
    mine.set_weights(bn.get_weights())
    np.testing.assert_allclose(mine(x), np.asarray(bn(x, training=False)), rtol=1e-5, atol=1e-5)


def test_model_any_size_and_geometry():
    model = nn.unet(input_size=(96, 128, 3), n_filters=2, n_classes=3, depth=3)
    assert model(np.zeros((1, 48, 40, 3), np.float32)).shape == (1, 48, 40, 3)
    steps = model.trace((1, 192, 256, 3))
    assert steps[-1].output_shape == (1, 192, 256, 3)
    up = next(s for s in steps if s.layer.name == "dec2_up")
    assert up.geometry.transposed and up.geometry.axes[0].crop_lo == 0 and up.geometry.axes[0].crop_hi == 1
    pool = next(s for s in steps if s.layer.name == "enc0_pool")
    assert pool.geometry.axes[0].stride == 2
    text = model.summary(print_fn=None)
    assert "dec0_concat (Concatenate)" in text and "Total params" in text
    assert model.get_layer("logits").filters == 3
    with pytest.raises(TconvError, match="is not a layer"):
        model.get_layer("nope")


# ------------------------------------------------------- a batch in shares


def _shares_seen(monkeypatch):
    """Each call's shares of its batch, and the tasks each handed to
    :func:`tconv.kernels.threads.run`, recorded."""
    from tconv.kernels import threads
    from tconv.nn import model as model_module

    seen, handed = [], []
    cut, run = model_module.Model._forward_in_shares, threads.run
    monkeypatch.setattr(model_module.Model, "_forward_in_shares",
                        lambda self, arrays, *shares: seen.append(shares) or cut(self, arrays, *shares))
    monkeypatch.setattr(threads, "run", lambda tasks, work, side_by_side=True: handed.append(
        (len(tasks), side_by_side)) or run(tasks, work, side_by_side))
    return seen, handed


@pytest.mark.parametrize("name", ["course_small", "depth2_bilinear", "depth3_bn_nearest", "valid_paper"])
@pytest.mark.parametrize("batch", [2, 3, 5])
def test_batch_in_shares_gives_the_same_values(monkeypatch, name, batch):
    """A batch run as one share of whole items per core, side by side, gives the values
    the batch run as one gives, to float32 rounding (a smaller tile may take OpenBLAS's
    kernel for small products, which rounds otherwise), and a call repeated gives the same
    bits: the shares do not depend on the load. Odd batches leave a rest, run after."""
    from tconv.kernels import threads
    from tconv.nn import model as model_module

    if not threads.available():
        pytest.skip("one core, or no threadpoolctl/OpenBLAS: nothing runs side by side")
    config = dict(input_size=(48, 64, 3), n_filters=8, n_classes=5, depth=3) if name == "course_small" \
        else CONFIGS[name]
    model = nn.unet(**config)
    randomise(model, np.random.default_rng(11))
    x = np.random.default_rng(12).random((batch,) + tuple(config["input_size"]), dtype=np.float32)
    monkeypatch.setattr(model_module, "SHARE_BATCH", False)
    whole = model(x)
    monkeypatch.setattr(model_module, "SHARE_BATCH", True)
    seen, handed = _shares_seen(monkeypatch)
    shared = model(x)
    workers = threads.workers()
    share = batch // workers
    if not share:
        pytest.skip(f"a batch of {batch} on {workers} cores runs as one")
    assert seen == [([slice(k * share, (k + 1) * share) for k in range(workers)],
                     slice(workers * share, batch) if batch % workers else None)]
    assert handed[0] == (workers, True)  # the shares side by side, before any layer's tiles
    np.testing.assert_allclose(shared, whole, rtol=1e-5, atol=1e-5 * float(np.abs(whole).max()))
    np.testing.assert_array_equal(model(x), shared)


def test_batch_in_shares_only_where_every_layer_acts_per_item(monkeypatch):
    """A layer that reads across the batch axis (a Concatenate, Softmax or
    BatchNormalization along axis 0) keeps the batch whole; so does a batch of fewer items
    than cores."""
    from tconv.kernels import threads

    assert nn.Softmax().acts_per_item(4) and not nn.Softmax(axis=0).acts_per_item(4)
    assert not nn.Softmax(axis=-4).acts_per_item(4) and nn.Softmax(axis=-3).acts_per_item(4)
    assert not nn.Concatenate(axis=0).acts_per_item(4) and nn.Concatenate(axis=3).acts_per_item(4)
    assert not nn.BatchNormalization(axis=0).acts_per_item(4) and nn.BatchNormalization().acts_per_item(4)
    assert not nn.Softmax(axis=4).acts_per_item(4)  # out of range: the call refuses it anyway
    i = nn.Input((6, 6, 3))
    a, b = nn.Conv2D(4, 3, padding="same", name="a")(i), nn.Conv2D(4, 1, name="b")(i)
    model = nn.Model(i, nn.Concatenate(axis=0, name="join")([a, b]))
    randomise(model, np.random.default_rng(3))
    workers = threads.workers()
    x = np.random.default_rng(4).random((max(4, workers), 6, 6, 3), dtype=np.float32)
    seen, _ = _shares_seen(monkeypatch)
    got = model(x)
    assert seen == []
    np.testing.assert_array_equal(got, np.concatenate([model.get_layer("a")(x), model.get_layer("b")(x)]))
    per_item = nn.Model(i, nn.Concatenate(name="join_channels")([a, b]))
    for batch in (1, max(1, workers - 1), workers, 4):
        seen.clear()
        per_item(x[:batch])
        assert bool(seen) == (batch >= workers > 1), batch


def test_batch_in_shares_with_several_inputs_and_outputs(monkeypatch):
    """Each input is cut into the same shares and each output joined from them, in order;
    ``predict`` in batches takes shares per batch."""
    from tconv.kernels import threads
    from tconv.nn import model as model_module

    i, j = nn.Input((6, 6, 3)), nn.Input((6, 6, 2))
    joined = nn.Concatenate(name="join")([nn.Conv2D(4, 3, padding="same", name="a")(i), j])
    model = nn.Model([i, j], [nn.Conv2D(2, 1, name="b")(joined), nn.MaxPooling2D(name="pool")(joined)])
    randomise(model, np.random.default_rng(5))
    rng = np.random.default_rng(6)
    workers = threads.workers()
    batch = 2 * workers + 1
    xs = [rng.random((batch, 6, 6, 3), dtype=np.float32), rng.random((batch, 6, 6, 2), dtype=np.float32)]
    monkeypatch.setattr(model_module, "SHARE_BATCH", False)
    whole = model(xs)
    monkeypatch.setattr(model_module, "SHARE_BATCH", True)
    seen, _ = _shares_seen(monkeypatch)
    shared = model(xs)
    assert len(seen) == (1 if workers > 1 else 0)
    assert [a.shape for a in shared] == [(batch, 6, 6, 2), (batch, 3, 3, 6)]
    for got, want in zip(shared, whole):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    single = nn.Model(i, nn.Conv2D(2, 3, padding="same", name="c")(i))
    size = workers + 1
    seen.clear()
    np.testing.assert_allclose(single.predict(xs[0], batch_size=size),
                               np.concatenate([single(xs[0][k:k + 1]) for k in range(batch)]), rtol=1e-5, atol=1e-6)
    batches = [min(size, batch - k) for k in range(0, batch, size)]  # 3 and 2 items on 2 cores
    assert len(seen) == sum(n >= workers > 1 for n in batches)


def test_a_share_refused_names_the_whole_batch(monkeypatch):
    """A layer that refuses its share is asked again on the whole batch: the message names
    the shapes the caller passed, not a share's."""
    from tconv.kernels import threads

    if not threads.available():
        pytest.skip("one core, or no threadpoolctl/OpenBLAS: nothing runs side by side")
    i, j = nn.Input((None, None, 3)), nn.Input((None, None, 3))
    model = nn.Model([i, j], nn.Conv2D(2, 1)(nn.Concatenate(name="join")([i, j])))
    seen, _ = _shares_seen(monkeypatch)
    with pytest.raises(TconvError, match=r"layer 'join' \(Concatenate\) on \[\(4, 8, 8, 3\), \(4, 8, 6, 3\)\]"):
        model([np.zeros((4, 8, 8, 3), np.float32), np.zeros((4, 8, 6, 3), np.float32)])
    assert len(seen) == 1


def test_model_refuses_an_output_over_the_budget_before_making_it(monkeypatch):
    """A layer run inside a model checks its output against the memory budget first, as
    the layer called alone does: an UpSampling2D of 10^4 is a TconvError naming the
    layer, not a 70 GiB allocation. Shares of a batch side by side divide the budget
    among them, so a batch refused whole is refused in shares too, its message naming the
    whole batch and the whole budget."""
    from tconv import budget

    i = nn.Input((8, 8, 3))
    huge = nn.Model(i, nn.UpSampling2D(10000, name="up")(i))
    with pytest.raises(TconvError, match=r"layer 'up' \(UpSampling2D\) on \(1, 8, 8, 3\).*memory budget"):
        huge(np.zeros((1, 8, 8, 3), np.float32))
    model = nn.Model(i, nn.UpSampling2D(4, name="up4")(i))
    x = np.random.default_rng(0).random((4, 8, 8, 3), dtype=np.float32)
    need = 2 * x.size * 16 * 4  # the output and one temporary of its size
    seen, _ = _shares_seen(monkeypatch)
    with budget.memory_budget(need - 1):
        whole = r"on \(4, 8, 8, 3\).*needs 48\.0 KiB.*, more than the memory budget of 96\.0 KiB"
        with pytest.raises(TconvError, match=whole):
            model(x)
    with budget.memory_budget(need):
        np.testing.assert_array_equal(model(x), x.repeat(4, 1).repeat(4, 2))
    from tconv.kernels import threads

    assert len(seen) == (2 if threads.workers() > 1 else 0)
    with budget.memory_budget(need):
        with budget.shared(2):
            budget.check(need // 2, "output", "half")
            with pytest.raises(TconvError, match="more than 1/2 of the memory budget"):
                budget.check(need // 2 + 1, "output", "half")
        budget.check(need, "output", "whole")  # the share undone after the block


def test_convolutions_in_shares_keep_to_their_share_of_the_budget(monkeypatch):
    """The convolutions check their output and temporaries in ``ops.run`` (and a repeated
    call against its prepared need): in shares each may hold its share of the budget
    (``budget.allowance``), so a batch whose convolution is refused whole is refused in
    shares too, by the whole batch's message."""
    from tconv import budget, ops
    from tconv.kernels import threads

    i = nn.Input((16, 16, 8))
    model = nn.Model(i, nn.Conv2D(16, 3, padding="same", name="conv")(i))
    randomise(model, np.random.default_rng(7))
    x = np.random.default_rng(8).random((4, 16, 16, 8), dtype=np.float32)
    conv = model.get_layer("conv")
    need = ops._check_budget(conv.geometry(x.shape), x, conv.get_weights()[0], np.dtype(np.float32))
    seen, _ = _shares_seen(monkeypatch)
    expected = model(x)  # in shares, the whole budget: prepared calls remembered
    for _ in range(2):  # the first call checks, the second finds its prepared call
        with budget.memory_budget(need - 1):
            whole = r"layer 'conv' \(Conv2D\) on \(4, 16, 16, 8\).* more than the memory budget"
            with pytest.raises(TconvError, match=whole):
                model(x)
    with budget.memory_budget(need):
        np.testing.assert_array_equal(model(x), expected)
    assert len(seen) == (4 if threads.workers() > 1 else 0)


# ---------------------------------------------------------------- the planner

SIZES = [(h, w) for h, w in [
    (96, 128), (97, 130), (64, 64), (65, 64), (64, 66), (50, 70), (48, 48), (33, 17), (16, 16),
    (17, 16), (20, 28), (24, 40), (31, 32), (32, 31), (40, 44), (44, 52), (56, 60), (72, 80),
    (80, 72), (100, 100), (7, 9), (8, 8), (12, 12), (15, 15), (36, 36), (18, 26), (26, 18),
    (88, 96), (90, 90), (98, 98), (112, 144), (60, 84), (66, 66), (34, 50), (52, 58), (76, 68),
]]


def _plan_cases():
    cases = [(hw, 4, "same", "transpose") for hw in SIZES]
    cases += [(hw, 2, "same", "upsample") for hw in SIZES[:10]]
    cases += [(hw, 2, "valid", "transpose") for hw in [(44, 44), (60, 76), (20, 20), (30, 30), (61, 64),
                                                       (92, 92), (42, 50)]]
    return cases


@pytest.mark.oracle
def test_planner_matches_keras_and_torch():
    keras = _keras()
    torch = require("torch")
    cases = _plan_cases()
    assert len(cases) >= 50
    torch_models = {}
    for hw, depth, padding, upsampling in cases:
        kw = dict(n_filters=1, n_classes=2, depth=depth, padding=padding, upsampling=upsampling)
        for framework in ("keras", "torch"):
            plan = plan_unet(hw + (1,), framework=framework, **{k: v for k, v in kw.items()})
            label = f"{hw} depth={depth} {padding} {upsampling} {framework}"
            try:
                if framework == "keras":
                    shape = build_unet(keras.layers, keras.Input, keras.Model, input_size=hw + (1,),
                                       **kw).output_shape[1:]
                else:
                    key = (depth, padding, upsampling)
                    if padding == "valid":  # the skip crops are part of the architecture
                        plan_ok = plan_unet(hw + (1,), framework="keras", **kw).ok
                        if not plan_ok:
                            assert not plan.ok, label
                            continue
                        tmodel = nn.to_torch(nn.unet(input_size=hw + (1,), **kw))
                    else:
                        if key not in torch_models:
                            torch_models[key] = nn.to_torch(nn.unet(input_size=(64, 64, 1), **kw))
                        tmodel = torch_models[key]
                    with torch.no_grad():
                        out = tmodel(torch.zeros((1, 1) + hw))
                    shape = tuple(out.shape[2:]) + (out.shape[1],)
            except (ValueError, RuntimeError) as exc:
                assert not plan.ok, f"{label}: the framework refused ({exc}) but the plan is ok"
                message = str(exc)
                for fragment in plan.framework_error:
                    assert fragment in message, f"{label}: {fragment!r} not in {message[:300]!r}"
                continue
            assert plan.ok, f"{label}: the framework built {shape} but the plan fails: {plan.reason}"
            assert tuple(shape) == tuple(plan.output), label


def test_planner_json_and_fixes():
    plan = plan_unet((97, 130, 3), depth=4)
    d = json.loads(plan.to_json())
    assert d["ok"] is False and d["failing_level"] == 1 and "65" in d["reason"]
    names = {f["name"]: f for f in d["fixes"]}
    assert names["pad_input"]["input"] == [112, 144, 3] and names["pad_input"]["output"] == [112, 144, 23]
    assert names["pad_upsampled"]["output"] == [97, 130, 23]
    assert names["crop_skip"]["output"] == [96, 128, 23]
    # every proposed fix's input plans ok
    assert plan_unet(tuple(names["pad_input"]["input"]), depth=4).ok
    small = plan_unet((8, 8, 3), depth=4)
    assert not small.ok and small.failing_level == 3
    assert plan_unet((96, 128, 3)).ok


def test_cli_plan(capsys):
    from tconv.cli import main

    assert main(["unet", "plan", "--input", "96x128x3"]) == 0
    assert "ok: output 96x128x23" in capsys.readouterr().out
    assert main(["unet", "plan", "--input", "97x130", "--framework", "torch", "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["ok"] is False and d["failing_level"] == 1 and d["reason"]


# ------------------------------------------------------------------ files


def _keras_file(keras, tmp_path, lambda_layer=False):
    i = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(i)
    if lambda_layer:
        x = keras.layers.Lambda(lambda t: t * 2)(x)
    x = keras.layers.BatchNormalization()(x)
    p = keras.layers.MaxPooling2D()(x)
    u = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same")(p)
    c = keras.layers.Concatenate()([u, x])
    o = keras.layers.Conv2D(2, 1)(keras.layers.Dropout(0.2)(c))
    model = keras.Model(i, o)
    path = tmp_path / ("lambda.keras" if lambda_layer else "m.keras")
    model.save(path)
    return model, path


@pytest.mark.oracle
def test_load_keras_and_save_back(tmp_path):
    keras = _keras()
    kmodel, path = _keras_file(keras, tmp_path)
    rng = np.random.default_rng(0)
    for layer in kmodel.layers:
        if layer.weights:
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.get_weights()])
    kmodel.save(path)
    model = nn.load_keras(path)
    x = rng.random((2, 16, 16, 3), dtype=np.float32)
    expected = kmodel.predict(x, verbose=0)
    assert _rel(model(x), expected) < 1e-4
    assert model(rng.random((1, 32, 48, 3), dtype=np.float32)).shape == (1, 32, 48, 2)  # any size
    model.save(tmp_path / "back.keras")
    model.save_weights(tmp_path / "back.weights.h5")
    again = keras.models.load_model(tmp_path / "back.keras")
    assert _rel(again.predict(x, verbose=0), expected) < 1e-6
    kmodel.load_weights(tmp_path / "back.weights.h5")
    assert _rel(kmodel.predict(x, verbose=0), expected) < 1e-6


@pytest.mark.oracle
def test_bad_files_refused(tmp_path):
    keras = _keras()
    _, path = _keras_file(keras, tmp_path)
    data = path.read_bytes()
    _, lam = _keras_file(keras, tmp_path, lambda_layer=True)
    with pytest.raises(TconvError, match="Lambda"):
        nn.load_keras(lam)
    (tmp_path / "trunc.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(TconvError):
        nn.load_keras(tmp_path / "trunc.keras")
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("model.weights.h5")
        offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2
    flipped = bytearray(data)
    flipped[offset] ^= 0x10
    (tmp_path / "flip.keras").write_bytes(bytes(flipped))
    with pytest.raises(TconvError, match="corrupted|CRC"):
        nn.load_keras(tmp_path / "flip.keras")
    model = nn.load_keras(path)
    model.save_weights(tmp_path / "w.weights.h5")
    (tmp_path / "w.keras").write_bytes((tmp_path / "w.weights.h5").read_bytes())  # mislabelled
    with pytest.raises(TconvError, match="mislabelled|HDF5"):
        nn.load_keras(tmp_path / "w.keras")
    (tmp_path / "x.weights.h5").write_bytes(data)  # a .keras named as weights
    with pytest.raises(TconvError, match="mislabelled"):
        model.load_weights(tmp_path / "x.weights.h5")
    h5 = (tmp_path / "w.weights.h5").read_bytes()
    (tmp_path / "t.weights.h5").write_bytes(h5[: len(h5) // 3])
    with pytest.raises(TconvError):
        model.load_weights(tmp_path / "t.weights.h5")
    other = nn.unet(input_size=(16, 16, 3), n_filters=2, n_classes=2, depth=1)
    with pytest.raises(TconvError, match="different architecture|shape"):
        other.load_weights(tmp_path / "w.weights.h5")
    model.save_weights(tmp_path / "s.safetensors")
    st = (tmp_path / "s.safetensors").read_bytes()
    (tmp_path / "t.safetensors").write_bytes(st[:-7])
    with pytest.raises(TconvError, match="safetensors"):
        model.load_weights(tmp_path / "t.safetensors")
    (tmp_path / "pickle.pt").write_bytes(b"\x80\x04\x95" + b"\x00" * 40)
    with pytest.raises(TconvError):
        model.load_weights(tmp_path / "pickle.pt")


def test_safetensors_matches_library(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {"a.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
               "b": np.ones(3, np.float64), "n": np.zeros((), np.int64)}
    nn_io.write_safetensors(tensors, tmp_path / "t.safetensors")
    theirs = safetensors_numpy.load_file(str(tmp_path / "t.safetensors"))
    for k, v in tensors.items():
        np.testing.assert_array_equal(theirs[k], v)
    safetensors_numpy.save_file(tensors, str(tmp_path / "u.safetensors"))
    for k, v in nn_io.read_safetensors(tmp_path / "u.safetensors").items():
        np.testing.assert_array_equal(v, tensors[k])


# ------------------------------------------------------------- shipped model


def test_shipped_model_and_demo(tmp_path, capsys):
    pytest.importorskip("h5py")
    model = nn.load_shipped()
    assert nn_io.SHIPPED_MODEL.stat().st_size < 2_000_000
    assert model.input_shape == (None, 96, 128, 3) and model.output_shape[-1] == 4
    from tconv.cli import main

    out = tmp_path / "demo.png"
    assert main(["unet", "demo", "-n", "16", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    mean = float(text.split("mean IoU")[1].split()[0])
    assert mean >= 0.85, text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
