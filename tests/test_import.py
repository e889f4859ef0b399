"""`import kgrec` must stay light: no torch-geometric, transformers or faiss at import time."""

import subprocess
import sys

HEAVY = ("torch_geometric", "transformers", "faiss")


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_kgrec_imports_no_heavy_dependency():
    mods = _loaded_after("import kgrec")
    assert not {m for m in mods if m.split(".")[0] in HEAVY}


def test_data_layer_and_cli_import_no_heavy_dependency():
    mods = _loaded_after("import kgrec.data, kgrec.cli; kgrec.cli.cli.list_commands(None)")
    assert not {m for m in mods if m.split(".")[0] in HEAVY}
    assert "kgrec.data" in mods
