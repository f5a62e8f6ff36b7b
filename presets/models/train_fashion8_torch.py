"""Train the foreign model preset 17 reuses: task A in PyTorch, saved as safetensors.

Chapter 11's transfer-learning example, model A: Fashion-MNIST without
sandals and shirts (8 classes: T-shirt/top, Trouser, Pullover, Dress, Coat,
Sneaker, Bag, Ankle boot, labelled 0-7 in that order, the order of
``"classes": [0, 1, 2, 3, 4, 7, 8, 9]`` in the preset).  A small SELU
network, 784-64-32-32-8 with LeCun normal initialization, trained with Adam
on every training image of those classes, pixels scaled to [0, 1] and not
standardized (the preset's stage "a" says ``"standardize": false``).  The
output layer gives logits (``nn.CrossEntropyLoss``); the preset reads them
with a softmax output, as PyTorch users do at prediction time.

Saved the way PyTorch users share weights without pickle::

    safetensors.torch.save_file(model.state_dict(), "fashion8-selu-torch.safetensors")

It is not run by Descent or its tests.  It was run once, with PyTorch 2.13.0
(CPU) in a separate environment (see tools/make_foreign_fixtures.py)::

    /tmp/fixture-venv/bin/python presets/models/train_fashion8_torch.py /usr/share/datasets/fashion-mnist
"""
import gzip
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

CLASSES = [0, 1, 2, 3, 4, 7, 8, 9]
OUT = Path(__file__).resolve().parent / "fashion8-selu-torch.safetensors"


def idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(folder: Path, part: str):
    images = idx(next(folder.glob(f"{part}-images-idx3-ubyte*")))
    labels = idx(next(folder.glob(f"{part}-labels-idx1-ubyte*")))
    keep = np.isin(labels, CLASSES)
    remap = {c: i for i, c in enumerate(CLASSES)}
    x = images[keep].reshape(int(keep.sum()), -1).astype(np.float32) / 255.0
    y = np.array([remap[int(c)] for c in labels[keep]], dtype=np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def main(folder: str) -> int:
    torch.manual_seed(42)
    x, y = load(Path(folder), "train")
    x_test, y_test = load(Path(folder), "t10k")
    nn = torch.nn
    model = nn.Sequential(nn.Linear(784, 64), nn.SELU(), nn.Linear(64, 32), nn.SELU(), nn.Linear(32, 32), nn.SELU(),
                          nn.Linear(32, len(CLASSES)))
    for module in model:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, module.in_features ** -0.5)   # LeCun normal, for SELU
            nn.init.zeros_(module.bias)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(8):
        model.train()
        order = torch.randperm(len(x))
        for start in range(0, len(x), 64):
            batch = order[start:start + 64]
            optimizer.zero_grad()
            loss = loss_fn(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = float((model(x_test).argmax(1) == y_test).float().mean())
        print(f"epoch {epoch + 1}: loss {float(loss):.4f}, test accuracy {accuracy:.4f}")
    save_file(model.state_dict(), OUT)
    print(json.dumps({"file": OUT.name, "bytes": OUT.stat().st_size, "test_accuracy": accuracy,
                      "test_images": len(x_test), "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"))
