"""A small functional model API, as Keras': ``Model(inputs, outputs)`` over layer calls.

>>> import numpy as np
>>> from tconv.nn import Input, Conv2D, MaxPooling2D, Model
>>> x = Input((8, 8, 3), name="image")
>>> y = MaxPooling2D(name="pool")(Conv2D(4, 3, padding="same", name="conv")(x))
>>> model = Model(x, y)
>>> [layer.name for layer in model.layers]
['image', 'conv', 'pool']
>>> model(np.zeros((2, 8, 8, 3))).shape
(2, 4, 4, 4)

The input shape given to :func:`~tconv.nn.Input` is a default, not a limit: the model
runs on any spatial size its layers accept (``model(np.zeros((1, 16, 24, 3)))``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from tconv import _args, budget, ops
from tconv.errors import TconvError
from tconv.geometry import Geometry
from tconv.nn.layers import InputLayer, KerasTensor, Layer, Node, check_output_budget, snake_case

__all__ = ["Model", "Step"]

#: a call on a batch of at least as many items as cores runs the whole network on a share
#: of whole items per core, side by side, BLAS on one thread each
#: (:meth:`Model._shares`). Within one layer the cores must meet after every product (a
#: tile's col2im waits for its columns) and OpenBLAS packs the kernel on both; a share per
#: core meets once per call. Tenth session, the course U-Net, in process, ms: batch 8 191-195
#: against 239-244 as one share, batch 4 99 against 122, batch 2 54 against 67-83; right
#: after a product on OpenBLAS's two threads (its worker spinning beside a share) 246
#: against 294. So the shares do not wait for idle CPUs, and whether a call runs in shares
#: depends on its batch and the machine's cores only, never on the load: a call repeated
#: gives the same bits. A share's values equal the whole batch's to float32 rounding, not
#: always bit for bit: OpenBLAS multiplies products of at most 10^6 multiply-adds with
#: another kernel (on SkylakeX), so a tile cut smaller for a smaller batch may round
#: differently (the course U-Net: the same bits). False: every call runs its batch as one
SHARE_BATCH = True


@dataclass(frozen=True)
class Step:
    """One layer call of a model on concrete shapes (what tiling and the planner read)."""

    layer: Layer
    input_shapes: tuple[tuple, ...]
    output_shape: tuple
    geometry: Geometry | None
    inputs: tuple[int, ...]  # indices of the steps whose outputs this step reads


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _map_graph(outputs: list[KerasTensor]) -> tuple[list[Node], list[Layer]]:
    """Execution order of the nodes and Keras' order of the layers.

    Keras 3's ``keras/src/ops/function.py`` ``map_graph``: a depth-first walk from the
    outputs numbers the layers; layers are then listed by decreasing depth (distance
    from the outputs), ties by that number. The order matters: a ``.weights.h5`` file
    names its groups by class and position in this list (``conv2d``, ``conv2d_1``...).
    """
    finished: set[int] = set()
    in_progress: set[int] = set()
    ordered: list[Node] = []
    indices: dict[Layer, int] = {}

    def visit(tensor: KerasTensor) -> None:
        node = tensor.node
        if node is None:
            raise TconvError("outputs", tensor, "is not the output of a layer call")
        if id(node) in finished:
            return
        if id(node) in in_progress:
            raise TconvError("outputs", tensor, "the graph has a cycle")
        indices.setdefault(node.layer, len(indices))
        in_progress.add(id(node))
        for parent in node.inputs:
            visit(parent)
        finished.add(id(node))
        in_progress.discard(id(node))
        ordered.append(node)

    for out in outputs:
        visit(out)
    node_depth: dict[int, int] = {}
    layer_depth: dict[Layer, int] = {}
    for node in reversed(ordered):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(node.layer, 0))
        layer_depth[node.layer] = depth
        node_depth[id(node)] = depth
        for parent in node.inputs:
            node_depth[id(parent.node)] = max(depth + 1, node_depth.get(id(parent.node), 0))
    by_depth: dict[int, list[Layer]] = defaultdict(list)
    for layer, depth in layer_depth.items():
        by_depth[depth].append(layer)
    layers = []
    for depth in sorted(by_depth, reverse=True):
        layers.extend(sorted(by_depth[depth], key=indices.__getitem__))
    return ordered, layers


class Model:
    """A functional model: the graph from ``inputs`` (:func:`~tconv.nn.Input` tensors) to ``outputs``.

    Calling it on NumPy arrays (``(batch, *spatial, channels)``; a list for several
    inputs) runs every layer in order and returns an array (a list for several outputs).
    A batch of at least as many items as cores runs as one share of whole items per core,
    side by side (:data:`SHARE_BATCH`).
    """

    def __init__(self, inputs, outputs, name: str | None = None, **kwargs: Any) -> None:
        self.inputs = _as_list(inputs)
        self.outputs = _as_list(outputs)
        self._single_output = not isinstance(outputs, (list, tuple))
        for t in self.inputs:
            if not isinstance(t, KerasTensor) or not isinstance(t.node.layer, InputLayer):
                raise TconvError("inputs", t, "must be tensors made by tconv.nn.Input")
        self.name = name or "functional"
        self._nodes, self.layers = _map_graph(self.outputs)
        missing = [n.layer.name for n in self._nodes
                   if isinstance(n.layer, InputLayer) and n.output not in self.inputs]
        if missing:
            raise TconvError("inputs", [t.node.layer.name for t in self.inputs],
                             f"do not include the graph's input layer(s) {missing}")
        names = [layer.name for layer in self.layers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise TconvError("layers", duplicates, "must have unique names within a model")
        for layer in self.layers:
            if sum(1 for n in self._nodes if n.layer is layer) > 1:
                raise TconvError("layers", layer.name, "is called more than once; tconv.nn "
                                 "models do not share layers")

    # ----------------------------------------------------------------- access

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """The layer called ``name`` (or at ``index`` in :attr:`layers`)."""
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise TconvError("name", name, f"is not a layer of model {self.name!r}",
                         valid=[layer.name for layer in self.layers])

    @property
    def input_shape(self):
        shapes = [t.shape for t in self.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if self._single_output else shapes

    def weight_keys(self) -> list[str]:
        """Keras' ``.weights.h5`` group of each layer: its class in snake case, numbered
        per class in :attr:`layers` order (``conv2d``, ``conv2d_1``...)."""
        used: dict[str, int] = {}
        keys = []
        for layer in self.layers:
            stem = snake_case(layer.keras_class or type(layer).__name__)
            if stem in used:
                used[stem] += 1
                keys.append(f"{stem}_{used[stem]}")
            else:
                used[stem] = 0
                keys.append(stem)
        return keys

    def get_weights(self) -> list[np.ndarray]:
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights: Iterable) -> None:
        weights = list(weights)
        need = sum(len(layer.get_weights()) for layer in self.layers)
        if len(weights) != need:
            raise TconvError("weights", f"{len(weights)} arrays", f"must be {need} arrays, "
                             f"the weights of {self.name!r} in layer order")
        for layer in self.layers:
            n = len(layer.get_weights())
            layer.set_weights(weights[:n])
            weights = weights[n:]

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    # ------------------------------------------------------------------ shapes

    def trace(self, input_shape=None) -> list[Step]:
        """Every layer call on concrete shapes, in execution order, with its Geometry.

        ``input_shape`` (batch axis included; a list for several inputs) defaults to the
        inputs' own shapes with a batch of 1. A layer that refuses the shape raises its
        :class:`TconvError`, prefixed with the layer's name.
        """
        if input_shape is None:
            shapes = [t.shape for t in self.inputs]
        else:
            shapes = _as_list(input_shape) if len(self.inputs) > 1 else [tuple(input_shape)]
        shapes = [tuple(1 if (i == 0 and s is None) else s for i, s in enumerate(sh)) for sh in shapes]
        where: dict[int, int] = {}
        steps: list[Step] = []
        for node in self._nodes:
            layer = node.layer
            if isinstance(layer, InputLayer):
                shape = shapes[[t.node for t in self.inputs].index(node)]
                ins: tuple = (shape,)
                parents: tuple[int, ...] = ()
                out = shape
                geometry = None
            else:
                parents = tuple(where[id(t)] for t in node.inputs)
                ins = tuple(steps[p].output_shape for p in parents)
                arg = list(ins) if node.nested else ins[0]
                try:
                    out = tuple(layer.compute_output_shape(arg))
                    geometry = None if node.nested else layer.geometry(arg)
                except TconvError as exc:
                    raise exc.with_context(f"layer {layer.name!r} ({layer.keras_class}) on "
                                           f"{list(ins) if node.nested else ins[0]}") from None
            where[id(node.output)] = len(steps)
            steps.append(Step(layer, ins, out, geometry, parents))
        return steps

    def compute_output_shape(self, input_shape):
        steps = self.trace(input_shape)
        last = {id(s.layer): s for s in steps}
        shapes = [last[id(t.node.layer)].output_shape for t in self.outputs]
        return shapes[0] if self._single_output else shapes

    # -------------------------------------------------------------------- call

    def __call__(self, inputs):
        arrays = _as_list(inputs) if len(self.inputs) > 1 else [inputs]
        if len(arrays) != len(self.inputs):
            raise TconvError("inputs", f"{len(arrays)} arrays", f"must be {len(self.inputs)} arrays")
        for i, (t, a) in enumerate(zip(self.inputs, arrays)):
            a = _args.as_array(a, "inputs", context=f"model {self.name!r}")
            if a.ndim != len(t.shape):
                raise TconvError("inputs", a, f"must have {len(t.shape)} axes like {t.shape} "
                                 f"(input {t.node.layer.name!r})")
            if t.shape[-1] is not None and a.shape[-1] != t.shape[-1]:
                raise TconvError("inputs", a, f"must have {t.shape[-1]} channels on the last axis "
                                 f"(input {t.node.layer.name!r})")
            arrays[i] = a.astype(t.node.layer.dtype, copy=False)
        shares = self._shares(arrays)
        results = self._forward(arrays) if shares is None else self._forward_in_shares(arrays, *shares)
        return results[0] if self._single_output else results

    def _shares(self, arrays: list[np.ndarray]) -> tuple[list[slice], slice | None] | None:
        """The batch cut into one share of whole items per core, where the call may run them
        side by side (:data:`SHARE_BATCH`): a batch of at least as many items as
        :func:`tconv.ops.cores`, every layer acting on each item alone
        (:meth:`Layer.acts_per_item`); else None. Returned with the shares: the slice of the
        items past the last one (``batch % cores`` of them), or None. The load is not asked
        (:data:`SHARE_BATCH`)."""
        if not SHARE_BATCH:
            return None
        batch = arrays[0].shape[0]
        if any(a.shape[0] != batch for a in arrays):
            return None
        workers = ops.cores()
        if workers < 2 or batch < workers:
            return None
        if not all(node.layer.acts_per_item(len(node.output.shape)) for node in self._nodes):
            return None
        share = batch // workers
        return ([slice(k * share, (k + 1) * share) for k in range(workers)],
                slice(workers * share, batch) if batch % workers else None)

    def _forward_in_shares(self, arrays: list[np.ndarray], shares: list[slice],
                           rest: slice | None) -> list[np.ndarray]:
        """:meth:`_forward` on each share of the batch, the whole shares side by side (one
        per core, BLAS on one thread each: :func:`tconv.ops.side_by_side`) and the rest
        after them on every core; the shares' outputs joined. The shares side by side divide
        the memory budget among them (:func:`tconv.budget.shared`): together they stay
        within it. A layer that refuses a share (a :class:`TconvError`) is asked again on
        the whole batch, so that its message names the shapes the caller passed and the
        whole budget."""
        parts: list = [None] * len(shares)

        def run(k: int) -> None:
            parts[k] = self._forward([a[shares[k]] for a in arrays])

        try:
            with budget.shared(len(shares)):
                ops.side_by_side(range(len(shares)), run)
            if rest is not None:
                parts.append(self._forward([a[rest] for a in arrays]))
        except TconvError:
            return self._forward(arrays)
        return [np.concatenate([part[j] for part in parts]) for j in range(len(self.outputs))]

    def _forward(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Every layer in order on ``arrays`` (validated, one per input): the outputs."""
        values: dict[int, np.ndarray] = {id(t): a for t, a in zip(self.inputs, arrays)}
        remaining = defaultdict(int)
        for node in self._nodes:
            for t in node.inputs:
                remaining[id(t)] += 1
        keep = {id(t) for t in self.outputs}
        for node in self._nodes:
            if isinstance(node.layer, InputLayer):
                continue
            args = [values[id(t)] for t in node.inputs]
            try:  # the output must fit the memory budget before it is made, as a layer called alone
                if not node.layer.checks_budget:
                    check_output_budget(node.layer, [a.shape for a in args] if node.nested else args[0].shape)
                values[id(node.output)] = node.layer.call(args if node.nested else args[0])
            except TconvError as exc:
                shapes = [a.shape for a in args]
                raise exc.with_context(f"layer {node.layer.name!r} ({node.layer.keras_class}) on "
                                       f"{shapes if node.nested else shapes[0]}") from None
            for t in node.inputs:  # free what no later layer reads
                remaining[id(t)] -= 1
                if remaining[id(t)] == 0 and id(t) not in keep:
                    values.pop(id(t), None)
        return [values[id(t)] for t in self.outputs]

    def predict(self, x, batch_size: int | None = 32, verbose: int = 0) -> np.ndarray:
        """``model(x)`` in batches of ``batch_size`` (single-input, single-output models)."""
        x = np.asarray(x)
        if batch_size is None or len(x) <= batch_size:
            return self(x)
        return np.concatenate([self(x[i: i + batch_size]) for i in range(0, len(x), batch_size)])

    # --------------------------------------------------------------- display

    def summary(self, input_shape=None, print_fn=print) -> str:
        """A table of layers, output shapes, parameter counts and inbound layers (returned and printed)."""
        try:
            steps = self.trace(input_shape)
        except TconvError:
            steps = None
        rows = [("Layer (type)", "Output Shape", "Param #", "Connected to")]
        for i, layer in enumerate(self.layers):
            node = next(n for n in self._nodes if n.layer is layer)
            if steps is not None:
                shape = next(s.output_shape for s in steps if s.layer is layer)
                shape = (None,) + tuple(shape[1:])
            else:
                shape = node.output.shape
            inbound = ", ".join(t.node.layer.name for t in node.inputs) or "-"
            rows.append((f"{layer.name} ({type(layer).__name__})", str(shape),
                         str(layer.count_params()), inbound))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        line = "  ".join("{:<%d}" % w for w in widths)
        text = [f'Model: "{self.name}"', line.format(*rows[0]), "-" * (sum(widths) + 6)]
        text += [line.format(*r) for r in rows[1:]]
        text.append(f"Total params: {self.count_params():,}")
        out = "\n".join(text)
        if print_fn is not None:
            print_fn(out)
        return out

    def __repr__(self) -> str:
        return f"<tconv.nn.Model {self.name!r}: {len(self.layers)} layers, {self.count_params():,} params>"

    def __reduce__(self):
        # pickled as its Keras config + weights: the layers hold activation lambdas that
        # pickle cannot name, and this is what sends a model to dask worker processes
        from tconv.nn import io

        return (_rebuild, (io.model_config(self), self.get_weights()))

    # ----------------------------------------------------------------- weights

    def load_weights(self, path) -> None:
        """Load weights from a Keras ``.weights.h5`` or a PyTorch state dict (``.safetensors``,
        or ``.pt``/``.pth`` read with ``torch.load(weights_only=True)``) of this architecture."""
        from tconv.nn import io

        io.load_weights(self, path)

    def save_weights(self, path) -> None:
        """Save to ``.weights.h5`` (Keras 3's layout), ``.safetensors`` or ``.pt``/``.pth``
        (a PyTorch state dict of :func:`tconv.nn.to_torch`'s model, tensors only)."""
        from tconv.nn import io

        io.save_weights(self, path)

    def save(self, path) -> None:
        """Save a ``.keras`` archive (config.json + model.weights.h5) Keras 3 can load."""
        from tconv.nn import io

        io.save_keras(self, path)

    def get_config(self) -> dict:
        from tconv.nn import io

        return io.model_config(self)


def _rebuild(config: dict, weights: list) -> Model:
    """Unpickle a :class:`Model` (see ``Model.__reduce__``)."""
    from tconv.nn import io

    model, _ = io.model_from_config(config)
    model.set_weights(weights)
    return model
