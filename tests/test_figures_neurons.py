"""The relevance-neuron figures (pages 03 to 07): per-layer counts, set sizes, "fewest shared", overlaps, charts."""

import math
import re

import numpy as np
import pandas as pd
import pytest

from neuron_ig.report import plots
from neuron_ig.stats.selection import (
    INTERSECTION,
    OOD_SETS,
    chance_intersection,
    class_overlap,
    fewest_shared,
    intersection,
    jaccard,
    jaccard_matrix,
    layer_count_summary,
    layer_count_table,
    ood_sets,
    relevance_neuron_sets,
    set_size_table,
    shared_with_others,
    top_p_percent,
)
from neuron_ig.studies.aggregation import class_means, pairs_used
from neuron_ig.studies.results import DatasetNIG

LAYERS, UNITS = 4, 250  # 1,000 neurons: 0.5% is 5 neurons, 1% is 10
P_VALUES = [0.5, 1.0, 5.0]


def related_scores(names=("in", "a", "b", "odd"), seed=0) -> dict[str, np.ndarray]:
    """Datasets that share a common signal, except ``odd``, which is independent noise."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=(LAYERS, UNITS)) * 3
    return {name: (rng.normal(size=(LAYERS, UNITS)) if name == "odd" else common + rng.normal(size=(LAYERS, UNITS)))
            for name in names}


def test_layer_count_table_counts_every_set_per_layer():
    scores = related_scores()
    counts = layer_count_table(scores, P_VALUES)
    assert list(counts.columns) == ["p", "set", "layer", "neurons"]
    assert set(counts["set"]) == {*scores, INTERSECTION}
    assert len(counts) == len(P_VALUES) * (len(scores) + 1) * LAYERS  # every layer, zeros included
    for p in P_VALUES:
        at_p = counts[counts["p"] == p]
        sets = relevance_neuron_sets(scores, p)
        for name, mask in sets.items():
            per_layer = at_p[at_p["set"] == name].sort_values("layer")["neurons"].to_numpy()
            assert per_layer.sum() == mask.sum() == math.ceil(LAYERS * UNITS * p / 100)
            np.testing.assert_array_equal(per_layer, mask.sum(axis=1))
        common = at_p[at_p["set"] == INTERSECTION].set_index("layer")["neurons"]
        for name in scores:  # the intersection is a subset of each set, layer by layer
            assert (common <= at_p[at_p["set"] == name].set_index("layer")["neurons"]).all()
        assert common.sum() == intersection(sets).sum()


def test_set_size_table_and_chance():
    scores = related_scores()
    sizes = set_size_table(scores, P_VALUES)
    assert list(sizes.index) == P_VALUES
    for p, row in sizes.iterrows():
        sets = relevance_neuron_sets(scores, p)
        assert row["neurons per dataset"] == math.ceil(LAYERS * UNITS * p / 100)
        assert row[INTERSECTION] == intersection(sets).sum() <= row["neurons per dataset"]
        assert row[f"{INTERSECTION} / set"] == pytest.approx(row[INTERSECTION] / row["neurons per dataset"])
        pairs = [jaccard(sets[a], sets[b]) for i, a in enumerate(sets) for b in list(sets)[i + 1:]]
        assert row["mean Jaccard"] == pytest.approx(np.mean(pairs))
    assert chance_intersection(10, 1000, 1) == 10 and chance_intersection(10, 1000, 3) == pytest.approx(1e-3)
    # identical datasets share everything
    same = set_size_table({"x": scores["in"], "y": scores["in"].copy()}, [1.0])
    assert same.loc[1.0, INTERSECTION] == 10 and same.loc[1.0, "mean Jaccard"] == 1.0


def test_jaccard_matrix_is_symmetric_with_unit_diagonal():
    sets = relevance_neuron_sets(related_scores(), 5.0)
    matrix = jaccard_matrix(sets)
    np.testing.assert_allclose(matrix.to_numpy(), matrix.to_numpy().T)
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    assert ((matrix >= 0) & (matrix <= 1)).all().all()
    assert matrix.loc["a", "odd"] < matrix.loc["a", "b"]


def test_fewest_shared_finds_the_unrelated_dataset_and_keeps_two():
    scores = related_scores()
    ranking = shared_with_others(scores, P_VALUES)
    assert ranking.index[0] == "odd" and ranking["mean"].is_monotonic_increasing
    assert list(ranking.columns) == [*P_VALUES, "mean"] and ((ranking >= 0) & (ranking <= 1)).all().all()
    np.testing.assert_allclose(ranking["mean"], ranking[P_VALUES].mean(axis=1))
    assert fewest_shared(scores, P_VALUES, 1) == ["odd"]
    assert len(fewest_shared(scores, P_VALUES, 2)) == 2
    assert len(fewest_shared(scores, P_VALUES, 10)) == len(scores) - 2  # capped: two datasets remain
    assert fewest_shared({k: scores[k] for k in ("in", "a")}, P_VALUES, 2) == []
    assert fewest_shared(scores, P_VALUES, 0) == []
    with pytest.raises(ValueError, match="at least two datasets"):
        shared_with_others({"in": scores["in"]}, P_VALUES)
    with pytest.raises(ValueError, match="n_dropped must be 0 or more"):
        fewest_shared(scores, P_VALUES, -1)
    # dropping the odd one out leaves a larger core
    kept = {k: v for k, v in scores.items() if k != "odd"}
    assert set_size_table(kept, [5.0]).loc[5.0, INTERSECTION] >= set_size_table(scores, [5.0]).loc[5.0, INTERSECTION]


def test_layer_count_summary():
    counts = pd.DataFrame({"p": [1.0] * 6, "set": [INTERSECTION] * 3 + ["x"] * 3, "layer": [0, 1, 2] * 2,
                           "neurons": [1, 3, 0, 4, 0, 0]})
    summary = layer_count_summary(counts)
    assert summary.loc[1.0].to_dict() == {"neurons": 4, "peak layer": 1, "share in peak layer": 0.75}
    empty = layer_count_summary(counts.assign(neurons=0))
    assert empty.loc[1.0, "neurons"] == 0 and empty.loc[1.0, "peak layer"] is None


def test_class_overlap_and_ood_sets():
    positive, negative = related_scores(seed=1), related_scores(seed=2)
    negative["a"] = positive["a"].copy()  # the same neurons in both classes
    del negative["odd"]
    overlap = class_overlap(positive, negative, P_VALUES)
    assert set(overlap.index.get_level_values("dataset")) == {"in", "a", "b"}  # only datasets of both classes
    assert (overlap["shared"] <= overlap[["positive", "negative"]].min(axis=1)).all()
    assert (overlap.loc["a", "Jaccard"] == 1.0).all()
    assert class_overlap(positive, {}, P_VALUES).empty

    sets = ood_sets(positive, "in", 5.0)
    assert list(sets) == list(OOD_SETS)
    in_set = top_p_percent(positive["in"], 5.0)
    for kind in ("intersection", "fusion"):
        ood = sets[f"OOD neurons ({kind})"]
        assert not (ood & in_set).any() and (ood <= sets[f"out-of-domain {kind}"]).all()
        assert (ood | (sets[f"out-of-domain {kind}"] & in_set) == sets[f"out-of-domain {kind}"]).all()
    assert sets["fusion, all datasets"].sum() == sets["out-of-domain fusion"].sum() == 50
    with pytest.raises(ValueError, match="in-domain dataset 'gone' has no scores"):
        ood_sets(positive, "gone", 1.0)
    with pytest.raises(ValueError, match="no out-of-domain dataset"):
        ood_sets({"in": positive["in"]}, "in", 1.0)


def toy_result(attributions, score, dataset="toy"):
    n = len(score)
    return DatasetNIG(attributions=attributions, score=np.array(score, dtype=float), baseline_score=np.full(n, 0.5),
                      relevance=np.array(score, dtype=float), labels=np.ones(n, int), query_ids=np.arange(n).astype(str),
                      doc_ids=np.arange(n).astype(str), layer_names=["l0", "l1"],
                      manifest={"parameters": {"dataset": dataset}})


def test_class_means_leave_out_datasets_without_correct_pairs():
    attributions = np.ones((3, 4, 2, 5))
    results = {"good": toy_result(attributions, [0.9, 0.8, 0.1], "good"), "bad": toy_result(attributions, [0.2, 0.3, 0.1], "bad")}
    means = class_means(results)
    assert list(means) == ["good"] and means["good"].shape == (2, 5)
    np.testing.assert_allclose(means["good"], 4.0)  # 4 segments of 1.0, summed
    used = pairs_used(results)
    assert used.loc["good", "sampled"] == 3 and used.loc["good", "correct"] == 2 and used.loc["bad", "correct"] == 0
    assert used.loc["good", "mean F(x), correct pairs"] == pytest.approx(0.85)
    assert np.isnan(used.loc["bad", "mean F(x), correct pairs"]) and used.loc["bad", "mean F(x')"] == 0.5


def test_layer_count_chart_draws_each_set_in_its_colour():
    scores = related_scores()
    colours = plots.set_colours([*scores, INTERSECTION])
    assert colours[INTERSECTION] == "#000000" and list(colours.values())[:4] == plots.OKABE_ITO[:4]
    shown = {k: colours[k] for k in ("in", "a", INTERSECTION)}
    svg = plots.to_svg(plots.layer_count_chart(layer_count_table(scores, P_VALUES), shown, title="toy"))
    fills = set(re.findall(r'fill="(#[0-9A-Fa-f]{6})"', svg))
    assert set(shown.values()) <= fills and colours["odd"] not in fills  # a set left out is not drawn
    assert "top 0.5%" in svg and "top 5%" in svg
    with pytest.raises(ValueError, match="colour-blind-safe colours"):
        plots.set_colours([f"d{i}" for i in range(8)])


def test_heatmap_writes_the_values():
    matrix = jaccard_matrix(relevance_neuron_sets(related_scores(), 5.0))
    long = matrix.rename_axis("row").reset_index().melt("row", var_name="column", value_name="Jaccard").assign(p=5.0)
    svg = plots.to_svg(plots.heatmap(long, "column", "row", "Jaccard", column="p"))
    assert svg.count(">1.00<") == len(matrix)  # the diagonal
    assert f">{matrix.loc['a', 'odd']:.2f}<" in svg


def test_heatmap_facets_get_their_own_axes_only_when_their_sets_differ():
    scores = related_scores()
    def long_matrix(names, cls):
        matrix = jaccard_matrix(relevance_neuron_sets({k: scores[k] for k in names}, 5.0))
        return matrix.rename_axis("row").reset_index().melt("row", var_name="column", value_name="Jaccard").assign(p=5.0, cls=cls)
    same = pd.concat([long_matrix(["in", "a"], "pos"), long_matrix(["in", "a"], "neg")])
    differ = pd.concat([long_matrix(["in", "a"], "pos"), long_matrix(["in", "a", "b"], "neg")])
    assert "resolve" not in plots.heatmap(same, "column", "row", "Jaccard", row="cls").to_dict()
    assert plots.heatmap(differ, "column", "row", "Jaccard", row="cls").to_dict()["resolve"]["scale"] == {"x": "independent", "y": "independent"}


def test_pairs_chart_splits_sampled_pairs_into_correct_and_misclassified():
    used = pd.DataFrame({"sampled": [8, 8], "correct": [8, 0]}, index=pd.Index(["good", "bad"], name="dataset"))
    chart = plots.pairs_chart(used)
    values = pd.DataFrame(chart.to_dict()["datasets"][next(iter(chart.to_dict()["datasets"]))])
    assert values.groupby("dataset")["count"].sum().to_dict() == {"good": 8, "bad": 8}
    assert values.set_index(["dataset", "pairs"]).loc[("bad", "correct"), "count"] == 0
    svg = plots.to_svg(chart)
    assert plots.OKABE_ITO[4] in svg  # the correct pairs of "good"
    both = pd.concat([used.assign(cls="pos"), used.assign(cls="neg")])
    assert "facet" in plots.pairs_chart(both, column="cls").to_dict()


def test_neuron_set_table_lists_every_set_with_scores_and_ranks():
    from neuron_ig.stats.selection import core_size_table, neuron_set_table

    scores = related_scores()
    table = neuron_set_table(scores, P_VALUES)
    assert list(table.columns[:5]) == ["dataset", "layer", "unit", "score", "rank"]
    largest = max(P_VALUES)
    for dataset, values in scores.items():
        rows = table[table["dataset"] == dataset]
        assert len(rows) == math.ceil(LAYERS * UNITS * largest / 100)
        assert list(rows["rank"]) == list(range(1, len(rows) + 1))
        assert (np.diff(rows["score"].to_numpy()) <= 0).all()
        np.testing.assert_array_equal(rows["score"], values[rows["layer"], rows["unit"]])
        for p in P_VALUES:
            mask = np.zeros((LAYERS, UNITS), dtype=bool)
            top = rows[rows[f"top {p:g}%"]]
            mask[top["layer"], top["unit"]] = True
            np.testing.assert_array_equal(mask, top_p_percent(values, p))
            common = intersection(relevance_neuron_sets(scores, p))
            inside = rows[rows[f"intersection at top {p:g}%"]]
            assert len(inside) == common.sum() and common[inside["layer"], inside["unit"]].all()
    core = {name: scores[name] for name in ("in", "a", "b")}
    sizes = core_size_table(core, scores, P_VALUES)
    assert (sizes["core intersection"] >= sizes["intersection, all datasets"]).all()
    assert list(sizes["core intersection"]) == list(set_size_table(core, P_VALUES)[INTERSECTION])
