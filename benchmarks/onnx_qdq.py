"""Export an intrt int8 graph to an ONNX QDQ model, so ONNX Runtime can run the same model (benchmarks only).

Each activation becomes QuantizeLinear -> DequantizeLinear around float ONNX ops (Conv, Add, ...), with the
graph's own scales and zero points, int8 weights (per channel) and int32 biases: the "QDQ" form that ONNX
Runtime fuses into its integer kernels. 4-D activations are NCHW in the ONNX model (the caller transposes
the NHWC input). Only the ops of the benchmark models are mapped.
"""
from __future__ import annotations

import numpy as np


def export_qdq(model, input_shapes=None):
    """ONNX ModelProto for a loaded ``intrt.Model`` (its graph and the shapes planned for ``input_shapes``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    if input_shapes is None:
        input_shapes = [tuple(i.shape) for i in model.inputs]
    shapes = model._plan(tuple(tuple(s) for s in input_shapes)).shapes
    nodes, inits = [], []
    counter = [0]

    def const(arr, hint):
        counter[0] += 1
        name = f"{hint}_{counter[0]}"
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def dq(name, q, axis=None, dtype=np.int8):
        s = const(np.asarray(q.scale if axis is not None else q.scale[0], np.float32), "s")
        z = const(np.asarray(q.zero_point if axis is not None else q.zero_point[0]).astype(dtype), "z")
        out = name + "_dq"
        nodes.append(helper.make_node("DequantizeLinear", [name, s, z], [out], **({"axis": axis} if axis is not None else {})))
        return out

    def act_out(idx, float_name, activation="NONE"):
        t = g.tensors[idx]
        if activation == "RELU":
            nodes.append(helper.make_node("Relu", [float_name], [float_name + "_r"]))
            float_name += "_r"
        elif activation == "RELU6":
            nodes.append(helper.make_node("Clip", [float_name, const(np.float32(0), "lo"), const(np.float32(6), "hi")],
                                          [float_name + "_c"]))
            float_name += "_c"
        elif activation != "NONE":
            raise NotImplementedError(activation)
        s = const(np.float32(t.quant.scale[0]), "s")
        z = const(np.int8(t.quant.zero_point[0]), "z")
        nodes.append(helper.make_node("QuantizeLinear", [float_name, s, z], [f"t{idx}"]))

    dequantized = {}

    def act_in(idx):  # one DequantizeLinear per activation, shared by its consumers
        if idx not in dequantized:
            dequantized[idx] = dq(f"t{idx}", g.tensors[idx].quant)
        return dequantized[idx]

    def same_pads(in_hw, out_hw, k, stride, dil):
        pads = []
        for i in range(2):
            eff = (k[i] - 1) * dil[i] + 1
            total = max((out_hw[i] - 1) * stride[i] + eff - in_hw[i], 0)
            pads.append((total // 2, total - total // 2))
        return [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]

    def pads_of(node, in_shape, out_shape, k):
        p = node.attrs.get("padding", "VALID")
        stride = node.attrs.get("stride", [1, 1])
        dil = node.attrs.get("dilation", [1, 1])
        if isinstance(p, str):
            return same_pads(in_shape[1:3], out_shape[1:3], k, stride, dil) if p.upper() == "SAME" else [0, 0, 0, 0]
        return [p[0], p[2], p[1], p[3]]

    for node in g.nodes:
        op, ins, out = node.op, node.inputs, node.outputs[0]
        act = node.attrs.get("activation", "NONE")
        fname = f"f{out}"
        if op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            x, w, b = g.tensors[ins[0]], g.tensors[ins[1]], (g.tensors[ins[2]] if len(ins) > 2 and ins[2] >= 0 else None)
            wd = np.asarray(w.data)
            if op == "CONV_2D":
                w_oihw, group = wd.transpose(0, 3, 1, 2), shapes[ins[0]][3] // wd.shape[3]
            else:
                w_oihw, group = wd.transpose(3, 0, 1, 2), shapes[ins[0]][3]
            k = list(w_oihw.shape[2:])
            per_channel = w.quant.scale.size > 1
            wq = w.quant
            w_dq = dq(const(np.ascontiguousarray(w_oihw), "w"), wq, axis=0 if per_channel else None)
            inputs = [act_in(ins[0]), w_dq]
            if b is not None:
                bs = (np.float64(x.quant.scale[0]) * wq.scale.astype(np.float64)).astype(np.float32)
                bs = np.broadcast_to(bs, (w_oihw.shape[0],)).copy()
                bname = const(np.asarray(b.data, np.int32), "b")
                sname, zname = const(bs, "bs"), const(np.zeros(bs.size, np.int32), "bz")
                nodes.append(helper.make_node("DequantizeLinear", [bname, sname, zname], [bname + "_dq"], axis=0))
                inputs.append(bname + "_dq")
            nodes.append(helper.make_node("Conv", inputs, [fname], kernel_shape=k, group=int(group),
                                          strides=node.attrs.get("stride", [1, 1]),
                                          dilations=node.attrs.get("dilation", [1, 1]),
                                          pads=pads_of(node, shapes[ins[0]], shapes[out], k)))
        elif op == "FULLY_CONNECTED":
            x, w = g.tensors[ins[0]], g.tensors[ins[1]]
            wd = np.asarray(w.data)
            per_channel = w.quant.scale.size > 1
            w_dq = dq(const(np.ascontiguousarray(wd.T), "w"), w.quant, axis=1 if per_channel else None)
            nodes.append(helper.make_node("MatMul", [act_in(ins[0]), w_dq], [fname + "_mm"]))
            if len(ins) > 2 and ins[2] >= 0:
                bs = np.broadcast_to((np.float64(x.quant.scale[0]) * w.quant.scale.astype(np.float64)),
                                     (wd.shape[0],)).astype(np.float32)
                bname = const(np.asarray(g.tensors[ins[2]].data, np.int32), "b")
                sname, zname = const(bs, "bs"), const(np.zeros(bs.size, np.int32), "bz")
                nodes.append(helper.make_node("DequantizeLinear", [bname, sname, zname], [bname + "_dq"], axis=0))
                nodes.append(helper.make_node("Add", [fname + "_mm", bname + "_dq"], [fname]))
            else:
                nodes.append(helper.make_node("Identity", [fname + "_mm"], [fname]))
        elif op in ("ADD", "MUL"):
            nodes.append(helper.make_node(op.capitalize(), [act_in(ins[0]), act_in(ins[1])], [fname]))
        elif op == "MEAN":
            axes = [{1: 2, 2: 3, 3: 1}.get(a, a) for a in node.attrs["axes"]] if len(shapes[ins[0]]) == 4 else node.attrs["axes"]
            keep = int(node.attrs.get("keep_dims", 0))
            if sorted(axes) == [2, 3] and len(shapes[ins[0]]) == 4:
                gap = fname + ("" if keep else "_gap")
                nodes.append(helper.make_node("GlobalAveragePool", [act_in(ins[0])], [gap]))
                if not keep:
                    nodes.append(helper.make_node("Flatten", [gap], [fname]))
            else:
                nodes.append(helper.make_node("ReduceMean", [act_in(ins[0]), const(np.array(axes, np.int64), "ax")],
                                              [fname], keepdims=keep))
        elif op == "SOFTMAX":
            nodes.append(helper.make_node("Softmax", [act_in(ins[0])], [fname], axis=-1))
        elif op in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            k = node.attrs["filter"]
            kw = dict(kernel_shape=k, strides=node.attrs.get("stride", [1, 1]),
                      pads=pads_of(node, shapes[ins[0]], shapes[out], k))
            if op == "AVERAGE_POOL_2D":
                kw["count_include_pad"] = 0
            nodes.append(helper.make_node("MaxPool" if op == "MAX_POOL_2D" else "AveragePool", [act_in(ins[0])],
                                          [fname], **kw))
        elif op == "CONCATENATION":
            axis = node.attrs.get("axis", -1) % len(shapes[out])
            if len(shapes[out]) == 4:
                axis = {0: 0, 1: 2, 2: 3, 3: 1}[axis]
            nodes.append(helper.make_node("Concat", [act_in(i) for i in ins], [fname], axis=axis))
        elif op == "PAD":
            p = node.attrs["pads"]
            before, after = p[0::2], p[1::2]
            if len(before) == 4:
                before = [before[0], before[3], before[1], before[2]]
                after = [after[0], after[3], after[1], after[2]]
            nodes.append(helper.make_node("Pad", [act_in(ins[0]), const(np.array(before + after, np.int64), "pads")],
                                          [fname]))
        elif op == "RESHAPE" and len(shapes[ins[0]]) == 4 and shapes[ins[0]][1:3] == (1, 1):
            nodes.append(helper.make_node("Flatten", [act_in(ins[0])], [fname]))
        else:
            raise NotImplementedError(f"onnx_qdq: {op} is not mapped")
        act_out(out, fname, act)

    def vi(idx):
        s = shapes[idx]
        s = [s[0], s[3], s[1], s[2]] if len(s) == 4 else list(s)
        return helper.make_tensor_value_info(f"t{idx}", TensorProto.INT8, s)

    graph = helper.make_graph(nodes, "intrt_export", [vi(i) for i in g.inputs], [vi(o) for o in g.outputs], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m
