"""PRELU and LEAKY_RELU (int8) from TFLite's reference prelu.h / leaky_relu.h, one element at a time in Python
integers, with multipliers from activations.cc Prepare (float32 scale arithmetic, QuantizeMultiplier)."""
import numpy as np

from tests.reference.fixedpoint import mbqm, mbqm_single, quantize_multiplier


def _f32(v):
    return float(np.float32(v))


def prelu(x, alpha, p_in, p_alpha, p_out, rounding="double"):
    """x, alpha: int8 arrays (alpha broadcast to x); p_*: (scale, zero point)."""
    f = mbqm if rounding == "double" else mbqm_single
    s_in, s_a, s_out = (np.float32(p[0]) for p in (p_in, p_alpha, p_out))
    m1, e1 = quantize_multiplier(_f32(s_in / s_out))
    m2, e2 = quantize_multiplier(_f32(np.float32(s_in * s_a) / s_out))
    xb, ab = np.broadcast_arrays(x, alpha)
    out = np.empty(xb.shape, np.int8)
    for i in np.ndindex(xb.shape):
        v = int(xb[i]) - p_in[1]
        r = f(v, m1, e1) if v >= 0 else f(v * (int(ab[i]) - p_alpha[1]), m2, e2)
        out[i] = min(max(r + p_out[1], -128), 127)
    return out


def leaky_relu(x, alpha, p_in, p_out, rounding="double"):
    f = mbqm if rounding == "double" else mbqm_single
    s_in, s_out = np.float32(p_in[0]), np.float32(p_out[0])
    m_id, e_id = quantize_multiplier(_f32(s_in / s_out))
    m_a, e_a = quantize_multiplier(_f32(np.float32(s_in * np.float32(alpha)) / s_out))
    out = np.empty(x.shape, np.int8)
    for i in np.ndindex(x.shape):
        v = int(x[i]) - p_in[1]
        if v >= 0:
            r = f(v, m_id, e_id)
        else:
            r = f(v, abs(m_a), e_a)
            r = -r if m_a < 0 else r
        out[i] = min(max(r + p_out[1], -128), 127)
    return out
