"""Data moves written from TFLite's definitions with explicit index arithmetic (no numpy fancy indexing),
as oracles for intrt's selection-based ops (intrt/ops/select_move.py)."""
import itertools

import numpy as np


def _fill(out_shape, source):
    """out[i] = source(i) for every index tuple i."""
    out = []
    for i in itertools.product(*[range(n) for n in out_shape]):
        out.append(source(i))
    return out


def strided_slice(x, begin, end, strides, begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0,
                  shrink_axis_mask=0, offset=0):
    """TFLite / TensorFlow StridedSlice: per input dim a start, stop and stride with masks and clamping."""
    n = len(begin)
    real = sum(1 for i in range(n) if not (ellipsis_mask >> i) & 1 and not (new_axis_mask >> i) & 1)
    dims = []  # per input dim: (begin, end, stride, begin_masked, end_masked, shrink)
    out_layout = []  # output dims: ("in", input dim) or ("new",)
    for i in range(n):
        if (ellipsis_mask >> i) & 1:
            for _ in range(x.ndim - real):
                out_layout.append(("in", len(dims)))
                dims.append((0, 0, 1, True, True, False))
        elif (new_axis_mask >> i) & 1:
            out_layout.append(("new",))
        else:
            e = begin[i] + end[i] if offset else end[i]
            shrink = bool((shrink_axis_mask >> i) & 1)
            if not shrink:
                out_layout.append(("in", len(dims)))
            dims.append((begin[i], e, strides[i], bool((begin_mask >> i) & 1), bool((end_mask >> i) & 1), shrink))
    while len(dims) < x.ndim:  # trailing dims not named: whole
        out_layout.append(("in", len(dims)))
        dims.append((0, 0, 1, True, True, False))
    ranges = []
    for d, (b, e, s, bm, em, shrink) in enumerate(dims):
        size = x.shape[d]
        if shrink:
            b = b + size if b < 0 else b
            assert 0 <= b < size
            ranges.append([b])
            continue
        lo, hi = (0, size) if s > 0 else (-1, size - 1)
        start = (0 if s > 0 else size - 1) if bm else min(max(b + size if b < 0 else b, lo), hi)
        stop = (size if s > 0 else -1) if em else min(max(e + size if e < 0 else e, lo), hi)
        ranges.append(list(range(start, stop, s)))
    shape = []
    for item in out_layout:
        shape.append(1 if item[0] == "new" else len(ranges[item[1]]))
    values = []
    for idx in itertools.product(*ranges):
        values.append(x[idx])
    return np.array(values, dtype=x.dtype).reshape(shape)


def depth_to_space(x, b):
    n, h, w, c = x.shape
    co = c // (b * b)
    return np.array(_fill((n, h * b, w * b, co), lambda i: x[i[0], i[1] // b, i[2] // b,
                                                            ((i[1] % b) * b + i[2] % b) * co + i[3]]),
                    x.dtype).reshape(n, h * b, w * b, co)


def space_to_depth(x, b):
    n, h, w, c = x.shape
    shape = (n, h // b, w // b, c * b * b)

    def src(i):
        k = i[3] // c
        return x[i[0], i[1] * b + k // b, i[2] * b + k % b, i[3] % c]

    return np.array(_fill(shape, src), x.dtype).reshape(shape)


def mirror_index(p, before, size, offset):
    """TFLite mirror_pad.cc GetInputDimension: input index of padded index p (offset 1 REFLECT, 0 SYMMETRIC)."""
    if p < before:
        original = before + offset - 1
        return original - min(p, original - offset)
    p -= before
    if p >= size:
        p -= size
        original = size - (1 + offset)
        return original - min(p, original)
    return p


def mirror_pad(x, pads, mode):
    offset = 1 if mode == "REFLECT" else 0
    shape = tuple(n + pads[2 * d] + pads[2 * d + 1] for d, n in enumerate(x.shape))
    src = lambda i: x[tuple(mirror_index(p, pads[2 * d], x.shape[d], offset) for d, p in enumerate(i))]
    return np.array(_fill(shape, src), x.dtype).reshape(shape)


def pad_value(x, pads, value):
    shape = tuple(n + pads[2 * d] + pads[2 * d + 1] for d, n in enumerate(x.shape))

    def src(i):
        j = tuple(p - pads[2 * d] for d, p in enumerate(i))
        return x[j] if all(0 <= v < n for v, n in zip(j, x.shape)) else value

    return np.array(_fill(shape, src), x.dtype).reshape(shape)


def gather(x, indices, axis):
    idx = np.asarray(indices)
    shape = x.shape[:axis] + idx.shape + x.shape[axis + 1:]
    k = idx.ndim

    def src(i):
        return x[i[:axis] + (int(idx[i[axis:axis + k]]),) + i[axis + k:]]

    return np.array(_fill(shape, src), x.dtype).reshape(shape)


def split(x, axis, sizes):
    outs, start = [], 0
    for n in sizes:
        shape = x.shape[:axis] + (n,) + x.shape[axis + 1:]
        outs.append(np.array(_fill(shape, lambda i, s=start: x[i[:axis] + (i[axis] + s,) + i[axis + 1:]]),
                             x.dtype).reshape(shape))
        start += n
    return outs


def pack(xs, axis):
    shape = xs[0].shape[:axis] + (len(xs),) + xs[0].shape[axis:]
    return np.array(_fill(shape, lambda i: xs[i[axis]][i[:axis] + i[axis + 1:]]), xs[0].dtype).reshape(shape)
