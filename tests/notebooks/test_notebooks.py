"""The notebooks run end to end with small settings: their figures are drawn and their key
numbers (read back from the executed notebooks) hold.

Each notebook has a cell tagged ``parameters``; the test inserts a cell tagged
``injected-parameters`` after it (papermill style), executes the notebook with nbclient in a
kernel of this interpreter, then checks the PNG outputs of the cells tagged ``figure`` and the JSON
output of the cell tagged ``results``. Set ``KGREC_NOTEBOOK_OUT=DIR`` to keep the executed
notebooks (with their outputs) in DIR for a look.
"""

from __future__ import annotations

import base64
import json
import math
import os
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
KERNEL = "kgrec-test-python"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory) -> Iterator[str]:
    """A kernelspec running *this* interpreter, found before any user-level spec.

    ``JUPYTER_PATH`` comes first in Jupyter's search path, so a ``python3`` spec installed
    elsewhere (another Python without kgrec) is never picked; IPython's profile and the kernel
    connection files go to private directories.
    """
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "data" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "kgrec test", "language": "python"})
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(root / "data"))
        mp.setenv("JUPYTER_RUNTIME_DIR", str(root / "runtime"))
        mp.setenv("IPYTHONDIR", str(root / "ipython"))
        mp.setenv("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
        mp.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        yield KERNEL


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def execute(name: str, kernel: str, **params: Any):
    """Execute ``notebooks/<name>`` with ``params`` injected after its parameters cell."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    where = [i for i, c in enumerate(nb.cells) if "parameters" in tags(c)]
    assert len(where) == 1, f"{name} needs exactly one cell tagged 'parameters'"
    source = "# injected by tests/notebooks\n" + "\n".join(
        f"{k} = {v!r}" for k, v in params.items()
    )
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(where[0] + 1, cell)
    t0 = time.perf_counter()
    client = nbclient.NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    seconds = time.perf_counter() - t0
    print(f"{name}: executed in {seconds:.1f} s")
    keep = os.environ.get("KGREC_NOTEBOOK_OUT")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, Path(keep) / name)
    return nb


def figures(nb) -> dict[str, list[tuple[int, int]]]:
    """(width, height) of every PNG output, per cell tagged ``figure`` (keyed by cell id)."""
    out: dict[str, list[tuple[int, int]]] = {}
    for cell in nb.cells:
        if "figure" not in tags(cell):
            continue
        sizes = []
        for o in cell.get("outputs", []):
            data = o.get("data", {}).get("image/png")
            if data:
                png = base64.b64decode(data)
                assert png[:8] == PNG_MAGIC, f"cell {cell.id}: not a PNG"
                sizes.append(struct.unpack(">II", png[16:24]))  # IHDR width, height
        out[cell.id] = sizes
    return out


def results(nb) -> dict[str, Any]:
    """The JSON object displayed by the cell tagged ``results``."""
    cells = [c for c in nb.cells if "results" in tags(c)]
    assert len(cells) == 1, "a notebook needs exactly one cell tagged 'results'"
    for o in cells[0].outputs:
        if "application/json" in o.get("data", {}):
            return o["data"]["application/json"]
    raise AssertionError(f"the results cell displayed no JSON: {cells[0].outputs}")


def assert_figures(nb, expected: set[str]) -> None:
    found = figures(nb)
    assert set(found) == expected
    for cid, sizes in found.items():
        assert len(sizes) == 1, f"cell {cid}: {len(sizes)} PNG outputs"
        w, h = sizes[0]
        assert w >= 500 and h >= 350, f"cell {cid}: a {w}x{h} figure is too small to read"


# ---------------------------------------------------------------------------- committed state


#: every notebook and the fixture of this module that executes it
EXECUTED_BY = {
    "01_build_graph_from_catalog.ipynb": "nb01",
    "02_compare_cf_baselines.ipynb": "nb02",
    "03_cold_start_retrieval.ipynb": "nb03",
}


def test_every_notebook_is_executed_by_a_test():
    names = {p.name for p in NOTEBOOKS.glob("*.ipynb")}
    missing = sorted(names - set(EXECUTED_BY))
    assert not missing, f"add a fixture executing {missing} and its checks to this module"
    assert set(EXECUTED_BY) <= names
    assert all(callable(globals()[fixture]) for fixture in EXECUTED_BY.values())


def test_committed_notebooks_have_no_outputs_and_a_parameters_cell():
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert paths
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), (
            f"{path.name}: outputs are committed; clear them before committing"
        )
        assert sum("parameters" in tags(c) for c in code) == 1, path.name
        assert sum("results" in tags(c) for c in code) == 1, path.name


# ---------------------------------------------------------------------------- 01: graph


@pytest.fixture(scope="module")
def nb01(kernel, ml100k_dir):
    return execute(
        "01_build_graph_from_catalog.ipynb",
        kernel,
        spec_path=str(REPO / "graphs" / "movielens-100k.toml"),
        item_id="1",
        max_users=3,
        max_per_relation=2,
        max_second_hop_items=2,
    )


def test_01_draws_the_degree_plot_and_the_neighbourhood(nb01):
    assert_figures(nb01, {"degrees", "nbhd-draw"})


def test_01_counts_are_the_known_ml100k_counts(nb01):
    r = results(nb01)
    assert (r["users"], r["items"]) == (943, 1682)
    assert r["interactions"] == 100_000 and r["positive_interactions"] == 55_375
    assert r["kg_triples_kept"] == r["kg_triples"] == 91_631
    assert r["linked_items"] == 1598 and r["unlinked_items"] == 84
    assert any("91,631 of 91,631 KG triples kept" in n for n in r["notes"])
    assert r["num_nodes"] == sum(r["nodes"].values())
    assert r["num_edges"] == 2 * sum(r["relations"].values()) == 2 * r["reverse_edges"]


def test_01_neighbourhood_respects_its_parameters(nb01):
    n = results(nb01)["neighbourhood"]
    assert n["item"] == "1" and n["title"] == "Toy Story"
    types = n["node_types"]
    assert types["user"] == 3  # max_users
    assert types["genre"] == 2 and types["decade"] == 1  # Toy Story: 3 genres, capped at 2
    assert 1 < types["item"] <= 1 + 2 * 2 * 2  # + max_second_hop_items per followed entity
    assert n["nodes"] == sum(types.values()) == n["networkx_nodes"]
    assert n["networkx_edges"] == n["subgraph_edges"] >= n["edges"] >= n["nodes"] - 1


# ---------------------------------------------------------------------------- 02: compare


@pytest.fixture(scope="module")
def compare_out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("compare")


@pytest.fixture(scope="module")
def nb02(kernel, ml100k_dir, compare_out):
    return execute(
        "02_compare_cf_baselines.ipynb",
        kernel,
        epochs=2,
        n_boot=200,
        out_dir=str(compare_out),
    )


BASELINES = ["pop", "itemknn", "ease", "mf", "lightgcn"]
MODELS = [*BASELINES, "hybrid"]


def test_02_draws_the_bar_chart_and_the_scatter(nb02):
    assert_figures(nb02, {"bars", "scatter"})


def test_02_split_is_recboles(nb02):
    r = results(nb02)
    assert (r["positives"], r["users"], r["items"]) == (55_375, 942, 1447)
    (split,) = r["splits"]
    assert (split["train"], split["valid"], split["test"]) == (45_063, 5156, 5156)


def test_02_metrics_are_sane_and_pick_the_plotted_models(nb02):
    r = results(nb02)
    assert r["models"] == MODELS and r["primary"] == "NDCG@20" and r["tasks"] == ["test"]
    rows = r["summary"]
    per_user = [s for s in rows if not s["metric"].startswith("Coverage")]
    assert {(s["model"], s["metric"]) for s in per_user} >= {(m, "NDCG@20") for m in MODELS}
    for s in per_user:
        assert 0.0 <= s["ci_low"] <= s["mean"] <= s["ci_high"] <= 1.0, s
        assert s["n"] == 942, s  # every user counts, none dropped
    for s in rows:
        assert 0.0 <= s["mean"] <= 1.0, s
    ndcg = {s["model"]: s["mean"] for s in rows if s["metric"] == "NDCG@20"}
    assert r["best_baseline"] == max(BASELINES, key=ndcg.get)  # the hybrid is never a baseline
    assert r["model_a"] == "hybrid"  # the per-user scatter: the hybrid against the best baseline
    sc = r["scatter"]
    assert sc["users"] == 942 == sc["a_better"] + sc["baseline_better"] + sc["ties"]
    assert math.isclose(sc["mean_baseline"], ndcg[r["best_baseline"]], abs_tol=1e-9)
    assert math.isclose(sc["mean_a"], ndcg[r["model_a"]], abs_tol=1e-9)
    assert math.isclose(sc["mean_diff"], sc["mean_a"] - sc["mean_baseline"], abs_tol=1e-9)


def test_02_numbers_match_the_written_report(nb02, compare_out):
    r = results(nb02)
    assert Path(r["report_json"]) == (compare_out / "report.json").resolve()
    report = json.loads((compare_out / "report.json").read_text())
    assert report["options"]["epochs"] == 2 and report["options"]["n_boot"] == 200
    on_disk = {(s["task"], s["model"], s["metric"]): s["mean"] for s in report["summary"]}
    shown = {(s["task"], s["model"], s["metric"]): s["mean"] for s in r["summary"]}
    assert on_disk.keys() == shown.keys()
    for key, value in shown.items():
        assert math.isclose(value, on_disk[key], abs_tol=1e-12), key
    for name in ("report.md", "report.png", "per_user.csv.gz"):
        assert (compare_out / name).stat().st_size > 0


# ---------------------------------------------------------------------------- 03: cold start


@pytest.fixture(scope="module")
def nb03(kernel, ml100k_dir):
    return execute(
        "03_cold_start_retrieval.ipynb",
        kernel,
        epochs=2,
        dim=32,
        k=5,
        n_examples=2,
        users_k=10,
    )


def test_03_draws_the_warm_vs_cold_plot(nb03):
    assert_figures(nb03, {"warm-cold"})


def test_03_held_out_items_never_reach_training(nb03):
    c = results(nb03)["counts"]
    assert (c["users"], c["items"]) == (942, 1447)
    held = c["cold_valid_items"] + c["cold_test_items"]
    assert held == round(0.2 * c["items"]) and c["warm_items"] == c["items"] - held
    assert c["train_interactions_on_held_out_items"] == 0
    assert c["cold_test_interactions"] > 0


def test_03_every_model_ranks_warm_and_cold_items(nb03):
    r = results(nb03)
    assert r["models"] == ["textknn", "kgknn", "content2cf", "hybrid"]
    for task in ("warm", "cold", "overall"):
        assert set(r["metrics"][task]) == set(r["models"]), task
        for model, m in r["metrics"][task].items():
            assert 0.0 <= m["NDCG@20"] <= 1.0 and 0.0 <= m["Recall@20"] <= 1.0, (task, model)
    # content alone finds held-out items far better than chance (20 of the cold candidates)
    random_recall = r["random_cold_recall@20"]
    assert random_recall == 20 / r["counts"]["cold_test_items"]
    for model in ("textknn", "content2cf"):
        assert r["metrics"]["cold"][model]["Recall@20"] > 1.5 * random_recall, model


def test_03_neighbours_of_held_out_items_are_known_items_with_titles(nb03, ml100k):
    from kgrec.data import TRAIN
    from kgrec.eval import make_split, positives

    r = results(nb03)
    pos = positives(ml100k, min_rating=4)
    split = make_split(pos, "cold-item", seed=r["seed"])  # the notebook's split, rebuilt
    trained = dict(zip(pos.items.ids.astype(str), split.matrix(TRAIN).getnnz(axis=0), strict=True))
    assert r["hybrid"]["item_vectors"] == [1447, 32]
    assert r["hybrid"]["config"]["cold_map"] == "ridge"
    assert len(r["examples"]) == 2
    for ex in r["examples"]:
        assert ex["train_interactions"] == 0 == trained[ex["item"]]
        assert ex["test_users"] >= 1 and ex["title"]
        ids = [h["id"] for h in ex["neighbours"]]
        assert len(ids) == 5 == len(set(ids)) and ex["item"] not in ids
        assert all(trained[i] > 0 for i in ids)  # known items only
        assert 0.0 <= ex["content_only_share_top_k"] <= 1.0
        assert all(h["title"] for h in ex["neighbours"])
        scores = [h["score"] for h in ex["neighbours"]]
        assert scores == sorted(scores, reverse=True)
        assert ex["users_retrieved"] == 10
        assert 0 <= ex["users_hit"] <= min(10, ex["test_users"])
    # the most-tested held-out items come first
    assert r["examples"][0]["test_users"] >= r["examples"][1]["test_users"]


def test_03_new_item_is_embedded_from_text_and_kg(nb03):
    new = results(nb03)["new_item"]
    assert new["title"] == "Galaxy Raiders"
    assert "has_genre -> genre:Sci-Fi" in new["matched"]
    assert len(new["neighbours"]) == 5 and all(h["title"] for h in new["neighbours"])
