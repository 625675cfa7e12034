"""Train the bundled demo model of intrt: a small float CNN on 8x8 digits.

This script is run ONCE, by the maintainers, and its two outputs are
committed to the repository:

    intrt/demo_data/digits.npz       the data set, split into train/test
    intrt/demo_data/digits_cnn.npz   the trained float32 weights

Nothing in this file is needed at run time: intrt itself never imports
torch or scikit-learn. Running it needs a separate environment, e.g.

    python3 -m venv .venv-train
    .venv-train/bin/pip install torch scikit-learn numpy
    .venv-train/bin/python examples/train_digits.py

Data: scikit-learn's bundled copy of the UCI "Optical Recognition of
Handwritten Digits" test set (1,797 images of 8x8 pixels, values 0..16),
distributed with scikit-learn under the BSD-3-Clause license.

Model (input x_float = x / 16.0, NHWC layout [N, 8, 8, 1]):

    conv1  3x3, 1->16, stride 1, SAME (pad 1 on every side), bias, ReLU
    conv2  3x3, 16->32, stride 2, SAME TFLite-style: 8x8 -> 4x4 with
           pad top/left 0 and bottom/right 1, bias, ReLU
    conv3  3x3 depthwise (32 channels, multiplier 1), stride 1, SAME, bias,
           ReLU6
    conv4  1x1, 32->32, bias, ReLU
    flatten in NHWC order (h, w, c) -> 4*4*32 = 512 features
    fc     512 -> 10, bias (logits)

SAME padding follows TensorFlow/TFLite: out = ceil(in / stride),
total = max((out - 1) * stride + k - in, 0), before = total // 2,
after = total - before.

Weights are saved as float32 in TFLite layouts:

    conv1.weight, conv2.weight, conv4.weight   [O, KH, KW, I]   (OHWI)
    conv3.weight                               [1, KH, KW, C]   (depthwise)
    fc.weight                                  [10, 512]        ([out, in])
    *.bias                                     [O]

At the end the script checks the saved weights with a plain-numpy NHWC
forward pass that reads only the saved .npz files, and compares its logits
with torch's.
"""

import os
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(os.path.dirname(HERE), "intrt", "demo_data")
DATA_PATH = os.path.join(OUT_DIR, "digits.npz")
MODEL_PATH = os.path.join(OUT_DIR, "digits_cnn.npz")

SEED = 20240601
N_TEST = 360
EPOCHS = 60
BATCH = 64
LICENSE = (
    "scikit-learn's copy (sklearn.datasets.load_digits) of the UCI ML "
    "Optical Recognition of Handwritten Digits data set (optdigits, test "
    "part, 1,797 8x8 images, values 0..16); distributed with scikit-learn "
    "under the BSD-3-Clause license."
)


# ---------------------------------------------------------------- data ----
def make_split():
    """Stratified split with a fixed numpy seed: exactly N_TEST test images."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.asarray(digits.images)           # float64, [1797, 8, 8], 0..16
    labels = np.asarray(digits.target)
    assert images.min() >= 0 and images.max() <= 16
    assert np.all(images == np.round(images))
    x = images.astype(np.uint8)[..., None]       # [N, 8, 8, 1]
    y = labels.astype(np.int64)

    rng = np.random.RandomState(SEED)
    classes = np.arange(10)
    counts = np.array([np.sum(y == c) for c in classes])
    # Largest-remainder allocation of N_TEST over the classes.
    exact = counts * N_TEST / len(y)
    n_test = np.floor(exact).astype(int)
    order = np.argsort(-(exact - n_test), kind="stable")
    n_test[order[: N_TEST - n_test.sum()]] += 1

    train_idx, test_idx = [], []
    for c, k in zip(classes, n_test):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        test_idx.append(idx[:k])
        train_idx.append(idx[k:])
    train_idx = np.concatenate(train_idx)
    test_idx = np.concatenate(test_idx)
    rng.shuffle(train_idx)
    rng.shuffle(test_idx)
    return x[train_idx], y[train_idx], x[test_idx], y[test_idx]


# --------------------------------------------------------------- torch ----
def build_and_train(x_train, y_train, x_test, y_test):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    class DigitsCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, 3, stride=1, padding=1)
            self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=0)
            self.conv3 = nn.Conv2d(32, 32, 3, stride=1, padding=1, groups=32)
            self.conv4 = nn.Conv2d(32, 32, 1)
            self.fc = nn.Linear(4 * 4 * 32, 10)

        def forward(self, x_nhwc):
            x = x_nhwc.permute(0, 3, 1, 2)                 # NHWC -> NCHW
            x = F.relu(self.conv1(x))
            # TFLite SAME for 8x8, k3, s2: pad top/left 0, bottom/right 1.
            x = F.pad(x, (0, 1, 0, 1))                     # (left, right, top, bottom)
            x = F.relu(self.conv2(x))
            x = torch.clamp(self.conv3(x), 0.0, 6.0)       # ReLU6
            x = F.relu(self.conv4(x))
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # NHWC flatten
            return self.fc(x)

    model = DigitsCNN()
    xt = torch.from_numpy(x_train.astype(np.float32) / 16.0)
    yt = torch.from_numpy(y_train.astype(np.int64))
    xv = torch.from_numpy(x_test.astype(np.float32) / 16.0)

    opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS)
    gen = torch.Generator().manual_seed(SEED)
    n = xt.shape[0]
    t0 = time.time()
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, BATCH):
            b = perm[i:i + BATCH]
            xb = xt[b]
            # Light augmentation: a third of the images shifted by one pixel.
            pad = F.pad(xb.permute(0, 3, 1, 2), (1, 1, 1, 1))
            m = len(b)
            sh = torch.randint(0, 3, (m, 2), generator=gen)
            sh[torch.rand(m, generator=gen) > 0.33] = 1
            ar = torch.arange(8)
            rows = (sh[:, 0:1] + ar)[:, :, None].expand(m, 8, 8)
            cols = (sh[:, 1:2] + ar)[:, None, :].expand(m, 8, 8)
            xb = pad[torch.arange(m)[:, None, None], 0, rows, cols][..., None]
            loss = F.cross_entropy(model(xb), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        sched.step()
        if (epoch + 1) % 10 == 0:
            model.eval()
            with torch.no_grad():
                acc = (model(xv).argmax(1).numpy() == y_test).mean()
            print(f"epoch {epoch + 1:3d}  loss {total / n:.4f}  "
                  f"test acc {acc:.4f}  ({time.time() - t0:.1f}s)")

    model.eval()
    with torch.no_grad():
        logits = model(xv).numpy()

    def np32(t):
        return np.ascontiguousarray(t.detach().numpy().astype(np.float32))

    weights = {
        # torch OIHW -> TFLite OHWI
        "conv1.weight": np32(model.conv1.weight.permute(0, 2, 3, 1)),
        "conv1.bias": np32(model.conv1.bias),
        "conv2.weight": np32(model.conv2.weight.permute(0, 2, 3, 1)),
        "conv2.bias": np32(model.conv2.bias),
        # torch depthwise [C, 1, KH, KW] -> TFLite [1, KH, KW, C]
        "conv3.weight": np32(model.conv3.weight.permute(1, 2, 3, 0)),
        "conv3.bias": np32(model.conv3.bias),
        "conv4.weight": np32(model.conv4.weight.permute(0, 2, 3, 1)),
        "conv4.bias": np32(model.conv4.bias),
        # [out, in]; 'in' is already in NHWC (h, w, c) order
        "fc.weight": np32(model.fc.weight),
        "fc.bias": np32(model.fc.bias),
    }
    return weights, logits


# ---------------------------------------------- numpy reference forward ----
def same_pads(in_size, k, stride):
    """TensorFlow/TFLite SAME padding: (out, pad_before, pad_after)."""
    out = -(-in_size // stride)
    total = max((out - 1) * stride + k - in_size, 0)
    return out, total // 2, total - total // 2


def conv2d_nhwc(x, w, b, stride):
    """x [N,H,W,I], w [O,KH,KW,I] (OHWI), b [O]; SAME padding."""
    n, h, wd, c_in = x.shape
    c_out, kh, kw, _ = w.shape
    oh, pt, pb = same_pads(h, kh, stride)
    ow, pl, pr = same_pads(wd, kw, stride)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    y = np.zeros((n, oh, ow, c_out), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i:i + stride * (oh - 1) + 1:stride,
                       j:j + stride * (ow - 1) + 1:stride, :]   # [N,OH,OW,I]
            y += patch @ w[:, i, j, :].T                       # [I] x [I,O]
    return y + b


def depthwise_nhwc(x, w, b, stride):
    """x [N,H,W,C], w [1,KH,KW,C] (multiplier 1), b [C]; SAME padding."""
    n, h, wd, c = x.shape
    _, kh, kw, _ = w.shape
    oh, pt, pb = same_pads(h, kh, stride)
    ow, pl, pr = same_pads(wd, kw, stride)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    y = np.zeros((n, oh, ow, c), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i:i + stride * (oh - 1) + 1:stride,
                       j:j + stride * (ow - 1) + 1:stride, :]
            y += patch * w[0, i, j, :]
    return y + b


def numpy_forward(p, x_uint8):
    """Float forward pass of the demo CNN; p = np.load(digits_cnn.npz)."""
    x = x_uint8.astype(np.float64) / 16.0                          # [N,8,8,1]
    x = np.maximum(conv2d_nhwc(x, p["conv1.weight"], p["conv1.bias"], 1), 0)
    x = np.maximum(conv2d_nhwc(x, p["conv2.weight"], p["conv2.bias"], 2), 0)
    x = np.clip(depthwise_nhwc(x, p["conv3.weight"], p["conv3.bias"], 1), 0, 6)
    x = np.maximum(conv2d_nhwc(x, p["conv4.weight"], p["conv4.bias"], 1), 0)
    x = x.reshape(x.shape[0], -1)                                  # NHWC flatten
    return x @ p["fc.weight"].T.astype(np.float64) + p["fc.bias"]


# ----------------------------------------------------------------- main ----
def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    np.random.seed(SEED)

    x_train, y_train, x_test, y_test = make_split()
    print(f"split: {len(y_train)} train / {len(y_test)} test")
    print("test per class:", np.bincount(y_test, minlength=10).tolist())
    np.savez_compressed(
        DATA_PATH,
        x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
        license=np.array([LICENSE]),
    )

    weights, torch_logits = build_and_train(x_train, y_train, x_test, y_test)
    np.savez_compressed(MODEL_PATH, **weights)

    # Verify using only what was written to disk.
    with np.load(DATA_PATH) as d:
        xs, ys = d["x_test"], d["y_test"]
        assert d["x_train"].dtype == np.uint8 and d["x_train"].shape[1:] == (8, 8, 1)
    with np.load(MODEL_PATH) as f:
        p = {k: f[k] for k in f.files}
    assert all(v.dtype == np.float32 for v in p.values())
    np_logits = numpy_forward(p, xs)
    diff = np.abs(np_logits - torch_logits).max()
    torch_acc = (torch_logits.argmax(1) == ys).mean()
    np_acc = (np_logits.argmax(1) == ys).mean()
    print(f"max |numpy - torch| logits: {diff:.2e}")
    print(f"test accuracy: torch {torch_acc:.4f}  numpy {np_acc:.4f}  "
          f"({int(round(np_acc * len(ys)))}/{len(ys)})")
    for path in (DATA_PATH, MODEL_PATH):
        print(f"{os.path.relpath(path, os.path.dirname(HERE))}: "
              f"{os.path.getsize(path)} bytes")
    assert diff < 1e-4, diff
    assert np.array_equal(np_logits.argmax(1), torch_logits.argmax(1))


if __name__ == "__main__":
    main()
