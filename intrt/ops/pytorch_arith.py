"""PyTorch's quantized CPU arithmetic for the layers, chosen per model (``Graph.metadata["arithmetic"] = "pytorch"``).

A model imported with ``from_torch(..., arithmetic="pytorch")`` records this choice in its metadata (stored in the
file, shown by ``intrt inspect``); loading it replaces these ops by what PyTorch's quantized CPU kernels compute
(docs/arithmetic.md section 7). PyTorch's activations are quint8: ``raw = q + 128`` and ``Z = z + 128`` below;
every rounding is to nearest, ties to even (``nearbyint`` / ``lrintf`` / ``cvtps2dq``).

    acc = sum (q_x - z_x) * q_w   exact int32, without the bias;  S = f32(s_x * s_w[c]);  b the float bias
    CONV_2D, DEPTHWISE_CONV_2D with at most 100 groups  (oneDNN, run by PyTorch's x86 engine on AVX-512 VNNI CPUs)
        c = f32(f32(acc) * S) + b;   y = clamp(rint(f32(f32(c / s_y) + Z_y)) - 128)   zero point added before rounding
    FULLY_CONNECTED, convolutions with more groups  (FBGEMM ReQuantizeOutput with a float bias)
        y = clamp(rint(f32(f32(acc) + f32(b / S)) * f32(S / s_y)) + z_y)
    ADD (quantized::add)       d_i = fma(raw_i, s_i, f32(-(Z_i * s_i)));  y = rint(f32(d_1 + d_2) * f32(1 / s_y)) + Z_y
    MUL (quantized::mul)       y = rint(f32((q_1 - z_1) (q_2 - z_2)) * f32(f32(s_1 s_2) / s_y)) + Z_y
    QUANTIZE float -> int8     y = rint(fma(x, f32(1 / s), Z)) - 128           (quantize_per_tensor)
    QUANTIZE int8 -> int8      dequantize as ADD's d_i, then quantize as above (a float region between
                               dequantize and quantize_per_tensor)
    AVERAGE_POOL_2D, MEAN      y = rint(fma(f32(acc), f32(f32(s_x / s_y) / n), Z_y)) - 128,  acc = sum (q - z_x)
    CONCATENATION              inputs with other parameters than the output: QUANTIZE int8 -> int8 as above

Fused activations clamp with PyTorch's bounds: ``[Z_y, 255]`` for ReLU, ``quantize(6)`` by the QUANTIZE rule for
ReLU6. The float bias ``b`` is the bias tensor's real value ``q_b * s_b``: the importer stores PyTorch's float32
bias exactly (a 24-bit integer times a power of two per channel); a bias quantized with ``s_x * s_w`` gives its
rounded value. Element-wise ops with one input (Hardswish, LeakyReLU, Sigmoid...) are TABLEs of PyTorch's own
outputs (intrt/ops/table.py) in both arithmetics. The other ops keep intrt's arithmetic. Numpy code, no SIMD
kernels: a verification mode for matching PyTorch byte for byte, slower than the default arithmetic.
"""
from __future__ import annotations

import numpy as np

from intrt.ops.add_sub import AddSub
from intrt.ops.base import Op, register_variant
from intrt.ops.common import conv_accumulators, depthwise_accumulators, pool_window_sums
from intrt.ops.concatenation import Concatenation
from intrt.ops.conv2d import Conv2D
from intrt.ops.depthwise_conv2d import DepthwiseConv2D
from intrt.ops.fully_connected import FullyConnected
from intrt.ops.mean import Mean
from intrt.ops.mul import Mul
from intrt.ops.pair_table import PairTableOp, all_pairs
from intrt.ops.pool import AveragePool2D
from intrt.ops.quantize import Quantize

#: ``Graph.metadata["arithmetic"]`` value that selects these classes
ARITHMETIC = "pytorch"
#: PyTorch's x86 engine runs a convolution with oneDNN up to this many groups (``should_use_onednn_quant``)
ONEDNN_MAX_GROUPS = 100
f32 = np.float32


def fma32(a, b, c) -> np.ndarray:
    """float32 ``a * b + c`` with one rounding (float64 holds the product of two float32 exactly)."""
    return (np.asarray(a, np.float64) * np.asarray(b, np.float64) + np.asarray(c, np.float64)).astype(np.float32)


def torch_quantize(x, scale, zero_point) -> np.ndarray:
    """int8 of PyTorch's quantize_per_tensor to quint8: ``rint(fma(x, f32(1/s), z + 128)) - 128``, clamped."""
    v = np.rint(fma32(np.asarray(x, np.float32), f32(1) / f32(scale), f32(int(zero_point) + 128)))
    return (np.clip(np.nan_to_num(v, nan=0.0), 0, 255).astype(np.int64) - 128).astype(np.int8)


def torch_dequantize(q, scale, zero_point) -> np.ndarray:
    """float32 of PyTorch's vectorized dequantize: ``fma(raw, s, f32(-(Z * s)))`` with ``raw = q + 128``."""
    s = f32(scale)
    return fma32(np.asarray(q, np.int64) + 128, s, -(f32(int(zero_point) + 128) * s))


def requant_table(qx, qy) -> np.ndarray:
    """int8[256] by input byte: dequantize with ``qx`` then quantize with ``qy``, PyTorch's way."""
    q = np.arange(256, dtype=np.uint8).view(np.int8)
    return np.ascontiguousarray(torch_quantize(torch_dequantize(q, qx.scale[0], qx.zero_point[0]),
                                               qy.scale[0], qy.zero_point[0]))


def torch_clamp_bounds(activation: str, q) -> tuple:
    """int8 bounds of a fused activation as PyTorch clamps (ReLU at the zero point, ReLU6 at quantize(6))."""
    z = int(q.zero_point[0])
    if activation == "NONE":
        return -128, 127
    if activation == "RELU":
        return max(z, -128), 127
    if activation == "RELU6":
        return max(z, -128), int(torch_quantize(np.float32(6.0), q.scale[0], z))
    if activation == "RELU_N1_TO_1":
        return int(torch_quantize(np.float32(-1.0), q.scale[0], z)), int(torch_quantize(np.float32(1.0), q.scale[0], z))
    raise ValueError(f"activation {activation!r}")


# -- layers with weights --------------------------------------------------------------------------------------
class _TorchLayer:
    """Shared by the three layers: PyTorch's float bias and scales; ``onednn``: the layer is a convolution that
    PyTorch's x86 engine gives to oneDNN (at most 100 groups; on CPUs with AVX-512 VNNI), else FBGEMM's
    ReQuantizeOutput computes it (Linear, convolutions with more groups)."""

    def torch_setup(self, channels: int):
        qx, qw, qy = self.inputs[0].quant, self.inputs[1].quant, self.outputs[0].quant
        s_w = np.broadcast_to(np.asarray(qw.scale, np.float32).reshape(-1), (channels,))
        self.t_act_w = (f32(qx.scale[0]) * s_w).astype(np.float32)           # act_times_w_scale
        self.t_mult = (self.t_act_w / f32(qy.scale[0])).astype(np.float32)   # C_multiplier
        b = self.inputs[2] if len(self.inputs) > 2 else None
        if b is None:
            bias = np.zeros(channels, np.float32)
        else:
            sb = np.broadcast_to(np.asarray(b.quant.scale, np.float64).reshape(-1), (channels,))
            bias = (b.data.astype(np.float64) * sb).astype(np.float32)
        self.t_float_bias = bias
        self.t_bias = (bias / self.t_act_w).astype(np.float32)
        self.t_scale = f32(qy.scale[0])
        self.t_zero = int(qy.zero_point[0])
        self.t_lo, self.t_hi = torch_clamp_bounds(self.attrs["activation"], qy)

    def torch_requantize(self, acc: np.ndarray, onednn: bool) -> np.ndarray:
        if onednn:  # rint(f32(f32(c / s_y) + Z_y)) - 128, c = f32(f32(acc * S) + b): the zero point before rounding
            c = ((acc.astype(np.float32) * self.t_act_w).astype(np.float32) + self.t_float_bias).astype(np.float32)
            v = (c / self.t_scale).astype(np.float32) + np.float32(self.t_zero + 128)
            v = np.rint(v.astype(np.float32)).astype(np.int64) - 128
        else:  # lrintf(f32(f32(acc) + f32(b / S)) * f32(S / s_y)) + z_y
            v = np.rint((acc.astype(np.float32) + self.t_bias).astype(np.float32) * self.t_mult).astype(np.int64)
            v += self.t_zero
        return np.clip(v, self.t_lo, self.t_hi).astype(np.int8)

    def bind(self, inputs, outputs):
        return None


@register_variant(ARITHMETIC, "CONV_2D")
class TorchConv2D(_TorchLayer, Conv2D):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        self.torch_setup(self.weights.shape[0])

    def run(self, inputs, outputs):
        x = np.ascontiguousarray(inputs[0])
        groups = self._geometry(x.shape)[0]
        acc = conv_accumulators(self, x, groups)
        outputs[0][...] = self.torch_requantize(acc, groups <= ONEDNN_MAX_GROUPS)


@register_variant(ARITHMETIC, "DEPTHWISE_CONV_2D")
class TorchDepthwiseConv2D(_TorchLayer, DepthwiseConv2D):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        self.torch_setup(self.weights.shape[3])

    def run(self, inputs, outputs):
        x = np.ascontiguousarray(inputs[0])
        self.output_shapes([x.shape])  # validates the input shape
        acc = depthwise_accumulators(self, x)
        outputs[0][...] = self.torch_requantize(acc, x.shape[3] <= ONEDNN_MAX_GROUPS)  # groups = input channels


@register_variant(ARITHMETIC, "FULLY_CONNECTED")
class TorchFullyConnected(_TorchLayer, FullyConnected):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        self.torch_setup(self.weights.shape[0])

    def run(self, inputs, outputs):
        out_c, depth = self.weights.shape
        batches = self._batches(inputs[0].shape)
        xs = np.ascontiguousarray(inputs[0]).reshape(batches, depth).astype(np.int64) + self.input_offset
        acc = xs @ (self.weights.astype(np.int64) + self.weights_offset).T
        outputs[0].reshape(batches, out_c)[...] = self.torch_requantize(acc, False)


# -- element-wise ops ---------------------------------------------------------------------------------------------
@register_variant(ARITHMETIC, "ADD")
class TorchAdd(PairTableOp, AddSub):
    """quantized::add (and add_relu): dequantize both (vectorized fma), add in float32, quantize."""

    def __init__(self, node, graph, index=-1):
        AddSub.__init__(self, node, graph, index)
        x1, x2, y = self.inputs[0].quant, self.inputs[1].quant, self.outputs[0].quant
        a, b = all_pairs()
        c = (torch_dequantize(a, x1.scale[0], x1.zero_point[0]) + torch_dequantize(b, x2.scale[0], x2.zero_point[0]))
        c = c.astype(np.float32) * (f32(1) / f32(y.scale[0]))
        lo, hi = torch_clamp_bounds(self.attrs["activation"], y)
        v = np.clip(np.rint(c).astype(np.int64) + int(y.zero_point[0]), lo, hi)
        self.table = np.ascontiguousarray(v.astype(np.int8))

    output_shapes = PairTableOp.output_shapes
    run = PairTableOp.run
    bind = PairTableOp.bind
    kernel_choice = Op.kernel_choice  # its table, not AddSub's vector path


@register_variant(ARITHMETIC, "MUL")
class TorchMul(PairTableOp, Mul):
    """quantized::mul: the exact integer product times a float32 multiplier."""

    def __init__(self, node, graph, index=-1):
        Mul.__init__(self, node, graph, index)
        x1, x2, y = self.inputs[0].quant, self.inputs[1].quant, self.outputs[0].quant
        a, b = all_pairs()
        acc = (a - int(x1.zero_point[0])) * (b - int(x2.zero_point[0]))
        mult = f32(f32(f32(x1.scale[0]) * f32(x2.scale[0])) / f32(y.scale[0]))
        v = np.rint(acc.astype(np.float32) * mult).astype(np.int64) + int(y.zero_point[0])
        self.table = np.ascontiguousarray(np.clip(v, *torch_clamp_bounds(self.attrs["activation"], y)).astype(np.int8))

    output_shapes = PairTableOp.output_shapes
    run = PairTableOp.run
    bind = PairTableOp.bind


@register_variant(ARITHMETIC, "QUANTIZE")
class TorchQuantize(Quantize):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        if not self.from_float:
            self.table = requant_table(self.inputs[0].quant, self.outputs[0].quant)

    def run(self, inputs, outputs):
        if self.from_float:
            p = self.params
            if p.scale.size != 1 or self.outputs[0].dtype != "int8":
                return super().run(inputs, outputs)
            outputs[0][...] = torch_quantize(inputs[0], p.scale[0], p.zero_point[0])
            return
        super().run(inputs, outputs)

    def bind(self, inputs, outputs):
        return None if self.from_float else super().bind(inputs, outputs)


@register_variant(ARITHMETIC, "CONCATENATION")
class TorchConcatenation(Concatenation):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        qy = self.outputs[0].quant
        self.tables = [None if rq is None else requant_table(x.quant, qy) for x, rq in zip(self.inputs, self.requant)]

    def run(self, inputs, outputs):
        parts = [x if t is None else t[np.ascontiguousarray(x).view(np.uint8)] for x, t in zip(inputs, self.tables)]
        outputs[0][...] = np.concatenate(parts, axis=self.axis)

    def bind(self, inputs, outputs):
        return None


def _average(acc, count, qx, qy) -> np.ndarray:
    """int8 ``rint(fma(f32(acc), f32(f32(s_x / s_y) / count), Z_y)) - 128`` (count broadcast against acc)."""
    mult = (f32(f32(qx.scale[0]) / f32(qy.scale[0])) / np.asarray(count, np.float32)).astype(np.float32)
    v = np.rint(fma32(acc.astype(np.float32), np.asarray(mult, np.float64), int(qy.zero_point[0]) + 128))
    return (np.clip(v, 0, 255).astype(np.int64) - 128).astype(np.int8)


@register_variant(ARITHMETIC, "AVERAGE_POOL_2D")
class TorchAveragePool2D(AveragePool2D):
    """Quantized avg_pool2d / adaptive_avg_pool2d: the window sum of ``q - z_x`` times ``s_x / s_y / count``, plus
    the output zero point, rounded once (padding excluded from the count)."""

    def run(self, inputs, outputs):
        x, y = np.ascontiguousarray(inputs[0]), outputs[0]
        qx, qy = self.inputs[0].quant, self.outputs[0].quant
        kh, kw = self.filter
        acc, count = pool_window_sums(x.astype(np.int64) - int(qx.zero_point[0]), kh, kw, self.stride, self.padding)
        y[...] = np.clip(_average(acc, count[None, :, :, None], qx, qy), self.act_min, self.act_max)

    def bind(self, inputs, outputs):
        return None


@register_variant(ARITHMETIC, "MEAN")
class TorchMean(Mean):
    def run(self, inputs, outputs):
        x, y = inputs[0], outputs[0]
        if self.copy or x.size == 0:
            return super().run(inputs, outputs)
        acc = (x.astype(np.int64) - self.input_zero_point).sum(axis=tuple(self.axes), keepdims=True)
        n = int(np.prod([x.shape[a] for a in self.axes]))
        y[...] = _average(acc, n, self.inputs[0].quant, self.outputs[0].quant).reshape(y.shape)

    def bind(self, inputs, outputs):
        return None
