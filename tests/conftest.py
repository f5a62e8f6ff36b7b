"""Shared test setup: Qt runs offscreen, data come from the real files when present,
and Numba compiles into a cache keyed on the kernels' content (tools/numba_cache.py:
after a kernel edit a warm cache could otherwise keep running the old machine code)."""
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("KERAS_BACKEND", "torch")     # the Keras oracles run on torch, not TensorFlow


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(f"tools_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


assert "numba" not in sys.modules, "conftest must choose NUMBA_CACHE_DIR before numba is imported"
_load_tool("numba_cache").configure(ROOT)
