"""The Numba cache directory follows the compiled sources' content (tools/numba_cache.py),
so a kernel edit can never be tested against stale machine code."""
import os

from conftest import ROOT, _load_tool

numba_cache = _load_tool("numba_cache")


def _tree(tmp_path, kernel="@njit(cache=True)\ndef f(x):\n    return x + 1\n"):
    (tmp_path / "engine" / "kernels").mkdir(parents=True, exist_ok=True)
    (tmp_path / "engine" / "kernels" / "a.py").write_text("from numba import njit\n" + kernel)
    (tmp_path / "engine" / "trainer.py").write_text("def g():\n    return 2\n")
    return tmp_path


def test_an_edited_kernel_gets_a_different_cache_directory(tmp_path):
    root = _tree(tmp_path)
    before = numba_cache.cache_key(root)
    assert numba_cache.cache_key(root) == before                    # deterministic
    _tree(tmp_path, kernel="@njit(cache=True)\ndef f(x):\n    return x - 1\n")
    assert numba_cache.cache_key(root) != before                    # one character of a kernel
    _tree(tmp_path)
    assert numba_cache.cache_key(root) == before                    # a revert finds its old cache


def test_only_compiled_sources_are_keyed(tmp_path):
    root = _tree(tmp_path)
    before = numba_cache.cache_key(root)
    (root / "engine" / "trainer.py").write_text("def g():\n    return 3\n")
    assert numba_cache.cache_key(root) == before                    # plain Python: no recompilation
    (root / "engine" / "helper.py").write_text("from numba import cfunc\n")
    assert numba_cache.cache_key(root) != before                    # a new compiled file counts


def test_every_kernel_module_of_the_real_engine_is_keyed():
    keyed = {p.relative_to(ROOT).as_posix() for p in numba_cache.compiled_sources(ROOT)}
    kernels = {p.relative_to(ROOT).as_posix() for p in (ROOT / "engine" / "kernels").glob("*.py")
               if "njit" in p.read_text()}
    assert kernels and kernels <= keyed and "engine/catalog/activations.py" in keyed


def test_old_cache_directories_are_pruned(tmp_path):
    root = _tree(tmp_path / "repo")
    base = tmp_path / "cache"
    for i, name in enumerate(["old1", "old2", "old3", "old4"]):
        (base / name).mkdir(parents=True)
        os.utime(base / name, (1000 + i, 1000 + i))
    current = numba_cache.cache_dir(root, base)
    left = sorted(d.name for d in base.iterdir())
    assert current.is_dir() and len(left) == numba_cache.KEEP
    assert left == sorted([current.name, "old4", "old3"])            # the most recently used survive


def test_the_test_run_uses_the_keyed_directory_unless_one_was_chosen(tmp_path, monkeypatch):
    assert os.environ["NUMBA_CACHE_DIR"]                            # conftest set one before numba loaded
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert numba_cache.configure(ROOT) == str(tmp_path / "mine")
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    root = _tree(tmp_path / "repo")
    assert numba_cache.configure(root) == str(root / ".numba_cache" / numba_cache.cache_key(root))
