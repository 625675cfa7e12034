"""ONNX Runtime's CPU arithmetic for the layers, chosen per model (``Graph.metadata["arithmetic"] = "onnxruntime"``).

intrt's own layers requantize in fixed point (docs/arithmetic.md sections 2-3). A model imported from ONNX with
``from_onnx(..., arithmetic="onnxruntime")`` records this choice in its metadata (stored in the file, shown by
``intrt inspect``) and these nodes then compute what ONNX Runtime's CPU kernels compute (docs/arithmetic.md
section 6). CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED (QLinearConv, QGemm, QLinearMatMul):

    acc   = bias + sum (q_x - z_x) * (q_w - z_w)                          exact, int64 here
    scale = float32(float32(s_x * s_w[c]) / s_y)                          one float32 scale per output channel
    y     = clamp(rint(float32(acc) * scale) + z_y, act_min, act_max)     float32 product, round half to even

MUL (QLinearMul) and MEAN (QLinearGlobalAveragePool) requantize their exact integer products / sums the same
way; AVERAGE_POOL_2D is QLinearAveragePool's float32 window average; LEAKY_RELU and HARD_SWISH are float32
tables (what DequantizeLinear -> float op -> QuantizeLinear computes), LOGISTIC QLinearSigmoid's table of
MLAS's logistic, SOFTMAX QLinearSoftmax, RESIZE_BILINEAR ONNX Runtime's float32 Resize between Dequantize-
and QuantizeLinear; HARD_SWISH and MEAN on float32 tensors are the float stretches a model leaves
unquantized; a layer that was MatMulInteger / ConvInteger -> Cast -> Mul -> QuantizeLinear keeps those two
float32 steps. The other ops keep intrt's arithmetic (data moves, max pools, concatenation and ReLU-type
clamps agree with ONNX Runtime byte for byte anyway). These run in numpy (no SIMD kernels, no Step): a
verification mode for matching ONNX Runtime byte for byte, slower than the default arithmetic.
"""
from __future__ import annotations

import numpy as np

from intrt.ops.base import register_variant
from intrt.ops.common import conv_accumulators, conv_padding, depthwise_accumulators, pool_window_sums
from intrt.ops.conv2d import Conv2D
from intrt.ops.depthwise_conv2d import DepthwiseConv2D
from intrt.ops.fully_connected import FullyConnected
from intrt.ops.hard_swish import HardSwish
from intrt.ops.leaky_relu import LeakyRelu
from intrt.ops.lut import LookupTableOp
from intrt.ops.mean import Mean
from intrt.ops.mul import Mul
from intrt.ops.pool import AveragePool2D
from intrt.ops.resize_bilinear import ResizeBilinear
from intrt.ops.resize_nearest import resize_attrs
from intrt.ops.base import Op
from intrt.ops.float_layers import FloatOp
from intrt.ops.softmax import Softmax  # noqa: F401 (the class OrtSoftmax stands for)
from intrt.quant import activation_range

#: ``Graph.metadata["arithmetic"]`` value that selects these classes
ARITHMETIC = "onnxruntime"


def ort_scales(s_x, s_w, s_y, channels: int) -> np.ndarray:
    """float32 ``(s_x * s_w[c]) / s_y`` per output channel, evaluated in float32 as ONNX Runtime does."""
    s_w = np.broadcast_to(np.asarray(s_w, np.float32).reshape(-1), (channels,))
    return ((np.float32(s_x) * s_w).astype(np.float32) / np.float32(s_y)).astype(np.float32)


def ort_requantize(acc: np.ndarray, scale: np.ndarray, z_out: int, lo: int, hi: int) -> np.ndarray:
    """``clamp(rint(float32(acc) * scale) + z_out, lo, hi)`` as int8 (scale broadcast along the last axis)."""
    v = acc.astype(np.float32) * scale
    return np.clip(np.rint(v).astype(np.int64) + z_out, lo, hi).astype(np.int8)


def _scale_of(op, out_c):
    op.mul_scale = _integer_scale(op, out_c)
    return ort_scales(op.inputs[0].quant.scale[0], op.inputs[1].quant.scale, op.outputs[0].quant.scale[0], out_c)


def _integer_scale(op, out_c):
    """float32 scale per output channel of a layer that was MatMulInteger / ConvInteger -> Cast -> Mul(scale) in
    the ONNX model (metadata ``onnxruntime_integer_scales``, by layer name), else None."""
    import json

    table = (op.graph.metadata or {}).get("onnxruntime_integer_scales")
    if not table:
        return None
    try:
        scales = json.loads(table).get(op.node.name)
    except (ValueError, AttributeError):
        raise op.error("metadata onnxruntime_integer_scales is not a JSON object of scale lists") from None
    if scales is None:
        return None
    scales = np.asarray(scales, np.float32).reshape(-1)
    if scales.size not in (1, out_c) or not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        raise op.error(f"metadata onnxruntime_integer_scales: {scales.size} scales for {out_c} channels, or not "
                       "positive")
    return np.ascontiguousarray(np.broadcast_to(scales, (out_c,)))


def _requantize(op, acc):
    """The layer's int8 output from its exact accumulator, as ONNX Runtime computes it: QLinearConv / QGemm /
    QLinearMatMul's one float32 scale, or (an Integer op, Cast, Mul, QuantizeLinear) the float32 product with
    the Mul's constant, then QuantizeLinear (float32 division by s_y, round half to even)."""
    if op.mul_scale is None:
        return ort_requantize(acc, op.ort_scale, op.output_offset, op.act_min, op.act_max)
    v = (acc.astype(np.float32) * op.mul_scale).astype(np.float32)
    return np.clip(mlas_quantize(v, op.outputs[0].quant), op.act_min, op.act_max).astype(np.int8)


@register_variant(ARITHMETIC, "CONV_2D")
class OrtConv2D(Conv2D):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        self.ort_scale = _scale_of(self, self.weights.shape[0])

    def run(self, inputs, outputs):
        x, y = np.ascontiguousarray(inputs[0]), outputs[0]
        acc = conv_accumulators(self, x, self._geometry(x.shape)[0])
        acc += self.bias.astype(np.int64)
        y[...] = _requantize(self, acc)

    def bind(self, inputs, outputs):
        return None


@register_variant(ARITHMETIC, "DEPTHWISE_CONV_2D")
class OrtDepthwiseConv2D(DepthwiseConv2D):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        self.ort_scale = _scale_of(self, self.weights.shape[3])

    def run(self, inputs, outputs):
        x, y = np.ascontiguousarray(inputs[0]), outputs[0]
        self.output_shapes([x.shape])  # validates the input shape
        acc = depthwise_accumulators(self, x)
        acc += self.bias.astype(np.int64)
        y[...] = _requantize(self, acc)

    def bind(self, inputs, outputs):
        return None


@register_variant(ARITHMETIC, "FULLY_CONNECTED")
class OrtFullyConnected(FullyConnected):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        self.ort_scale = _scale_of(self, self.weights.shape[0])

    def run(self, inputs, outputs):
        x, y = inputs[0], outputs[0]
        out_c, depth = self.weights.shape
        batches = self._batches(x.shape)
        xs = np.ascontiguousarray(x).reshape(batches, depth).astype(np.int64) + self.input_offset
        acc = xs @ (self.weights.astype(np.int64) + self.weights_offset).T + self.bias.astype(np.int64)
        y.reshape(batches, out_c)[...] = _requantize(self, acc)

    def bind(self, inputs, outputs):
        return None


# -- element-wise ops -------------------------------------------------------------------------------------------
def _float_table(fn, qx, qy) -> np.ndarray:
    """int8[256] by input byte: ``clamp(rint(fn(s_x * (q - z_x)) / s_y) + z_y)`` in float32 (ONNX Runtime's
    QLinearLeakyRelu table, and what DequantizeLinear -> float op -> QuantizeLinear computes)."""
    q = np.arange(256, dtype=np.uint8).view(np.int8).astype(np.int32)
    x = np.float32(qx.scale[0]) * (q - int(qx.zero_point[0])).astype(np.float32)
    y = np.asarray(fn(x), np.float32) / np.float32(qy.scale[0])
    return np.ascontiguousarray(np.clip(np.rint(y).astype(np.int64) + int(qy.zero_point[0]), -128, 127).astype(np.int8))


@register_variant(ARITHMETIC, "LEAKY_RELU")
class OrtLeakyRelu(LeakyRelu):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        alpha = np.float32(self.attrs["alpha"])
        self.table = _float_table(lambda x: np.where(x >= 0, x, (x * alpha).astype(np.float32)), *self.int8_io())


@register_variant(ARITHMETIC, "HARD_SWISH")
class OrtHardSwish(HardSwish):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        sixth, half = np.float32(1.0 / 6.0), np.float32(0.5)
        self.table = _float_table(
            lambda x: x * np.clip(x * sixth + half, np.float32(0), np.float32(1)).astype(np.float32), *self.int8_io())


@register_variant(ARITHMETIC, "MUL")
class OrtMul(Mul):
    """QLinearMul: ``clamp(rint(float32((a - z_a) * (b - z_b)) * float32(s_a * s_b / s_y)) + z_y)``."""

    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x1, x2, y = self.inputs[0], self.inputs[1], self.outputs[0]
        self.ort_scale = np.float32(np.float32(np.float32(x1.quant.scale[0]) * np.float32(x2.quant.scale[0]))
                                    / np.float32(y.quant.scale[0]))
        self.zs = (int(x1.quant.zero_point[0]), int(x2.quant.zero_point[0]), int(y.quant.zero_point[0]))

    def run(self, inputs, outputs):
        a = inputs[0].astype(np.int32) - self.zs[0]
        b = inputs[1].astype(np.int32) - self.zs[1]
        outputs[0][...] = ort_requantize(a * b, np.float32(self.ort_scale), self.zs[2], self.act_min, self.act_max)

    def bind(self, inputs, outputs):
        return None


@register_variant(ARITHMETIC, "MEAN")
class OrtMean(Mean):
    """QLinearGlobalAveragePool: ``clamp(rint(float32(sum(q - z_x)) * float32(s_x / (s_y * N))) + z_y)``."""

    def run(self, inputs, outputs):
        x, y = inputs[0], outputs[0]
        if self.copy or x.size == 0:
            return super().run(inputs, outputs)
        qx, qy = self.inputs[0].quant, self.outputs[0].quant
        acc = (x.astype(np.int64) - self.input_zero_point).sum(axis=tuple(self.axes), keepdims=True)
        n = int(np.prod([x.shape[a] for a in self.axes]))
        scale = np.float32(np.float32(qx.scale[0]) / np.float32(np.float32(qy.scale[0]) * np.float32(n)))
        y[...] = ort_requantize(acc, scale, self.output_zero_point, -128, 127).reshape(y.shape)

    def bind(self, inputs, outputs):
        return None


@register_variant(ARITHMETIC, "AVERAGE_POOL_2D")
class OrtAveragePool2D(AveragePool2D):
    """QLinearAveragePool (ONNX Runtime's contrib kernel; padding excluded from the count), in float32:

        x_f = float32(s_x * (q - z_x))                       every input element
        acc = x_f[window 0] + x_f[window 1] + ...            float32, row by row, only the cells inside the image
        y   = clamp(rint(float32(acc / count) / s_y + z_y))  float32, z_y added before rounding

    The exact ties of a 2x2 average (sums ending in .5) make this differ from an integer sum times
    ``s_x / s_y / count``. A window covering the whole image without padding is ONNX Runtime's global
    average instead (QLinearGlobalAveragePool's integer sum, as OrtMean). Input and output parameters may
    differ (the importer gives the pool the stated output; intrt's own AVERAGE_POOL_2D shares them). z_y is
    the one ONNX Runtime uses: uint8 (the int8 one + 128) when it runs the activations as uint8 (a uint8 model,
    or a QDQ model, whose int8 activations it turns into uint8 on x86-64; metadata ``onnxruntime_uint8``),
    since a float32 sum rounds differently near 128 than near 0."""

    def __init__(self, node, graph, index=-1):
        Op.__init__(self, node, graph, index)
        qx, qy = self.int8_io()
        self.filter, self.stride, self.padding = self.attrs["filter"], self.attrs["stride"], self.attrs["padding"]
        self.act_min, self.act_max = activation_range(self.attrs["activation"], qy)
        self.s_x, self.z_x = np.float32(qx.scale[0]), int(qx.zero_point[0])
        self.s_y, self.z_y = np.float32(qy.scale[0]), int(qy.zero_point[0])
        self.z_shift = 128 if (graph.metadata or {}).get("onnxruntime_uint8") == "yes" else 0

    def run(self, inputs, outputs):
        x, y = np.ascontiguousarray(inputs[0]), outputs[0]
        n, h, w, c = x.shape
        if y.size == 0:
            return
        (kh, kw), (sh, sw) = self.filter, self.stride
        out_h, top, bottom = conv_padding(h, kh, sh, 1, self.padding, 0)
        out_w, left, right = conv_padding(w, kw, sw, 1, self.padding, 1)
        if (kh, kw) == (h, w) and top == bottom == left == right == 0:  # ONNX Runtime's global average
            acc = (x.astype(np.int64) - self.z_x).sum(axis=(1, 2), keepdims=True)
            scale = np.float32(self.s_x / np.float32(self.s_y * np.float32(kh * kw)))
            y[...] = ort_requantize(acc, scale, self.z_y, self.act_min, self.act_max)
            return
        xf = self.s_x * (x.astype(np.int32) - self.z_x).astype(np.float32)
        acc, count = pool_window_sums(xf, kh, kw, self.stride, self.padding)
        v = (acc / count.astype(np.float32)[None, :, :, None]).astype(np.float32)
        v = ((v / self.s_y).astype(np.float32) + np.float32(self.z_y + self.z_shift)).astype(np.float32)
        y[...] = np.clip(np.rint(v) - self.z_shift, self.act_min, self.act_max).astype(np.int8)

    def bind(self, inputs, outputs):
        return None


# -- ops with a fixed int8 output in intrt (LOGISTIC, SOFTMAX) -------------------------------------------------
# intrt's int8 LOGISTIC and SOFTMAX write (1/256, -128); ONNX Runtime's QLinearSigmoid and QLinearSoftmax write
# the stated output parameters directly. The importer (intrt/convert/onnx.py) gives these nodes the stated
# output in this arithmetic (no QUANTIZE after them), and these classes accept any output parameters.

#: MLAS's logistic: Eigen's rational approximation, clamp to [-18, 18], p(x) / q(x) + 1/2 clamped to [0, 1]
#: (coefficients as published in onnxruntime/core/mlas/lib/logistic.cpp)
_LOGISTIC_P = (4.37031012579801e-11, 1.15627324459942e-07, 6.08574864600143e-05, 8.51377133304701e-03,
               2.48287947061529e-01)
_LOGISTIC_Q = (6.10247389755681e-13, 5.76102136993427e-09, 6.29106785017040e-06, 1.70198817374094e-03,
               1.16817656904453e-01, 9.93151921023180e-01)


def _fma32(a, b, c):
    """float32 fused multiply-add ``a * b + c`` (one rounding; the float64 product of two float32 is exact)."""
    return (np.asarray(a, np.float64) * np.asarray(b, np.float64) + np.asarray(c, np.float64)).astype(np.float32)


def mlas_logistic(x: np.ndarray) -> np.ndarray:
    """float32 logistic as ONNX Runtime's MLAS computes it on x86-64 (FMA kernel; equal to its SSE kernel on
    all the tables tested)."""
    x = np.clip(np.asarray(x, np.float32), np.float32(-18), np.float32(18))
    x2 = (x * x).astype(np.float32)
    a = [np.float32(v) for v in _LOGISTIC_P]
    b = [np.float32(v) for v in _LOGISTIC_Q]
    p = _fma32(x2, a[0], a[1])
    for c in a[2:]:
        p = _fma32(p, x2, c)
    p = (p * x).astype(np.float32)
    q = _fma32(x2, b[0], b[1])
    for c in b[2:]:
        q = _fma32(q, x2, c)
    return np.clip((p / q).astype(np.float32) + np.float32(0.5), np.float32(0), np.float32(1)).astype(np.float32)


def mlas_quantize(v: np.ndarray, q) -> np.ndarray:
    """MlasQuantizeLinear into int8: float32 ``v / s``, clamp, round half to even, + zero point."""
    z = int(q.zero_point[0])
    v = (np.asarray(v, np.float32) / np.float32(q.scale[0])).astype(np.float32)
    v = np.clip(v, np.float32(-128 - z), np.float32(127 - z))
    return (np.rint(v).astype(np.int64) + z).astype(np.int8)


def ort_logistic_table(qx, qy) -> np.ndarray:
    """int8[256] by input byte: QLinearSigmoid's table (float32 dequantize, MLAS logistic, MlasQuantizeLinear)."""
    q = np.arange(256, dtype=np.uint8).view(np.int8).astype(np.int32)
    x = (np.float32(qx.scale[0]) * (q - int(qx.zero_point[0])).astype(np.float32)).astype(np.float32)
    return np.ascontiguousarray(mlas_quantize(mlas_logistic(x), qy))


@register_variant(ARITHMETIC, "LOGISTIC")
class OrtLogistic(LookupTableOp):
    """QLinearSigmoid: any output parameters (the importer gives LOGISTIC the stated ones)."""

    def __init__(self, node, graph, index=-1):
        LookupTableOp.__init__(self, node, graph, index)
        self.table = ort_logistic_table(*self.int8_io())


@register_variant(ARITHMETIC, "SOFTMAX")
class OrtSoftmax(Op):
    """QLinearSoftmax (ONNX Runtime's contrib kernel, opset 13 form, over the last axis):

        table[k] = float32(exp((k - 255 + shift) * s_x))  in double, k = 0..255,
                   shift = max(0, log(FLT_MAX / D) - 5) / s_x    (D = the row length)
        e_i      = table[x_i - max(row) + 255]
        sum      = e_0 + e_1 + ...                            float32, in order
        y_i      = min(rint(float32(e_i * floor(1 / s_y)) / sum) + z_y, 127)

    ``floor(1 / s_y)``, not ``1 / s_y``: ONNX Runtime's kernel scales by the floored reciprocal of the output
    scale (exact for the usual 1/256)."""

    def __init__(self, node, graph, index=-1):
        Op.__init__(self, node, graph, index)
        qx, qy = self.int8_io()
        x = self.inputs[0]
        if self.attrs["axis"] not in (-1, len(x.shape) - 1):
            raise self.error(f"softmax along axis {self.attrs['axis']}: the int8 kernel works on the last axis")
        self.s_x = np.float32(np.float32(qx.scale[0]) * np.float32(self.attrs["beta"]))
        self.y_mult = np.float32(np.floor(np.float32(1) / np.float32(qy.scale[0])))
        self.z_y = int(qy.zero_point[0])
        self.tables = {}

    def output_shapes(self, input_shapes):
        shape = tuple(input_shapes[0])
        if len(shape) < 1:
            raise self.shape_error(f"input {self.inputs[0].name!r} must have at least 1 dimension, got shape {shape}")
        return [shape]

    def _table(self, depth):
        if depth not in self.tables:
            import math

            fmax = float(np.float32(np.finfo(np.float32).max) / np.float32(depth))
            shift = max(0.0, math.log(fmax) - 5.0) / float(self.s_x)
            k = np.arange(256, dtype=np.float64)
            self.tables[depth] = np.exp((k - 255 + shift) * float(self.s_x)).astype(np.float32)
        return self.tables[depth]

    def run(self, inputs, outputs):
        x, y = inputs[0], outputs[0]
        depth = x.shape[-1]
        if x.size == 0 or depth == 0:
            return
        rows = x.reshape(-1, depth).astype(np.int64)
        e = self._table(depth)[rows - rows.max(axis=1, keepdims=True) + 255]
        total = np.add.accumulate(e, axis=1, dtype=np.float32)[:, -1:]  # sequential float32 sum
        v = ((e * self.y_mult).astype(np.float32) / total).astype(np.float32)
        y.reshape(-1, depth)[...] = np.minimum(np.rint(v).astype(np.int64) + self.z_y, 127).astype(np.int8)

    def bind(self, inputs, outputs):
        return None


# -- ops ONNX Runtime runs in float32 between DequantizeLinear and QuantizeLinear ----------------------------------
def _ort_linear_axis(n_in: int, n_out: int, align: bool, half: bool):
    """ONNX Runtime's bilinear setup along one axis: (index 1, index 2, weight of 1, weight of 2), float32.

    The source coordinate is ``(o + 0.5) / scale - 0.5`` (half_pixel), ``o * (n_in - 1) / (n_out - 1)``
    (align_corners) or ``o / scale`` (asymmetric), scale = float32(n_out / n_in), clamped to [0, n_in - 1];
    the weights are the distances to the two neighbours (1/2 each when they coincide)."""
    o = np.arange(n_out, dtype=np.float32)
    scale = np.float32(np.float32(n_out) / np.float32(n_in))
    if align:
        c = (o * np.float32(n_in - 1)).astype(np.float32) / np.float32(max(n_out - 1, 1)) if n_out > 1 else o * 0
    elif half:
        c = ((o + np.float32(0.5)) / scale).astype(np.float32) - np.float32(0.5)
    else:
        c = (o / scale).astype(np.float32)
    c = np.clip(c.astype(np.float32), np.float32(0), np.float32(n_in - 1))
    i1 = np.minimum(c.astype(np.int64), n_in - 1)
    i2 = np.minimum(i1 + 1, n_in - 1)
    w2 = np.abs(c - i1.astype(np.float32)).astype(np.float32)  # weight of i2 is the distance to i1
    w1 = np.abs(c - i2.astype(np.float32)).astype(np.float32)
    same = i1 == i2
    w1[same], w2[same] = np.float32(0.5), np.float32(0.5)
    return i1, i2, w1, w2


@register_variant(ARITHMETIC, "RESIZE_BILINEAR")
class OrtResizeBilinear(ResizeBilinear):
    """Resize (linear) as ONNX Runtime runs it between DequantizeLinear and QuantizeLinear: float32 inputs
    ``s_x * (q - z_x)``, ``y = w1y*w1x*X11 + w1y*w2x*X12 + w2y*w1x*X21 + w2y*w2x*X22`` summed left to right
    in float32 (its upsample kernel's order), then MlasQuantizeLinear into the output."""

    def run(self, inputs, outputs):
        x, y = np.ascontiguousarray(inputs[0]), outputs[0]
        if y.size == 0:
            return
        _, align, half = resize_attrs(self.attrs, x)
        qx, qy = self.int8_io()
        xf = (np.float32(qx.scale[0]) * (x.astype(np.int32) - int(qx.zero_point[0])).astype(np.float32))
        r1, r2, wy1, wy2 = _ort_linear_axis(x.shape[1], y.shape[1], align, half)
        c1, c2, wx1, wx2 = _ort_linear_axis(x.shape[2], y.shape[2], align, half)
        wy1, wy2 = wy1[None, :, None, None], wy2[None, :, None, None]
        wx1, wx2 = wx1[None, None, :, None], wx2[None, None, :, None]

        def tap(r, c):
            return xf[:, r][:, :, c]

        v = ((wx1 * wy1).astype(np.float32) * tap(r1, c1)).astype(np.float32)
        v = (v + ((wx2 * wy1).astype(np.float32) * tap(r1, c2)).astype(np.float32)).astype(np.float32)
        v = (v + ((wx1 * wy2).astype(np.float32) * tap(r2, c1)).astype(np.float32)).astype(np.float32)
        v = (v + ((wx2 * wy2).astype(np.float32) * tap(r2, c2)).astype(np.float32)).astype(np.float32)
        y[...] = mlas_quantize(v, qy)

    def bind(self, inputs, outputs):
        return None


class _OrtFloatOp(FloatOp):
    """An op on float32 tensors (a float stretch of an ONNX Runtime model, see ``float_stretches`` in
    intrt/convert/onnx.py), computed in float32 as ONNX Runtime's CPU kernels compute it."""

    def _compute(self, xs):
        try:
            return np.asarray(self.ort(np.asarray(xs[0], np.float32)), np.float32)
        except ValueError as e:
            raise self.error(f"{type(e).__name__}: {e}") from None


@register_variant(ARITHMETIC, "HARD_SWISH:float32")
class OrtFloatHardSwish(_OrtFloatOp):
    """HardSwish as ONNX Runtime runs it (its function body): ``x * clamp(x * (1/6) + 1/2, 0, 1)`` in float32."""

    def ort(self, x):
        h = np.clip((x * np.float32(1.0 / 6.0)).astype(np.float32) + np.float32(0.5), np.float32(0), np.float32(1))
        return (x * h.astype(np.float32)).astype(np.float32)


@register_variant(ARITHMETIC, "MEAN:float32")
class OrtFloatMean(_OrtFloatOp):
    """GlobalAveragePool / ReduceMean in float32: the float32 sum over the axes divided by their size. (MLAS may
    add in another order; that moves the float32 result by an ulp or so, which changes the int8 value after it
    only within such a distance of a rounding boundary: on no fixture and no one of 3,200 random outputs.)"""

    def ort(self, x):
        axes = tuple(sorted({int(a) % max(x.ndim, 1) for a in self.attrs["axes"]}))
        n = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        total = x.sum(axis=axes, keepdims=bool(self.attrs["keep_dims"]), dtype=np.float32)
        return (total / np.float32(n)).astype(np.float32)
