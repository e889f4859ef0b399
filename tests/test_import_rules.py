"""Imports run downhill only (ARCHITECTURE.md): a test that parses every module of ``kgrec``.

Each package may import only the packages listed for it in ``ALLOWED``; some imports are
forbidden by name (a model may use graph *types* but never the graph build, nor a text encoder).
``KNOWN`` lists today's uphill imports (none since issue 12 moved the runner and the input
assembly into ``kgrec.experiment``); an entry that no longer occurs fails the test too, so the
list only ever shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "kgrec"

# Packages below every layer: anyone may import them.
BASE = {"kgrec.errors", "kgrec._atomic", "kgrec._lazy", "kgrec._numeric", "kgrec._topk", "kgrec.py"}

# package -> the kgrec packages it may import (besides itself and BASE).
ALLOWED: dict[str, set[str]] = {
    "data": set(),
    "graph": {"data"},
    "text": {"data"},
    "train": {"data"},
    "index": {"data"},
    "eval": {"data", "train"},
    "models": {"data", "graph", "text", "train"},
    "experiment": {"data", "graph", "text", "train", "eval", "models", "index"},
    "testing": {"data", "graph", "text", "train", "eval", "models", "index"},
    "serve": {"data", "graph", "text", "train", "models", "index", "experiment"},
    "cli": {"data", "graph", "text", "train", "eval", "models", "index", "experiment", "serve"},
}

# Names a package may not import even from a package it may import.
FORBIDDEN_NAMES: dict[str, dict[str, set[str]]] = {
    "models": {"graph": {"build_graph", "load_or_build", "load_spec", "prune"}},
}

# The only names a package may import from another (any other name, or a bare module import,
# breaks the rule): a model may hold a trainable text tower (the hybrid's fine-tuned part, rebuilt
# when a saved model loads) but never composes texts or runs an encoder over the data.
ONLY_NAMES: dict[str, dict[str, set[str]]] = {
    "models": {"text": {"FinetuneConfig", "TextTower"}},
}

# Today's uphill imports (module, imported package or package.name), each to be removed.
KNOWN: set[tuple[str, str]] = set()


def _package(module: Path, root: Path) -> str | None:
    parts = module.relative_to(root).parts
    return parts[0] if len(parts) > 1 else None


def _imports(path: Path) -> list[tuple[str, set[str]]]:
    """(imported kgrec module, imported names) for every import in the file, lazy ones too."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, set[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, set()) for a in node.names if a.name.startswith("kgrec")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kgrec"):
            found.append((node.module, {a.name for a in node.names}))
    return found


def violations(root: Path = ROOT) -> set[tuple[str, str]]:
    """Every (file, target) pair that breaks the rules, relative to the package's parent."""
    bad: set[tuple[str, str]] = set()
    for path in sorted(root.rglob("*.py")):
        pkg = _package(path, root)
        if pkg is None or pkg not in ALLOWED:
            continue
        rel = str(path.relative_to(root.parent))
        for module, names in _imports(path):
            parts = module.split(".")
            if (
                len(parts) < 2
                or module in BASE
                or parts[1] in {"errors", "_atomic", "_lazy", "_numeric"}
            ):
                continue
            target = parts[1]
            if module == "kgrec" or target == pkg:
                # `from kgrec import cli, data` in the package root, or the package itself.
                if module == "kgrec":
                    for name in names - {"__version__"}:
                        if name != pkg and name not in ALLOWED[pkg] and name in ALLOWED:
                            bad.add((rel, name))
                continue
            if target not in ALLOWED[pkg]:
                bad.add((rel, target))
                continue
            only = ONLY_NAMES.get(pkg, {}).get(target)
            if only is not None:
                # a bare module import, or a private module, reaches past the allowed names
                if not names or len(parts) > 2:
                    bad.add((rel, target))
                bad.update((rel, f"{target}.{name}") for name in sorted(names - only))
                continue
            for name in sorted(names & FORBIDDEN_NAMES.get(pkg, {}).get(target, set())):
                bad.add((rel, f"{target}.{name}"))
    return bad


def test_every_package_has_a_rule() -> None:
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(ALLOWED), f"add a rule to ALLOWED for {sorted(packages - set(ALLOWED))}"


def test_imports_run_downhill() -> None:
    new = violations() - KNOWN
    assert not new, "uphill imports (see ARCHITECTURE.md):\n" + "\n".join(
        f"  {f} imports kgrec.{t}" for f, t in sorted(new)
    )


def test_known_uphill_imports_are_still_there() -> None:
    gone = KNOWN - violations()
    assert not gone, "fixed uphill imports: remove them from KNOWN:\n" + "\n".join(
        f"  {f} -> {t}" for f, t in sorted(gone)
    )


@pytest.mark.parametrize(
    ("package", "line", "target"),
    [
        ("eval", "from kgrec.models import MODELS", "models"),
        ("models/cf", "from kgrec.text import TransformerEncoder", "text.TransformerEncoder"),
        ("models/cf", "from kgrec.graph import load_or_build", "graph.load_or_build"),
        ("models/hybrid", "from kgrec.text import embed_texts", "text.embed_texts"),
        ("models/hybrid", "import kgrec.text", "text"),
        ("models", "from kgrec.eval import evaluate", "eval"),
        ("eval", "from kgrec.experiment import compare", "experiment"),
        ("serve", "from kgrec.eval import Positives", "eval"),
        ("data", "import kgrec.graph", "graph"),
    ],
)
def test_a_forbidden_import_is_caught(tmp_path: Path, package: str, line: str, target: str) -> None:
    """The rule fires on an added forbidden import, including one inside a function."""
    fake = tmp_path / "kgrec"
    mod = fake / package / "_new.py"
    mod.parent.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    mod.write_text(f"def f():\n    {line}\n")
    rel = str(mod.relative_to(tmp_path))
    assert (rel, target) in violations(fake)
