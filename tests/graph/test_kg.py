"""KnowledgeGraph: validate, save/load without pickle, transforms copy, converters."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from kgrec.data import Vocabulary
from kgrec.errors import DataError
from kgrec.graph import KnowledgeGraph, to_homogeneous


def test_validate_names_the_bad_edge(tiny_graph):
    g = tiny_graph
    et = ("item", "has_genre", "genre")
    bad = g.edges[et].copy()
    bad[1, 2] = 99
    with pytest.raises(
        DataError, match=r"has_genre.*edge 2 has destination index 99 outside 0\.\.3"
    ):
        KnowledgeGraph(name="x", vocabs=g.vocabs, edges={**g.edges, et: bad}).validate()
    with pytest.raises(DataError, match="node type 'studio' has no vocabulary"):
        KnowledgeGraph(
            name="x", vocabs={k: v for k, v in g.vocabs.items() if k != "studio"}, edges=g.edges
        ).validate()
    with pytest.raises(DataError, match="attribute 'rating' has 1 values for 4 edges"):
        ie = ("user", "interacts", "item")
        KnowledgeGraph(
            name="x", vocabs=g.vocabs, edges=g.edges, edge_attrs={ie: {"rating": np.ones(1)}}
        ).validate()


def test_save_load_round_trip_without_pickle(tiny_graph, tmp_path):
    g = tiny_graph
    g.save(tmp_path / "g")
    h = KnowledgeGraph.load(tmp_path / "g")
    assert g.differences(h, check_meta=True) == []
    # every array loads with allow_pickle=False: no object arrays were written
    for f in ("edges.npz", "interactions.npz"):
        with np.load(tmp_path / "g" / f, allow_pickle=False) as z:
            assert all(z[k].dtype != object for k in z.files)
    doc = json.loads((tmp_path / "g" / "graph.json").read_text())
    assert doc["format"] == "kgrec-graph" and doc["stats"]["num_edges"] == g.num_edges
    with pytest.raises(FileExistsError):
        g.save(tmp_path / "g")


def test_failed_save_leaves_no_directory(tiny_graph, tmp_path, monkeypatch):
    import kgrec.graph._kg_io as kg_io

    def boom(g, tmp):
        (tmp / "edges.npz").write_bytes(b"half")
        raise RuntimeError("killed")

    monkeypatch.setattr(kg_io, "write_graph", boom)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        tiny_graph.save(out / "g")
    assert list(out.iterdir()) == []  # neither the graph nor its temporary directory


def test_load_rejects_a_non_graph_directory(tmp_path):
    with pytest.raises(DataError, match="not a kgrec graph directory"):
        KnowledgeGraph.load(tmp_path)


def test_transforms_copy_and_never_mutate(tiny_graph):
    g = tiny_graph
    snapshot = {k: v.copy() for k, v in g.edges.items()}
    ie = ("user", "interacts", "item")
    r = g.add_reverse()
    assert len(r.edges) == 2 * len(g.edges) and len(g.edges) == len(snapshot)
    f = r.filter_edges(ie, np.array([True, False, True, True]))
    assert f.edges[ie].shape[1] == 3 and f.edges[("item", "rev_interacts", "user")].shape[1] == 3
    assert f.edge_attrs[ie]["rating"].tolist() == [5.0, 5.0, 4.0]
    assert r.edges[ie].shape[1] == 4
    s = g.subgraph({"genre": np.array([True, False, True, True])})
    assert s.vocabs["genre"].ids.tolist() == ["Action", "Drama", "Romance"]
    assert s.edges[("item", "has_genre", "genre")].shape[1] == 4
    nr = r.without_reverse()
    assert set(nr.edges) == set(g.edges)
    for k, v in snapshot.items():
        assert np.array_equal(g.edges[k], v)
    with pytest.raises(ValueError):
        g.edges[ie][0, 0] = 7  # arrays are read-only


def test_homogeneous_offsets_and_sparse_propagation(tiny_graph):
    import torch

    g = tiny_graph
    # put items last on purpose: nothing may assume items come first
    order = [nt for nt in g.node_types if nt != "item"] + ["item"]
    h = to_homogeneous(g, node_types=order)
    assert h.num_nodes == g.num_nodes() and h.num_edges == g.num_edges
    assert h.offset("item") == g.num_nodes() - 5
    assert [r["node_type"] for r in h.table()] == order
    # every global edge maps back to the right typed edge
    for k, et in enumerate(h.relations):
        sel = h.edge_type == k
        ts, ls = h.local_index(h.edge_index[0, sel])
        td, ld = h.local_index(h.edge_index[1, sel])
        assert set(ts.tolist()) <= {order.index(et[0])} and set(td.tolist()) <= {order.index(et[2])}
        assert np.array_equal(np.stack([ls, ld]), g.edges[et])
    a = h.adjacency(symmetric=True, normalize="sym")
    assert a.layout == torch.sparse_csr
    x = torch.ones(h.num_nodes, 2)
    y = a @ x
    assert y.shape == (h.num_nodes, 2) and torch.isfinite(y).all()
    # row-normalised propagation of ones gives ones for every node with an edge
    r = h.adjacency(symmetric=True, normalize="row") @ torch.ones(h.num_nodes, 1)
    deg = np.bincount(np.concatenate(h.edge_index), minlength=h.num_nodes)
    assert torch.allclose(r[torch.from_numpy(deg > 0)], torch.ones(1))
    ei, et = h.to_torch()
    assert ei.dtype == torch.int64 and et.shape == (h.num_edges,)


def test_hetero_data_and_networkx_counts(tiny_graph):
    g = tiny_graph.add_reverse()
    data = g.to_hetero_data()
    st = g.stats()
    assert sum(data[nt].num_nodes for nt in data.node_types) == st.num_nodes
    assert sum(data[et].edge_index.shape[1] for et in data.edge_types) == st.num_edges
    ie = ("user", "interacts", "item")
    assert data[ie].rating.tolist() == [5.0, 4.0, 5.0, 4.0]
    G = g.to_networkx()
    assert G.number_of_nodes() == st.num_nodes and G.number_of_edges() == st.num_edges


def test_networkx_keeps_parallel_edges():
    v = {"user": Vocabulary(["a"], node_type="user"), "item": Vocabulary(["x"], node_type="item")}
    g = KnowledgeGraph(
        name="p", vocabs=v, edges={("user", "interacts", "item"): np.array([[0, 0], [0, 0]])}
    )
    assert g.to_networkx().number_of_edges() == 2 == g.stats().num_edges


def test_npz_has_no_pickled_members(tiny_graph, tmp_path):
    tiny_graph.save(tmp_path / "g")
    with zipfile.ZipFile(tmp_path / "g" / "edges.npz") as z:
        assert all(n.endswith(".npy") for n in z.namelist())


def test_import_kgrec_graph_is_light():
    import subprocess
    import sys

    code = "import sys, kgrec.graph, kgrec.cli.graph; print(' '.join(sorted(sys.modules)))"
    mods = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    heavy = {"torch", "torch_geometric", "networkx", "matplotlib", "transformers", "faiss"}
    assert not {m.split(".")[0] for m in mods} & heavy


def test_load_or_build_reuses_only_a_matching_cache(tiny_spec_path, tmp_path):
    from kgrec.graph import load_or_build, load_spec

    spec = load_spec(tiny_spec_path)
    out = tmp_path / "cache"
    g1 = load_or_build(spec, out=out)
    stamp = (out / "graph.json").stat().st_mtime_ns
    g2 = load_or_build(spec, out=out)
    assert (out / "graph.json").stat().st_mtime_ns == stamp and g1.equals(g2)
    # a changed source file changes the key: the graph is rebuilt from the new data
    ratings = tiny_spec_path.parent / "ratings.csv"
    ratings.write_text(ratings.read_text() + "u3,m4,5,105\n")
    g3 = load_or_build(spec, out=out)
    assert g3.edges[("user", "interacts", "item")].shape[1] == 5


def test_constructor_does_not_freeze_or_share_caller_data(tiny_graph):
    e = np.array([[0, 0], [0, 1]])
    v = {
        "user": Vocabulary(["a"], node_type="user"),
        "item": Vocabulary(["x", "y"], node_type="item"),
    }
    g = KnowledgeGraph(name="p", vocabs=v, edges={("user", "interacts", "item"): e})
    e[0, 0] = 0  # the caller's array stays writable
    assert e.flags.writeable
    h = tiny_graph.add_reverse()
    h.interactions.loc[0, "rating"] = 1.0
    assert tiny_graph.interactions.loc[0, "rating"] == 5.0
    assert g.num_edges == 2
