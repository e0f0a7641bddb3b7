"""The backend seam, enforced: an AST scan of every module in minflow/.

1. No module but backend.py imports CuPy (``import cupy``, ``from cupy...``,
   ``cupyx``), so a machine without a GPU imports all of minflow.
2. No computing module imports NumPy: flows, building blocks, the model,
   optimizers and the training loop take their array module from their
   inputs (``xp = get_array_module(x)``), so the same code runs on a GPU.
   NumPy is allowed only in the files of ALLOWED_NUMPY, which use it for host
   constants and index tables (masks, permutations, the checker's tables) or
   for host-only work (data files, plots, the command line, checkpoints).
"""

import ast
import fnmatch
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "minflow"

# path (relative to minflow/, glob) -> why NumPy is fine there
ALLOWED_NUMPY = {
    "backend.py": "the seam itself",
    "flows/masks.py": "masks are small host constants, moved by the layer that uses them",
    "flows/permutation.py": "index tables built on the host, moved with to_device",
    "flows/image_masks.py": "checkerboard and channel masks are small host constants",
    "nn/made.py": "MADE's degrees and connectivity masks are small host constants, moved by MaskedLinear",
    "flows/glow_step.py": "a random channel permutation drawn as a host index table",
    "flows/invertible_linear.py": "QR / LU of the initial matrix on the host, moved with to_device",
    "gradcheck.py": "host index tables and per-entry failure tables",
    "zoo/*.py": "host masks and index tables for model constructors",
    "data/*": "data files are read and generated on the host",
    "viz/*": "plots convert with to_numpy first",
    "commands/*": "the command line works on the host",
    "threads.py": "imported only to load NumPy's BLAS library before threadpoolctl looks for it",
    "checkpoint.py": "files are written from host copies",
}


def modules():
    return sorted(PACKAGE.rglob("*.py"))


def _is_import_call(node):
    """``importlib.import_module("name")`` or ``__import__("name")`` with a literal name."""
    return (
        isinstance(node, ast.Call)
        and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def imported_roots(path):
    """(line, top-level module name) of every import in a file, nested ones included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif _is_import_call(node):
            found.append((node.lineno, node.args[0].value.split(".")[0]))
    return found


def relative(path):
    return path.relative_to(PACKAGE).as_posix()


def test_scan_sees_the_package():
    names = {relative(p) for p in modules()}
    assert {"backend.py", "model.py", "flows/affine_coupling.py", "nn/linear.py"} <= names


def test_only_backend_imports_cupy():
    offenders = [
        f"minflow/{relative(p)}:{line} imports {name}"
        for p in modules()
        if relative(p) != "backend.py"
        for line, name in imported_roots(p)
        if name in ("cupy", "cupyx")
    ]
    assert not offenders, "Only minflow/backend.py may import CuPy:\n" + "\n".join(offenders)


def test_computing_modules_do_not_import_numpy():
    offenders = [
        f"minflow/{relative(p)}:{line} imports numpy"
        for p in modules()
        if not any(fnmatch.fnmatch(relative(p), pattern) for pattern in ALLOWED_NUMPY)
        for line, name in imported_roots(p)
        if name == "numpy"
    ]
    assert not offenders, (
        "These modules import NumPy, but their arrays may live on a GPU. Take the module from the inputs "
        "(xp = get_array_module(x)) or use a minflow.backend helper; if a file only needs NumPy for host "
        "constants, add it with a reason to ALLOWED_NUMPY in this test:\n" + "\n".join(offenders)
    )


def test_scan_catches_nested_and_aliased_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(
        "import numpy as np\n"
        "def f():\n"
        "    from numpy.linalg import slogdet\n"
        "    import importlib; importlib.import_module('cupy')\n"
        "from . import backend\n"
    )
    assert imported_roots(f) == [(1, "numpy"), (3, "numpy"), (4, "importlib"), (4, "cupy")]
