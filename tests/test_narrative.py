"""The sentences the relevance-neuron pages write: each function on tables made by the real selection functions."""

import re

import numpy as np
import pandas as pd
import pytest

from neuron_ig.report import narrative
from neuron_ig.stats.selection import (
    INTERSECTION,
    core_size_table,
    fewest_shared,
    layer_count_summary,
    layer_count_table,
    set_size_table,
    shared_with_others,
)

LAYERS, UNITS = 4, 250
P_VALUES = [0.5, 1.0]


def scores_of(names, seed=0):
    rng = np.random.default_rng(seed)
    common = rng.normal(size=(LAYERS, UNITS)) * 3
    return {name: common + rng.normal(size=(LAYERS, UNITS)) for name in names}


def used_table(correct: dict[str, int], sampled: int = 32) -> pd.DataFrame:
    """A pairs_used-like table: sampled and correctly classified pairs per dataset."""
    return pd.DataFrame({"sampled": sampled, "correct": pd.Series(correct)}).rename_axis("dataset")


def test_words():
    assert narrative.plural(1, "pair") == "1 pair" and narrative.plural(0, "pair") == "0 pairs"
    assert narrative.plural(2, "query", "queries") == "2 queries"
    assert narrative.code_list(["a", "b/c"]) == "`a`, `b/c`"
    assert narrative.percents([0.1, 1.0, 5]) == "0.1%, 1%, 5%"
    assert narrative.class_name(1) == "positive" and narrative.class_name(0) == "negative"
    for label in (2, -1, True, "1"):
        with pytest.raises(ValueError, match=r"label must be 1 \(positive class.*or 0.*got"):
            narrative.class_name(label)


def test_class_means_text_names_every_dataset_the_left_out_and_the_noisy():
    used = used_table({"in": 20, "a": 3, "b": 0})
    scores = scores_of(["in", "a"])
    text = narrative.class_means_text(used, scores, label=1)
    assert text.startswith("Each dataset's neuron scores are the mean NIG over the relevant pairs that the model gives "
                           "P(relevant) > 0.5, the first ones of the seeded draw (NIG is computed for those only): 20 of 32 drawn for "
                           "`in`, 3 of 32 drawn for `a`, 0 of 32 drawn for `b`.")
    assert "none of the sampled relevant pairs of `b` correctly: that dataset has no class mean and is left out" in text
    assert "the intersection is over 2 datasets only" in text
    assert "The mean of `a` rests on 3 pairs: its set is noisy, read it with care." in text
    assert "single dataset" not in text

    text = narrative.class_means_text(used_table({"in": 1, "a": 0}), scores_of(["in"]), label=0)
    assert "non-relevant pairs that the model gives P(non-relevant) > 0.5" in text
    assert "`in` rests on 1 pair:" in text and "With a single dataset, its intersection is its own set." in text
    text = narrative.class_means_text(used_table({"in": 0, "a": 0}), {}, label=0)
    assert "those datasets have no class mean and are left out" in text and "over 0 datasets only" in text
    assert text.endswith("No dataset has a correctly classified non-relevant pair: there are no relevance neurons to show.")


def test_peak_layers_text_reads_the_layer_counts():
    scores = scores_of(["in", "a"])
    counts = layer_count_table(scores, P_VALUES)
    text = narrative.peak_layers_text(counts, list(scores), LAYERS)
    summary = layer_count_summary(counts)
    peak = layer_count_summary(counts, "a").loc[1.0]
    assert text.startswith("Layers are numbered from 0 (closest to the input) to 3. At top 1%, the layer holding the most")
    assert f"{int(peak['peak layer'])} for `a` ({peak['share in peak layer']:.0%})" in text
    for p, row in summary.iterrows():
        assert f"at top {p:g}% the datasets share {int(row['neurons'])} neuron" in text
    alone = layer_count_table({"in": scores["in"]}, P_VALUES)
    row = layer_count_summary(alone).loc[0.5]  # with one set, the intersection is that set
    one = narrative.peak_layers_text(alone, ["in"], LAYERS)
    assert (f"at top 0.5% the set of `in` has 5 neurons, {row['share in peak layer']:.0%} of them in layer "
            f"{int(row['peak layer'])};") in one


def test_intersection_text_quotes_the_set_size_table():
    scores = scores_of(["in", "a", "b"])
    sizes = set_size_table(scores, P_VALUES)
    text = narrative.intersection_text(sizes, LAYERS * UNITS, len(scores))
    row = sizes.loc[1.0]
    assert text.startswith("Every dataset's set has ceil(p% x 1,000) neurons. The intersection over the 3 datasets holds")
    assert (f"at top 1%, {int(row[INTERSECTION])} of 10 ({row[INTERSECTION + ' / set']:.0%}; sets drawn at random "
            f"would share {row['chance ' + INTERSECTION]:.2g})") in text
    assert f"{row['mean Jaccard']:.2f} at top 1%." in text
    assert narrative.intersection_text(sizes, 1000, 1).endswith("with one dataset there is nothing to intersect.")


def test_core_texts():
    used = used_table({"in": 20, "a": 4, "b": 20, "c": 0})
    scores = {**scores_of(["in", "a", "b"]), "odd": np.random.default_rng(9).normal(size=(LAYERS, UNITS))}
    text = narrative.core_means_text(used, {d: scores[d] for d in ("in", "a", "b")}, label=1)
    assert text.startswith("Class means over the correctly classified relevant pairs only (P(relevant) > 0.5).")
    assert "`a` rests on 4 pairs: its set is noisy, and so is its rank below." in text
    assert text.endswith("`c` is classified correctly: it is left out before ranking, and the core is chosen among "
                         "the 3 remaining datasets.")

    ranking = shared_with_others(scores, P_VALUES)
    dropped = fewest_shared(scores, P_VALUES, 1)
    assert dropped == ["odd"]
    core = [d for d in scores if d not in dropped]
    text = narrative.left_out_text(ranking, dropped, core, 1, "in", figure=2)
    assert f"Left out: `odd` ({ranking.loc['odd', 'mean']:.3f}); the core is the intersection over `in`, `a`, `b` (the " \
           "in-domain dataset `in` is never left out" in text
    assert "capped" not in text
    text = narrative.left_out_text(ranking, fewest_shared(scores, P_VALUES, 5), ["in", "a"], 5, "in", figure=4)
    assert "`n_dropped` = 5, capped at 2 so that at least two datasets remain" in text
    nothing = narrative.left_out_text(ranking, [], list(scores), 0, "in", figure=4)
    assert nothing.endswith("Nothing is left out: the core is the intersection over all 4 datasets, as in Figure 4.")

    core_scores = {d: scores[d] for d in core}
    table = core_size_table(core_scores, scores, P_VALUES)
    counts = layer_count_table(core_scores, P_VALUES)
    text = narrative.core_sizes_text(table, layer_count_summary(counts), dropped, len(core))
    extra = (table["core intersection"] - table["intersection, all datasets"]).astype(int)
    assert text.startswith(f"The 3 datasets of the core share at top 0.5%, {int(table.loc[0.5, 'core intersection'])} of 5")
    assert f"leaving out `odd` keeps {extra[0.5]}, {extra[1.0]} more at top 0.5%, 1% than the intersection" in text
    assert "leaving out" not in narrative.core_sizes_text(table, layer_count_summary(counts), [], len(core))

    assert narrative.single_core_text({"in": 1}, 0).startswith("Only `in` has correctly classified non-relevant pairs")
    assert narrative.single_core_text({}, 1) == "No dataset has a correctly classified relevant pair: there is no core to show."


def test_no_sentence_leaves_a_placeholder_or_a_nan():
    scores = scores_of(["in", "a"])
    sizes = set_size_table(scores, P_VALUES)
    for text in (narrative.intersection_text(sizes, 1000, 2),
                 narrative.peak_layers_text(layer_count_table(scores, P_VALUES), list(scores), LAYERS)):
        assert not re.search(r"\{|\}|nan|None", text)


def test_overlap_page_texts():
    from neuron_ig.stats.selection import (
        OOD_SETS,
        class_overlap,
        jaccard_matrix,
        layer_counts,
        ood_sets,
        relevance_neuron_sets,
    )

    positive, negative = scores_of(["in", "a", "b"], seed=1), scores_of(["in", "a"], seed=2)
    scores = {1: positive, 0: negative}
    used = {1: used_table({"in": 20, "a": 20, "b": 5}), 0: used_table({"in": 3, "a": 20, "b": 0})}
    text = narrative.both_classes_means_text(used, scores)
    assert text == ("Each class mean averages the pairs the model puts in their own class. The positive mean of `b` rests "
                    "on fewer than 10 pairs: read its set with care. The negative mean of `in` rests on fewer than 10 pairs: "
                    "read its set with care. No non-relevant pair of `b` is classified correctly: that dataset is left out "
                    "of the negative class below.")

    long = pd.concat([jaccard_matrix(relevance_neuron_sets(scores[label], p)).rename_axis("row").reset_index()
                      .melt("row", var_name="column", value_name="Jaccard").assign(p=p, **{"class": f"{name} class"})
                      for label, name in narrative.CLASSES.items() for p in P_VALUES], ignore_index=True)
    text = narrative.jaccard_text(long, scores, P_VALUES)
    off = long[(long["class"] == "positive class") & (long["p"] == 0.5) & (long["row"] < long["column"])]
    low, high = off.loc[off["Jaccard"].idxmin()], off.loc[off["Jaccard"].idxmax()]
    assert low["Jaccard"] < high["Jaccard"]
    assert (f"Positive class, top 0.5% (5 neurons per set): Jaccard from {low['Jaccard']:.2f} (`{low['row']}` and "
            f"`{low['column']}`) to {high['Jaccard']:.2f} (`{high['row']}` and `{high['column']}`).") in text
    at_1 = long[(long["class"] == "positive class") & (long["p"] == 1.0) & (long["row"] < long["column"])]
    assert at_1["Jaccard"].nunique() == 1  # these scores tie every pair at 1%
    assert f"top 1% (10 neurons per set): Jaccard {at_1['Jaccard'].iloc[0]:.2f} for every pair of datasets." in text
    pair = long[(long["class"] == "negative class") & (long["p"] == 0.5) & (long["row"] == "a") & (long["column"] == "in")]
    assert f"Negative class, top 0.5% (5 neurons per set): Jaccard {pair['Jaccard'].iloc[0]:.2f} (`a` and `in`)." in text
    lonely = narrative.jaccard_text(None, {1: {"in": positive["in"]}, 0: {}}, P_VALUES)
    assert "The positive class has 1 dataset with correctly" in lonely and "The negative class has 0 datasets" in lonely

    overlap = class_overlap(positive, negative, P_VALUES)
    text = narrative.class_overlap_text(overlap)
    dataset, p = overlap["shared"].idxmax()
    assert f"the largest share is {overlap['shared'].max()} neurons (`{dataset}`, top {p:g}%)." in text
    assert narrative.class_overlap_text(overlap.iloc[:0]).startswith("No dataset has correctly classified pairs in both")

    assert narrative.ood_datasets_text("in", scores, []) == (
        "The in-domain dataset is `in`. The out-of-domain sets are over `a`, `b` for the positive class; `a` for the "
        "negative class (with one out-of-domain dataset, its intersection and its fusion are both its own set).")
    text = narrative.ood_datasets_text("in", {1: positive, 0: {"a": negative["a"]}}, [0])
    assert text.endswith("No OOD neurons for the negative class: `in` has no correctly classified non-relevant pair.")

    sets = ood_sets(positive, "in", 1.0)
    in_set = relevance_neuron_sets({"in": positive["in"]}, 1.0)["in"]
    sizes = pd.DataFrame.from_dict({("positive", 1.0): {**{n: int(m.sum()) for n, m in sets.items()},
                                    "fusion, all datasets, in the in-domain set": int((sets[OOD_SETS[0]] & in_set).sum())}},
                                   orient="index").rename_axis(["class", "p"])
    counts = layer_counts(sets).assign(p=1.0, **{"class": "positive class"})
    text = narrative.ood_sizes_text(sizes, counts)
    assert text.startswith(f"- positive class, top 1%: the out-of-domain intersection has "
                           f"{int(sets['out-of-domain intersection'].sum())} neurons")
    assert f"{int(sets['OOD neurons (fusion)'].sum())} of {int(sets['out-of-domain fusion'].sum())} outside it" in text


SEGMENTS = ("CLS", "query", "SEP", "passage")


def test_token_type_page_texts():
    pairs = pd.DataFrame({"dataset": ["in", "in", "a", "a"], "class": ["relevant", "non-relevant"] * 2,
                          "correctly classified": [5, 0, 0, 3]}).set_index(["dataset", "class"])
    assert narrative.token_pairs_text(pairs, "PAD_QUERY") == (
        "Every number below is a mean over the correctly classified pairs only (the column above). The model classifies "
        "none of the relevant pairs of `a` and none of the non-relevant pairs of `in` correctly: they are left out of this "
        "page. F is the probability of the pair's own class; F(x') is its value at the PAD_QUERY baseline.")
    assert "Every dataset and class has at least one." in narrative.token_pairs_text(pairs.assign(**{"correctly classified": 1}), "PAD_ALL")

    per_layer = pd.DataFrame([{"class": c, "dataset": d, "layer": layer, "token type": t, "NIG": value, "note": ""}
                              for c, d in (("relevant", "in"), ("non-relevant", "a"))
                              for layer in range(3) for t, value in zip(SEGMENTS, (0.1 * layer, 0.05, -0.01 * layer, 0.02))])
    per_layer.loc[(per_layer["class"] == "non-relevant") & (per_layer["layer"] == 0) & (per_layer["token type"] == "CLS"), "NIG"] = -0.5
    text = narrative.layer_token_text(per_layer, [("relevant", "in"), ("non-relevant", "a")])
    assert "The layer with the largest total is relevant, `in`: layer 2; non-relevant, `a`: layer 2." in text
    assert text.endswith("5 of the 24 (layer, token type) bars are negative, the largest -0.5000 (CLS tokens, layer 0, "
                         "non-relevant pairs of `a`).")
    assert narrative.layer_token_text(per_layer.assign(NIG=1.0), []).endswith("No bar is negative.")

    shares = pd.DataFrame({"pairs": [5, 3], "CLS": [0.1, 0.05], "query": [0.5, 0.2], "SEP": [0.1, 0.05],
                           "passage": [0.3, 0.7]}, index=pd.MultiIndex.from_tuples([("in", "relevant"), ("a", "non-relevant")]))
    text = narrative.token_shares_text(shares, SEGMENTS, 128, "PAD_QUERY")
    assert "- relevant, `in` (5 pairs): query (50%), then passage (30%)" in text
    assert "- non-relevant, `a` (3 pairs): passage (70%), then query (20%)" in text
    assert "carry between 10% and 20% of it. With the PAD_QUERY baseline" in text
    assert not narrative.token_shares_text(shares, SEGMENTS, 128, "PAD_ALL").endswith("through attention.")

    profiles = pd.DataFrame({"dataset": ["in"] * 4 + ["a"] * 2, "class": ["relevant", "relevant", "non-relevant", "non-relevant",
                                                                          "relevant", "relevant"],
                             "top p%": [0.5, 1.0] * 3, "main token type": ["query", "query", "passage", "query", "query", "query"]}
                            ).set_index(["dataset", "class", "top p%"])
    text = narrative.main_token_type_text(profiles)
    assert text.startswith("Over the 6 sets (dataset, class and p), the token type carrying most of the set's attribution "
                           "is query for 5, passage for 1. Of the 4 relevant-class sets: query in 4. Of the 2 "
                           "non-relevant-class sets: passage in 1, query in 1.")
    assert "does not change with p for 2 of the 3 (dataset, class) combinations: it does for the non-relevant class of `in`." in text


def robustness_tables():
    """A comparison table as page 09 builds it (index variant, dataset, class), then its `passed` and `grid`."""
    nan = float("nan")
    rows = [("in", "relevant", "PAD_ALL baseline", 0.9, 0.6, 0.7, ""), ("in", "relevant", "seed 1", 0.5, 0.2, 0.3, ""),
            ("in", "non-relevant", "PAD_ALL baseline", 0.8, 0.55, 0.65, ""),
            ("in", "non-relevant", "seed 1", nan, nan, nan, "no correctly classified pair in the variant run: skipped")]
    table = pd.DataFrame(rows, columns=["dataset", "class", "variant", "Spearman", "Jaccard top 0.5%", "Jaccard top 1%", "note"]
                         ).set_index(["variant", "dataset", "class"])
    jaccards = ["Jaccard top 0.5%", "Jaccard top 1%"]
    passed = table[jaccards].rename(columns=dict(zip(jaccards, P_VALUES))).rename_axis(columns="top p%").stack().rename(
        "Jaccard").dropna().reset_index()
    passed["stable"] = passed["Jaccard"] >= 0.5
    grid = passed.pivot_table(index=["dataset", "class", "top p%"], columns="variant", values="stable", aggfunc="first")
    return table, passed, grid[["PAD_ALL baseline", "seed 1"]]


def test_robustness_page_texts():
    table, passed, grid = robustness_tables()
    text = narrative.stability_text(passed, grid, table, P_VALUES, n_variants=2)
    assert text.startswith("- PAD_ALL baseline: 4 of 4 sets stable (Jaccard from 0.55 to 0.70); Spearman of the scores "
                           "from 0.800 to 0.900.\n- seed 1: 0 of 2 sets stable (Jaccard from 0.20 to 0.30); Spearman of "
                           "the scores from 0.500 to 0.500.")
    assert "Stable under every variant: " not in text and "No set is stable under every variant." in text
    assert "Stable under none: " not in text  # every set is stable under the baseline variant
    assert "Mean Jaccard by p, over datasets and classes: PAD_ALL baseline 0.57, 0.68; seed 1 0.20, 0.30 (top 0.5, 1%)." in text
    assert "Not compared, for lack of correctly classified pairs: seed 1, non-relevant class of `in`." in text
    assert text.endswith("In short, by this threshold the top-p% sets are robust to the change to PAD_ALL baseline; "
                         "not robust to the change to seed 1.")
    assert "under the seed variant says that a set depends on which pairs were drawn" in text

    # the default build has no seed variant (other_seed=None): the text does not speak of one
    baseline_only = narrative.stability_text(passed[passed["variant"] != "seed 1"], grid[["PAD_ALL baseline"]],
                                             table.drop(index="seed 1", level="variant"), P_VALUES, n_variants=1)
    assert "seed" not in baseline_only
    assert "A low overlap under the baseline variant says that a set depends on how NIG was computed" in baseline_only


# --- verdicts against nulls and controls ---------------------------------------------------------------

def test_records_turn_missing_values_into_none_so_glued_values_read_back():
    table = pd.DataFrame({"a": [1.0, np.nan], "b": ["x", None]})
    assert narrative.records(table) == [{"a": 1.0, "b": "x"}, {"a": None, "b": None}]


def test_control_tests_text_names_the_test_and_its_floor():
    from neuron_ig.studies.pruning import choose_control_tests

    rng = np.random.default_rng(0)
    deltas = rng.normal(0, 0.01, 19)
    from neuron_ig.stats.controls import control_test

    test = control_test(-0.08, deltas)
    table = pd.DataFrame([{"p": 1.0, "class": "positive", "set": "fusion", "task": "t", "neurons": 92, "delta": -0.08,
                           "controls": 19, "random delta": deltas.mean(), "random sd": deltas.std(ddof=1),
                           "p random (rank)": test["p rank"], "p random (t)": test["p t"],
                           "p random (queries and controls)": 0.05},
                          {"p": 1.0, "class": "positive", "set": "other", "task": "t", "neurons": 92, "delta": -0.01,
                           "controls": 0, "random delta": np.nan, "random sd": np.nan, "p random (rank)": np.nan,
                           "p random (t)": np.nan, "p random (queries and controls)": np.nan}])
    text = narrative.control_tests_text(choose_control_tests(table))
    assert "positive · fusion, top 1%, `t`: delta -0.080" in text and "other" not in text.split("\n\n")[1]
    assert "rank among controls and bootstrap over queries and controls, p = 0.05" in text
    assert "1 / (R + 1) = 0.050" in text and "t prediction" not in text
    assert narrative.control_tests_text(table.iloc[1:].assign(**{"p vs random": np.nan})).startswith("No set")


def test_verdicts_text_counts_the_verdicts_and_states_the_level():
    from neuron_ig.studies.verdicts import page_verdicts

    table = page_verdicts([{"claim": "a", "p": 0.001, "in claimed direction": True},
                           {"claim": "b", "p": 0.2, "in claimed direction": True},
                           {"claim": "c", "p": np.nan, "in claimed direction": False, "note": "no data"}])
    text = narrative.verdicts_text(table, 0.05)
    assert text.startswith("1 supported, 1 inconclusive, 1 not computed (of 3 claims)")
    assert "over the 2 tested claims" in text and "at most 0.05" in text
