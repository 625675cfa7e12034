"""Train a small CNN with PyTorch, convert it to intrt twice, and run the .intrt files without PyTorch.

1. train a float CNN (Conv2d + BatchNorm2d + ReLU6, depthwise conv, Hardswish, residual add, AdaptiveAvgPool2d,
   Linear) on the 8x8 digits bundled with intrt (intrt/demo_data/digits.npz), NCHW as PyTorch uses;
2. convert it with intrt's post-training quantization: ``from_torch(model, example, calibration=x_train)``;
3. quantize it with PyTorch (torch.ao FX graph mode, x86 config) and import that int8 model as it is:
   ``from_torch(quantized_model, example)``;
4. save that int8 model as a TorchScript file too and convert the file with ``arithmetic="pytorch"`` (the
   layers then compute as PyTorch's quantized CPU kernels: the same bytes as PyTorch);
5. save the conversions as .intrt and run them in a fresh Python process in which ``import torch`` fails,
   printing the accuracy of each next to PyTorch's.

Run (PyTorch needed for the conversion only):  python examples/torch_to_intrt.py
"""
import copy
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# The part that runs without PyTorch: a child process whose import of torch fails.
RUN_WITHOUT_TORCH = r"""
import sys
sys.modules["torch"] = None  # import torch now raises ImportError
import numpy as np
import intrt
data = np.load(sys.argv[1])
x = data["x_test"].astype(np.float32).transpose(0, 3, 1, 2) / 16.0  # NCHW, as the PyTorch model takes it
for path in sys.argv[2:]:
    model = intrt.load(path)
    accuracy = np.mean(model.run(x).argmax(1) == data["y_test"])
    print(f"  intrt {path.rsplit('/', 1)[-1]:30s} accuracy {accuracy:.4f} (torch importable: {'torch' in sys.modules and sys.modules['torch'] is not None})")
"""


def main():
    import torch
    import torch.nn as nn

    from intrt.convert import from_torch
    from intrt.format import save

    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    data_path = os.path.join(ROOT, "intrt", "demo_data", "digits.npz")
    data = np.load(data_path)
    x_train = torch.tensor(data["x_train"].astype(np.float32).transpose(0, 3, 1, 2) / 16.0)
    y_train = torch.tensor(data["y_train"])
    x_test = torch.tensor(data["x_test"].astype(np.float32).transpose(0, 3, 1, 2) / 16.0)
    y_test = data["y_test"]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU6())
            self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16), nn.Hardswish())
            self.add = nn.quantized.FloatFunctional()  # a residual add that torch.ao can quantize too
            self.down = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU())
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            x = self.stem(x)
            x = self.add.add(x, self.dw(x))
            return self.fc(torch.flatten(self.pool(self.down(x)), 1))

    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(15):
        model.train()
        for idx in torch.randperm(len(x_train)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x_train[idx]), y_train[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        float_acc = np.mean(model(x_test).argmax(1).numpy() == y_test)
    print(f"PyTorch float model                accuracy {float_acc:.4f}")

    out_dir = tempfile.mkdtemp(prefix="intrt_torch_")
    example = x_train[:1]
    # (a) float module + calibration data -> intrt's post-training quantization
    ptq_path = os.path.join(out_dir, "digits_intrt_ptq.intrt")
    save(from_torch(model, example, calibration=x_train[:512]), ptq_path)

    # (b) a model quantized by PyTorch (FX graph mode), imported with its own int8 weights and scales
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    prepared = prepare_fx(copy.deepcopy(model), get_default_qconfig_mapping("x86"), (example,))
    with torch.no_grad():
        for k in range(0, 512, 64):
            prepared(x_train[k:k + 64])
    quantized = convert_fx(prepared)
    with torch.no_grad():
        torch_int8_acc = np.mean(quantized(x_test).argmax(1).numpy() == y_test)
    print(f"PyTorch int8 model (torch.ao, x86) accuracy {torch_int8_acc:.4f}")
    fx_path = os.path.join(out_dir, "digits_torch_ao.intrt")
    save(from_torch(quantized, example), fx_path)

    # (c) the same int8 model as a TorchScript file, converted with PyTorch's arithmetic
    ts_file = os.path.join(out_dir, "digits_torch_ao.pt")
    torch.jit.save(torch.jit.script(quantized), ts_file)
    exact_path = os.path.join(out_dir, "digits_torch_ao_pytorch.intrt")
    save(from_torch(ts_file, example, arithmetic="pytorch"), exact_path)
    import intrt

    with torch.no_grad():
        ref = quantized(x_test).numpy()
    for path in (fx_path, exact_path):
        model_i = intrt.load(path)
        diff = np.abs(model_i.run(x_test.numpy()) - ref)
        print(f"  {os.path.basename(path):30s} outputs differing from PyTorch's int8 outputs: "
              f"{np.mean(diff > 1e-6):.2%}")

    print("Running the .intrt files in a process without PyTorch:")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", RUN_WITHOUT_TORCH, data_path, ptq_path, fx_path, exact_path], check=True,
                   env=env)


if __name__ == "__main__":
    main()
