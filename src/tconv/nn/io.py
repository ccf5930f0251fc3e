"""Weight files, read and written without unpickling anything.

- ``.keras`` (Keras 3): a zip of ``config.json`` (the architecture), ``metadata.json`` and
  ``model.weights.h5``. :func:`load_keras` rebuilds the model from the config with
  :mod:`tconv.nn.layers` and refuses any layer it does not support (``Lambda``, custom
  objects, nested models) by name.
- ``.weights.h5`` (Keras 3): ``layers/<key>/vars/<i>`` datasets, where ``<key>`` is the
  layer's class in snake case numbered per class in the model's layer order
  (:meth:`Model.weight_keys`); the ``vars`` group's ``name`` attribute (the layer's own
  name) is written but never read back (see :func:`_read_h5_layers`). Read and written with h5py.
- PyTorch state dicts of :func:`tconv.nn.to_torch`'s model (``<layer>.weight``,
  ``.bias``, ``.running_mean``, ``.running_var``): ``.safetensors`` (read and written
  here, format https://github.com/huggingface/safetensors, no library needed) or
  ``.pt``/``.pth`` through ``torch.load(weights_only=True)``.

A file is recognised by its first bytes, not its name; a name that disagrees with the
content, a truncated or corrupted file, a shape or count that does not fit the model,
and non-finite weights are each a :class:`TconvError`.
"""

from __future__ import annotations

import io as _io
import json
import math
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from tconv.errors import TconvError
from tconv.nn import layers as L
from tconv.nn.model import Model

__all__ = ["load_keras", "load_weights", "save_weights", "save_keras", "model_config",
           "state_dict", "load_state_dict", "read_safetensors", "write_safetensors",
           "SHIPPED_MODEL", "load_shipped"]

#: the U-Net trained on synthetic shapes by scripts/train_unet.py
SHIPPED_MODEL = Path(__file__).resolve().parent / "models" / "unet_shapes.keras"

_MAGIC = {b"PK\x03\x04": "zip", b"\x89HDF\r\n\x1a\n": "hdf5"}
_MAX_HEADER = 100 * 1024 * 1024


def _kind(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            size = path.stat().st_size
    except OSError as exc:
        raise TconvError("path", str(path), f"cannot be read: {exc.strerror or exc}") from None
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 2 <= n <= min(size - 8, _MAX_HEADER) and head[8:9] == b"{":
            return "safetensors"
    return "unknown"


def _expect(path: Path, kind: str, want: str, what: str) -> None:
    if kind != want:
        found = {"zip": "a zip archive (.keras, or a torch .pt file)", "hdf5": "an HDF5 file (.weights.h5)",
                 "safetensors": "a safetensors file", "unknown": "no format tconv reads"}[kind]
        raise TconvError("path", str(path), f"is named as {what} but holds {found}: "
                         "mislabelled, truncated or corrupted")


def _h5py():
    try:
        import h5py
    except ImportError:
        raise TconvError("h5py", None, "is needed to read Keras weights: pip install 'tconv[nn]'") from None
    return h5py


# ------------------------------------------------------------------ Keras h5


#: HDF5's own filters (deflate, shuffle, fletcher32, szip, nbit, scaleoffset): any other
#: filter id in a file would make HDF5 look for a plugin library on this machine
_H5_BUILTIN_FILTERS = frozenset({1, 2, 3, 4, 5, 6})


def _h5_child(h5py: Any, group: Any, name: str, kind: type, path: str, where: str) -> Any:
    """``group[name]`` if it is a hard link to a ``kind``, None if there is no such link.

    The link is looked at without following it (``H5Lexists``, ``H5Lget_info``): a soft or
    external link (which would open another file) is refused, not followed.
    """
    link = name.encode("utf-8", "surrogateescape")
    if not group.id.links.exists(link):
        return None
    if group.id.links.get_info(link).type != h5py.h5l.TYPE_HARD:
        raise TconvError("path", path, f"holds a soft or external link at {where}; a Keras 3 weights "
                         "file has only hard links (links to other paths or files are not followed)")
    obj = group[name]
    if not isinstance(obj, kind):
        raise TconvError("path", path, f"holds a {type(obj).__name__} at {where} where a "
                         f"{kind.__name__} is expected; not a Keras 3 weights file")
    return obj


def _h5_array(ds: Any, path: str, where: str) -> np.ndarray:
    """A numeric dataset's values, checked before anything is read."""
    dtype = ds.dtype  # from the object header: no data is read for it
    if dtype.kind not in "fiu" or dtype.fields is not None or dtype.subdtype is not None:
        raise TconvError("path", path, f"holds {where} of type {dtype}; Keras weights are numeric "
                         "arrays (strings, variable-length and compound data are not read)")
    if ds.shape is None:
        raise TconvError("path", path, f"holds {where} with no dataspace; truncated or corrupted")
    plist = ds.id.get_create_plist()
    for j in range(plist.get_nfilters()):
        code = plist.get_filter(j)[0]
        if code not in _H5_BUILTIN_FILTERS:
            raise TconvError("path", path, f"holds {where} compressed with HDF5 filter {code}; "
                             "only HDF5's built-in filters are read (no plugins are loaded)")
    from tconv import budget

    nbytes = math.prod(ds.shape) * dtype.itemsize
    budget.check(nbytes, "path", path, f"{where} of shape {tuple(ds.shape)} as {dtype}")
    return np.asarray(ds[()])


def _read_h5_layers(source: Any, path: str) -> dict[str, list[np.ndarray]]:
    """``{key: [arrays]}`` of a Keras 3 weights file (``layers/<key>/vars/<i>``).

    Reads group and link names, the datasets' types and shapes (object headers) and the
    numeric datasets' values, and nothing else: no attribute, and no variable-length data.
    A damaged file's global heap (where HDF5 keeps variable-length strings, such as the
    ``name`` attribute Keras writes on each ``vars`` group) can make HDF5 loop forever in C,
    where no signal interrupts it (``fuzz/crashes/h5py_vlen_attribute_hang.weights.h5``).
    Keras' own loader does not read that attribute either: layers are matched by ``<key>``.
    """
    h5py = _h5py()
    try:
        with h5py.File(source, "r") as f:
            layers = _h5_child(h5py, f, "layers", h5py.Group, path, "layers")
            if layers is None:
                raise TconvError("path", path, "is not a Keras 3 weights file (no 'layers' group); "
                                 "Keras 2 .h5 files are not supported")
            found = {}
            for key in list(layers.keys()):
                group = _h5_child(h5py, layers, key, h5py.Group, path, f"layers/{key}")
                vars_ = _h5_child(h5py, group, "vars", h5py.Group, path, f"layers/{key}/vars")
                arrays = []
                for i in range(len(vars_) if vars_ is not None else 0):
                    where = f"layers/{key}/vars/{i}"
                    ds = _h5_child(h5py, vars_, str(i), h5py.Dataset, path, where)
                    if ds is None:
                        raise TconvError("path", path, f"layer {key!r} lacks weight {i}")
                    arrays.append(_h5_array(ds, path, where))
                found[key] = arrays
            return found
    except TconvError:
        raise
    except Exception as exc:  # h5py raises OSError/KeyError/ValueError on damaged files
        raise TconvError("path", path, f"is not a readable HDF5 weights file ({type(exc).__name__}: "
                         f"{exc}); truncated or corrupted") from None


def _check_arrays(layer: L.Layer, arrays: list[np.ndarray], where: str) -> None:
    current = layer.get_weights()
    if len(arrays) != len(current):
        raise TconvError("weights", f"{len(arrays)} arrays",
                         f"{where}: layer {layer.name!r} ({layer.keras_class}) has {len(current)}")
    for i, (old, new) in enumerate(zip(current, arrays)):
        if tuple(old.shape) != tuple(new.shape):
            raise TconvError("weights", tuple(new.shape),
                             f"{where}: weight {i} of layer {layer.name!r} ({layer.keras_class}) "
                             f"must have shape {tuple(old.shape)}")
        if new.dtype.kind not in "fiu":
            raise TconvError("weights", str(new.dtype), f"{where}: weight {i} of layer {layer.name!r} "
                             "must be numeric")
        if not np.all(np.isfinite(new)):
            raise TconvError("weights", f"layer {layer.name!r} weight {i}",
                             f"{where}: contains NaN or infinity (a corrupted file?)")


def _assign_h5(model: Model, found: dict, keys: list[str], path: str) -> None:
    wanted = dict(zip(keys, model.layers))
    extra = sorted(k for k, arrays in found.items() if arrays and k not in wanted)
    if extra:
        raise TconvError("path", path, f"holds weights for layers {extra} that model "
                         f"{model.name!r} lacks: a different architecture")
    pending = []
    for key, layer in wanted.items():
        need = len(layer.get_weights())
        if key not in found:
            if need:
                raise TconvError("path", path, f"has no weights for layer {layer.name!r} "
                                 f"(group layers/{key}): a different architecture")
            continue
        arrays = found[key]
        _check_arrays(layer, arrays, f"{path} layers/{key}")
        pending.append((layer, arrays))
    for layer, arrays in pending:  # all checked first: a refused file changes nothing
        layer.set_weights(arrays)


def _write_h5(model: Model, target: Any) -> None:
    h5py = _h5py()
    with h5py.File(target, "w") as f:
        layers = f.create_group("layers")
        for key, layer in zip(model.weight_keys(), model.layers):
            group = layers.create_group(key).create_group("vars")
            group.attrs["name"] = layer.name
            for i, w in enumerate(layer.get_weights()):
                group.create_dataset(str(i), data=w)
        f.create_group("vars").attrs["name"] = model.name


# ------------------------------------------------------------------ .keras


def _tensor_ref(value: Any, where: str) -> tuple[str, int, int]:
    if not isinstance(value, dict) or value.get("class_name") != "__keras_tensor__":
        raise TconvError("config", where, f"has an argument tconv cannot read: {str(value)[:80]}")
    history = value.get("config", {}).get("keras_history")
    if not isinstance(history, list) or len(history) != 3:
        raise TconvError("config", where, "has a tensor without keras_history")
    return history[0], int(history[1]), int(history[2])


def _layer_from_config(entry: dict) -> L.Layer:
    class_name = entry.get("class_name")
    config = dict(entry.get("config") or {})
    name = config.get("name", entry.get("name"))
    module = entry.get("module") or ""
    if class_name not in L.LAYERS or entry.get("registered_name") not in (None, class_name) \
            or not (module == "keras.layers" or module.startswith("keras.src.layers")):
        raise TconvError(
            "layer", f"{name} ({class_name})",
            f"is not supported by tconv.nn (module {module!r}); it computes only "
            f"{sorted(L.LAYERS)} and runs no custom or Lambda code")
    activation = config.get("activation")
    if isinstance(activation, dict):
        raise TconvError("layer", f"{name} ({class_name})",
                         f"has a custom activation {activation.get('class_name')!r} tconv cannot run")
    for key in [k for k in config if k.endswith(("_regularizer", "_constraint"))]:
        config.pop(key)
    if class_name == "InputLayer":
        for key in ("sparse", "ragged", "optional"):
            config.pop(key, None)
    try:
        return L.LAYERS[class_name].from_config(config)
    except TconvError as exc:
        raise exc.with_context(f"layer {name!r} ({class_name}) of the .keras config") from None
    except TypeError as exc:
        raise TconvError("layer", f"{name} ({class_name})", f"has a config tconv cannot read: {exc}") from None


def model_from_config(config: dict) -> tuple[Model, list[str]]:
    """Rebuild a Functional (or Sequential) model from Keras' ``config.json``; also returns the
    config's layer names in order (the order the weights file follows)."""
    if not isinstance(config, dict):
        raise TconvError("config", type(config).__name__, "must be a JSON object")
    kind = config.get("class_name")
    inner = config.get("config") or {}
    entries = inner.get("layers")
    if kind not in ("Functional", "Model", "Sequential") or not isinstance(entries, list):
        raise TconvError("config", kind, "must describe a Keras Functional or Sequential model")
    for entry in entries:
        if isinstance(entry, dict) and entry.get("class_name") in ("Functional", "Sequential", "Model"):
            raise TconvError("layer", entry.get("name") or entry.get("config", {}).get("name"),
                             "is a nested model; tconv.nn loads flat models only")
    if kind == "Sequential":
        built = [_layer_from_config(e) for e in entries]
        if not built or not isinstance(built[0], L.InputLayer):
            raise TconvError("config", "Sequential", "must start with an InputLayer")
        x = built[0].output
        for layer in built[1:]:
            x = layer(x)
        return Model(built[0].output, x, name=inner.get("name")), [b.name for b in built]
    tensors: dict[tuple[str, int, int], L.KerasTensor] = {}
    names = []
    todo = list(entries)
    while todo:
        progressed = False
        for entry in list(todo):
            nodes = entry.get("inbound_nodes") or []
            refs = []
            nested = False
            if len(nodes) > 1:
                raise TconvError("layer", entry.get("name"), "is called more than once (a shared "
                                 "layer); tconv.nn does not share layers")
            if nodes:
                args = nodes[0].get("args") or []
                if len(args) != 1:
                    raise TconvError("layer", entry.get("name"), f"is called with {len(args)} "
                                     "positional arguments; tconv.nn reads one")
                arg = args[0]
                nested = isinstance(arg, list)
                refs = [_tensor_ref(a, entry.get("name")) for a in (arg if nested else [arg])]
            if any(r not in tensors for r in refs):
                continue
            layer = _layer_from_config(entry)
            if entry.get("name") and entry["name"] != layer.name:
                raise TconvError("config", entry["name"], f"names the layer {layer.name!r} differently")
            if isinstance(layer, L.InputLayer):
                out = layer.output
            else:
                ins = [tensors[r] for r in refs]
                out = layer(ins if nested else ins[0])
            tensors[(layer.name, 0, 0)] = out
            names.append(layer.name)
            todo.remove(entry)
            progressed = True
        if not progressed:
            raise TconvError("config", [e.get("name") for e in todo],
                             "these layers read tensors no layer produces")

    def refs(value) -> list:
        if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
            value = [value]
        return [tensors[(v[0], int(v[1]), int(v[2]))] for v in value]

    try:
        inputs, outputs = refs(inner.get("input_layers")), refs(inner.get("output_layers"))
    except (KeyError, TypeError, IndexError):
        raise TconvError("config", "input_layers/output_layers", "name unknown tensors") from None
    single_out = isinstance(inner.get("output_layers"), list) and len(inner["output_layers"]) == 3 \
        and isinstance(inner["output_layers"][0], str)
    model = Model(inputs if len(inputs) > 1 else inputs[0], outputs[0] if single_out else outputs,
                  name=inner.get("name"))
    order = [layer.name for layer in model.layers]
    config_order = [e.get("name") or e.get("config", {}).get("name") for e in entries]
    return model, config_order if sorted(config_order) == sorted(order) else order


def load_keras(path) -> Model:
    """Rebuild a ``.keras`` model (Keras 3) from its config and weights, as a :class:`Model`.

    Refuses, with a :class:`TconvError` naming the layer, any layer outside
    :data:`tconv.nn.layers.LAYERS` (``Lambda``, custom classes, nested models), and any
    file that is not an intact ``.keras`` archive.
    """
    path = Path(path)
    _expect(path, _kind(path), "zip", "a .keras archive")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names or "model.weights.h5" not in names:
                raise TconvError("path", str(path), "is a zip but not a .keras archive "
                                 "(config.json and model.weights.h5 expected)")
            from tconv import budget  # a zip bomb is refused by its declared size, before inflating

            for member in ("config.json", "model.weights.h5"):
                size = archive.getinfo(member).file_size
                budget.check(size, "path", str(path), f"(member {member} inflates to {size} bytes)")
            config = json.loads(archive.read("config.json").decode("utf-8"))
            weights = archive.read("model.weights.h5")
    except TconvError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
            UnicodeDecodeError) as exc:  # includes CRC mismatches and JSON errors
        raise TconvError("path", str(path), f"is not an intact .keras archive ({type(exc).__name__}: "
                         f"{exc}); truncated or corrupted") from None
    model, order = model_from_config(config)
    found = _read_h5_layers(_io.BytesIO(weights), f"{path}:model.weights.h5")
    by_name = {layer.name: layer for layer in model.layers}
    keys = _keys_for(order, by_name)
    layer_keys = {name: key for name, key in zip(order, keys)}
    _assign_h5(model, found, [layer_keys[layer.name] for layer in model.layers], str(path))
    return model


def _keys_for(order: list[str], by_name: dict) -> list[str]:
    used: dict[str, int] = {}
    keys = []
    for name in order:
        stem = L.snake_case(by_name[name].keras_class)
        used[stem] = used.get(stem, -1) + 1
        keys.append(stem if used[stem] == 0 else f"{stem}_{used[stem]}")
    return keys


def model_config(model: Model) -> dict:
    """Keras 3's ``config.json`` for ``model`` (Functional)."""
    produced = {id(node.output): node.layer.name for layer in model.layers for node in layer.inbound}

    def ref(t: L.KerasTensor) -> dict:
        return {"class_name": "__keras_tensor__",
                "config": {"shape": list(t.shape), "dtype": t.dtype,
                           "keras_history": [produced[id(t)], 0, 0]}}

    entries = []
    for layer in model.layers:
        node = next(n for n in model._nodes if n.layer is layer)
        inbound = [] if isinstance(layer, L.InputLayer) else [
            {"args": [[ref(t) for t in node.inputs] if node.nested else ref(node.inputs[0])],
             "kwargs": {}}]
        entries.append({"module": "keras.layers", "class_name": layer.keras_class,
                        "config": layer.get_config(), "registered_name": None,
                        "name": layer.name, "inbound_nodes": inbound})

    def refs(tensors):
        items = [[produced[id(t)], 0, 0] for t in tensors]
        return items[0] if len(items) == 1 else items

    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": {"name": model.name, "trainable": True, "layers": entries,
                       "input_layers": refs(model.inputs),
                       "output_layers": refs(model.outputs) if model._single_output or len(model.outputs) > 1
                       else [refs(model.outputs)]},
            "registered_name": "Functional", "build_config": {"input_shape": None},
            "compile_config": None}


def save_keras(model: Model, path) -> None:
    """Write a ``.keras`` archive (config.json, metadata.json, model.weights.h5)."""
    buffer = _io.BytesIO()
    _write_h5(model, buffer)
    meta = {"keras_version": "3.15.1", "date_saved": "tconv"}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps(meta))
        archive.writestr("config.json", json.dumps(model_config(model)))
        archive.writestr("model.weights.h5", buffer.getvalue())


# ------------------------------------------------------------ torch state dicts


def _torch_axes(rank: int) -> tuple[int, ...]:
    # Keras (*k, in, out) / transposed (*k, out, in) -> torch (out, in, *k) / (in, out, *k)
    return (rank + 1, rank) + tuple(range(rank))


def state_dict(model: Model) -> dict[str, np.ndarray]:
    """The PyTorch state dict of :func:`tconv.nn.to_torch`'s model, as NumPy arrays."""
    out: dict[str, np.ndarray] = {}
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if isinstance(layer, L._ConvWrapper):
            out[f"{layer.name}.weight"] = np.ascontiguousarray(
                weights[0].transpose(_torch_axes(weights[0].ndim - 2)))
            if layer.op.use_bias:
                out[f"{layer.name}.bias"] = weights[1]
        elif isinstance(layer, L.BatchNormalization):
            if not (layer.scale and layer.center):
                raise TconvError("layer", layer.name, "BatchNormalization without both scale and "
                                 "center has no PyTorch equivalent")
            for key, w in zip(("weight", "bias", "running_mean", "running_var"), weights):
                out[f"{layer.name}.{key}"] = w
            out[f"{layer.name}.num_batches_tracked"] = np.zeros((), np.int64)
        else:
            raise TconvError("layer", layer.name, f"({layer.keras_class}) has weights tconv cannot map")
    return out


def load_state_dict(model: Model, tensors: dict[str, np.ndarray], where: str = "state dict") -> None:
    """Set ``model``'s weights from a PyTorch state dict (names as :func:`state_dict`)."""
    expected = state_dict(model)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise TconvError("state_dict", where, f"does not fit model {model.name!r}: missing "
                         f"{missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
                         f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    pending = []
    for layer in model.layers:
        if not layer.get_weights():
            continue
        if isinstance(layer, L._ConvWrapper):
            w = np.asarray(tensors[f"{layer.name}.weight"])
            rank = w.ndim - 2
            inverse = np.argsort(_torch_axes(rank)) if rank >= 1 else None
            arrays = [w.transpose(inverse) if inverse is not None else w]
            if layer.op.use_bias:
                arrays.append(np.asarray(tensors[f"{layer.name}.bias"]))
        else:
            arrays = [np.asarray(tensors[f"{layer.name}.{k}"])
                      for k in ("weight", "bias", "running_mean", "running_var")]
        _check_arrays(layer, arrays, where)
        pending.append((layer, arrays))
    for layer, arrays in pending:
        layer.set_weights(arrays)


_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
              "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


def read_safetensors(path) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file (8-byte header length, JSON header, raw data)."""
    path = Path(path)
    data = path.read_bytes()
    try:
        (n,) = struct.unpack("<Q", data[:8])
        if not 2 <= n <= min(len(data) - 8, _MAX_HEADER):
            raise ValueError(f"header length {n} does not fit a file of {len(data)} bytes")
        header = json.loads(data[8: 8 + n].decode("utf-8"))
        body = memoryview(data)[8 + n:]
        tensors = {}
        spans = []
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype = np.dtype(_ST_DTYPES[info["dtype"]])
            shape = tuple(int(s) for s in info["shape"])
            start, stop = (int(v) for v in info["data_offsets"])
            if not 0 <= start <= stop <= len(body) or stop - start != dtype.itemsize * int(np.prod(shape)):
                raise ValueError(f"tensor {name!r}: offsets {start}..{stop} do not fit its shape "
                                 f"{shape} {info['dtype']} or the file")
            spans.append((start, stop))
            tensors[name] = np.frombuffer(body[start:stop], dtype).reshape(shape).copy()
        spans.sort()
        if spans and (spans[0][0] != 0 or spans[-1][1] != len(body)
                      or any(a[1] != b[0] for a, b in zip(spans, spans[1:]))):
            raise ValueError("the tensors do not tile the data section (truncated or padded file)")
        return tensors
    except (ValueError, KeyError, TypeError, struct.error, UnicodeDecodeError, AttributeError) as exc:
        raise TconvError("path", str(path), f"is not a valid safetensors file: {exc}") from None


def write_safetensors(tensors: dict[str, np.ndarray], path) -> None:
    """Write ``tensors`` as a ``.safetensors`` file (little-endian, names sorted)."""
    names = {v: k for k, v in _ST_DTYPES.items()}
    header: dict[str, Any] = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        blob = a.tobytes()
        header[name] = {"dtype": names[a.dtype.str if a.dtype.str in names else a.dtype.str.replace("|", "")],
                        "shape": list(a.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for blob in blobs:
            f.write(blob)


def _read_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise TconvError("torch", None, "is needed to read .pt/.pth files (or use .safetensors)") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses anything but tensors and containers
        raise TconvError("path", str(path), f"is not a loadable weights-only PyTorch file "
                         f"({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise TconvError("path", str(path), "must hold a state dict (a dict of tensors)")
    return {k: v.detach().cpu().numpy() for k, v in obj.items()}


# ---------------------------------------------------------------- dispatch


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".weights.h5", ".safetensors", ".keras", ".pth", ".pt", ".h5"):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def load_weights(model: Model, path) -> None:
    """Load ``path`` into ``model`` by its content (checked against its name)."""
    path = Path(path)
    kind, suffix = _kind(path), _suffix(path)
    if suffix in (".weights.h5", ".h5"):
        _expect(path, kind, "hdf5", "Keras weights (.weights.h5)")
        found = _read_h5_layers(str(path), str(path))
        _assign_h5(model, found, model.weight_keys(), str(path))
    elif suffix == ".safetensors":
        _expect(path, kind, "safetensors", "safetensors")
        load_state_dict(model, read_safetensors(path), str(path))
    elif suffix in (".pt", ".pth"):
        _expect(path, kind, "zip", "a PyTorch file (.pt)")
        load_state_dict(model, _read_torch(path), str(path))
    elif suffix == ".keras":
        _expect(path, kind, "zip", "a .keras archive")
        other = load_keras(path)
        _assign_h5(model, {k: layer.get_weights() for k, layer in zip(other.weight_keys(), other.layers)},
                   model.weight_keys(), str(path))
    else:
        raise TconvError("path", str(path), "must end in .weights.h5, .keras, .safetensors, .pt or .pth")


def save_weights(model: Model, path) -> None:
    """Save ``model``'s weights; the format follows the name (see :func:`load_weights`)."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix == ".weights.h5":
        _write_h5(model, str(path))
    elif suffix == ".safetensors":
        write_safetensors(state_dict(model), path)
    elif suffix in (".pt", ".pth"):
        try:
            import torch
        except ImportError:
            raise TconvError("torch", None, "is needed to write .pt files (or use .safetensors)") from None
        torch.save({k: torch.from_numpy(np.array(v)) for k, v in state_dict(model).items()}, path)
    elif suffix == ".keras":
        save_keras(model, path)
    else:
        raise TconvError("path", str(path), "must end in .weights.h5 (Keras 3 requires it), .keras, "
                         ".safetensors, .pt or .pth")


def load_shipped() -> Model:
    """The U-Net shipped with tconv, trained on :mod:`tconv.nn.data` shapes (4 classes)."""
    return load_keras(SHIPPED_MODEL)
