"""ONNX Runtime's CPU arithmetic for the layers, chosen per model (``Graph.metadata["arithmetic"] = "onnxruntime"``).

intrt's own layers requantize in fixed point (docs/arithmetic.md sections 2-3). A model imported from ONNX with
``from_onnx(..., arithmetic="onnxruntime")`` records this choice in its metadata (stored in the file, shown by
``intrt inspect``) and these nodes then compute what ONNX Runtime's CPU kernels compute (docs/arithmetic.md
section 6). CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED (QLinearConv, QGemm, QLinearMatMul):

    acc   = bias + sum (q_x - z_x) * (q_w - z_w)                          exact, int64 here
    scale = float32(float32(s_x * s_w[c]) / s_y)                          one float32 scale per output channel
    y     = clamp(rint(float32(acc) * scale) + z_y, act_min, act_max)     float32 product, round half to even

MUL (QLinearMul), MEAN (QLinearGlobalAveragePool) and AVERAGE_POOL_2D (QLinearAveragePool) requantize their
exact integer products / sums the same way; LEAKY_RELU and HARD_SWISH are float32 tables (what
DequantizeLinear -> float op -> QuantizeLinear computes). The other ops keep intrt's arithmetic. These run in
numpy (no SIMD kernels, no Step): a verification mode for matching ONNX Runtime byte for byte, slower than
the default arithmetic.
"""
from __future__ import annotations

import numpy as np

from intrt.ops.base import register_variant
from intrt.ops.common import conv_padding
from intrt.ops.conv2d import Conv2D
from intrt.ops.depthwise_conv2d import DepthwiseConv2D
from intrt.ops.fully_connected import FullyConnected
from intrt.ops.hard_swish import HardSwish
from intrt.ops.leaky_relu import LeakyRelu
from intrt.ops.mean import Mean
from intrt.ops.mul import Mul
from intrt.ops.pool import AveragePool2D

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
    return ort_scales(op.inputs[0].quant.scale[0], op.inputs[1].quant.scale, op.outputs[0].quant.scale[0], out_c)


def _windows(op, x, k_h, k_w):
    """(x - z_x zero-padded: int64 [N, H', W', C], out_h, out_w) for a conv window of k_h x k_w."""
    n, h, w, c = x.shape
    out_h, top, bottom = conv_padding(h, k_h, op.stride[0], op.dilation[0], op.padding, 0)
    out_w, left, right = conv_padding(w, k_w, op.stride[1], op.dilation[1], op.padding, 1)
    xp = np.zeros((n, h + top + bottom, w + left + right, c), np.int64)
    xp[:, top:top + h, left:left + w, :] = x.astype(np.int64) + op.input_offset
    return xp, out_h, out_w


def _tap(op, xp, i, j, out_h, out_w):
    r, s = i * op.dilation[0], j * op.dilation[1]
    return xp[:, r:r + (out_h - 1) * op.stride[0] + 1:op.stride[0], s:s + (out_w - 1) * op.stride[1] + 1:op.stride[1]]


@register_variant(ARITHMETIC, "CONV_2D")
class OrtConv2D(Conv2D):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        self.ort_scale = _scale_of(self, self.weights.shape[0])

    def run(self, inputs, outputs):
        x, y = np.ascontiguousarray(inputs[0]), outputs[0]
        groups = self._geometry(x.shape)[0]
        out_c, k_h, k_w, cg = self.weights.shape
        xp, out_h, out_w = _windows(self, x, k_h, k_w)
        acc = np.zeros((x.shape[0], out_h, out_w, out_c), np.int64)
        og = out_c // groups
        w = self.weights.astype(np.int64)
        for g in range(groups):
            for i in range(k_h):
                for j in range(k_w):
                    tap = _tap(self, xp, i, j, out_h, out_w)[..., g * cg:(g + 1) * cg]
                    acc[..., g * og:(g + 1) * og] += tap @ w[g * og:(g + 1) * og, i, j, :].T
        acc += self.bias.astype(np.int64)
        y[...] = ort_requantize(acc, self.ort_scale, self.output_offset, self.act_min, self.act_max)

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
        _, k_h, k_w, out_c = self.weights.shape
        mult = out_c // x.shape[3]
        xp, out_h, out_w = _windows(self, x, k_h, k_w)
        xp = np.repeat(xp, mult, axis=3)  # output channel c * mult + m reads input channel c
        acc = np.zeros((x.shape[0], out_h, out_w, out_c), np.int64)
        w = self.weights.astype(np.int64)
        for i in range(k_h):
            for j in range(k_w):
                acc += _tap(self, xp, i, j, out_h, out_w) * w[0, i, j, :]
        acc += self.bias.astype(np.int64)
        y[...] = ort_requantize(acc, self.ort_scale, self.output_offset, self.act_min, self.act_max)

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
        y.reshape(batches, out_c)[...] = ort_requantize(acc, self.ort_scale, self.output_offset, self.act_min,
                                                        self.act_max)

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
    """QLinearAveragePool (padding excluded from the count): the exact window sum of ``q - z_x`` times the float32
    scale ``s_x / s_y / count``, rounded half to even."""

    def run(self, inputs, outputs):
        x, y = np.ascontiguousarray(inputs[0]), outputs[0]
        qx, qy = self.inputs[0].quant, self.outputs[0].quant
        n, h, w, c = x.shape
        (kh, kw), (sh, sw) = self.filter, self.stride
        out_h, top, bottom = conv_padding(h, kh, sh, 1, self.padding, 0)
        out_w, left, right = conv_padding(w, kw, sw, 1, self.padding, 1)
        xp = np.zeros((n, h + top + bottom, w + left + right, c), np.int64)
        xp[:, top:top + h, left:left + w] = x.astype(np.int64) - int(qx.zero_point[0])
        inside = np.zeros(xp.shape[1:3], np.float32)
        inside[top:top + h, left:left + w] = 1
        acc = np.zeros((n, out_h, out_w, c), np.int64)
        count = np.zeros((out_h, out_w), np.float32)
        for i in range(kh):
            for j in range(kw):
                acc += xp[:, i:i + (out_h - 1) * sh + 1:sh, j:j + (out_w - 1) * sw + 1:sw]
                count += inside[i:i + (out_h - 1) * sh + 1:sh, j:j + (out_w - 1) * sw + 1:sw]
        scale = (np.float32(np.float32(qx.scale[0]) / np.float32(qy.scale[0])) / count).astype(np.float32)
        y[...] = ort_requantize(acc, scale[None, :, :, None], int(qy.zero_point[0]), self.act_min, self.act_max)

    def bind(self, inputs, outputs):
        return None
