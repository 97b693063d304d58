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
    # a row without matched controls (0) leaves the floor to its random ones
    assert "1 / (R + 1) = 0.050" in narrative.control_tests_text(choose_control_tests(table.assign(**{"matched controls": 0})))


def test_verdicts_text_counts_the_verdicts_and_states_the_level():
    from neuron_ig.studies.verdicts import page_verdicts

    table = page_verdicts([{"claim": "a", "p": 0.001, "in claimed direction": True},
                           {"claim": "b", "p": 0.2, "in claimed direction": True},
                           {"claim": "c", "p": np.nan, "in claimed direction": False, "note": "no data"}])
    text = narrative.verdicts_text(table, 0.05)
    assert text.startswith("1 supported, 1 inconclusive, 1 not computed (of 3 claims)")
    assert "over the 2 tested claims" in text and "at most 0.05" in text


# --- the findings at the top of the pages ----------------------------------------------------------------

def test_drop_rule_text_says_what_the_core_leaves_out_and_when_n_dropped_is_capped():
    four = scores_of(["in", "a", "b", "c"])
    assert narrative.drop_rule_text(four, 1, ["b"], ["in", "a", "c"], 2) == (
        "The drop rule leaves out `b`: the out-of-domain dataset whose top-p% sets share the fewest neurons with the "
        "others' (`n_dropped` = 2, capped at 1 so that two datasets remain).")
    assert narrative.drop_rule_text(four, 1, ["a", "b"], ["in", "c"], 2) == (
        "The drop rule leaves out `a`, `b`: the out-of-domain datasets whose top-p% sets share the fewest neurons with "
        "the others'.")
    assert narrative.drop_rule_text(four, 1, [], list(four), 0) == (
        "The drop rule leaves nothing out (`n_dropped` = 0): the core is the intersection over all 4 datasets.")
    assert narrative.drop_rule_text(scores_of(["in", "a"]), 1, [], ["in", "a"], 2) == (
        "The drop rule leaves nothing out (`n_dropped` = 2, capped at 0 so that two datasets remain): the core is the "
        "intersection over all 2 datasets.")
    # fewer than two class means: the single-core sentence
    one = scores_of(["in"])
    assert narrative.drop_rule_text(one, 0, [], ["in"], 2) == narrative.single_core_text(one, 0)
    assert narrative.drop_rule_text({}, 1, [], [], 2) == (
        "No dataset has a correctly classified relevant pair: there is no core to show.")


def core_table(core: int, per_set: int, everyone: int) -> pd.DataFrame:
    """A core_size_table-like table at top 1%."""
    return pd.DataFrame({"core intersection": [core], "neurons per dataset": [per_set],
                         "intersection, all datasets": [everyone]}, index=pd.Index([1.0], name="p"))


def test_core_share_text_quotes_the_core_at_the_largest_p():
    table = core_table(12, 50, 7)
    assert narrative.core_share_text(table, scores_of(["in", "a", "b", "c"]), ["b"], ["in", "a", "c"], 1.0) == (
        "At top 1%, the core of `in`, `a` and `c` holds 12 of each set's 50 neurons (7 are in the sets of all 4 "
        "datasets).")
    assert narrative.core_share_text(table, scores_of(["in", "a"]), [], ["in", "a"], 1.0) == (
        "At top 1%, the core of `in` and `a` holds 12 of each set's 50 neurons.")
    # no core of two datasets: nothing to say
    assert narrative.core_share_text(None, scores_of(["in"]), [], ["in"], 1.0) == ""
    assert narrative.core_share_text(None, {}, [], [], 1.0) == ""


def test_core_null_text_compares_the_core_with_sign_flips():
    nulls = pd.DataFrame({"p": [0.5, 1.0], "core intersection": [3, 12], "sign-flip null mean": [2.5, 4.25],
                          "p (drop rule in the null)": [0.2, 0.001]})
    two = scores_of(["in", "a"])
    assert narrative.core_null_text(nulls, two, 1.0, 999) == (
        "Sign flips of the pairs, with the same drop rule inside every resample, give a core of 4.25 neurons on average: "
        "the observed 12 is larger than noise makes it (p = 0.001, 999 resamples, uncorrected).")
    assert narrative.core_null_text(nulls, two, 0.5, 99) == (
        "Sign flips of the pairs, with the same drop rule inside every resample, give a core of 2.5 neurons on average: "
        "the observed 3 is not larger, at the 5% level, than noise makes it (p = 0.2, 99 resamples, uncorrected).")
    # too few pairs to split, or fewer than two class means
    assert narrative.core_null_text(pd.DataFrame(), two, 1.0, 999) == (
        "Too few pairs to split every core dataset: no null to compare the core with.")
    assert narrative.core_null_text(nulls, scores_of(["in"]), 1.0, 999) == ""


def jaccard_long() -> pd.DataFrame:
    """Jaccard matrices in the long form of the overlaps page: both orders of each pair and the diagonal."""
    pairs = {"positive class": {("a", "b"): 0.3, ("a", "in"): 0.314, ("b", "in"): 0.42}, "negative class": {("a", "in"): 0.2}}
    rows = []
    for name, values in pairs.items():
        for (row, column), value in values.items():
            rows += [{"class": name, "p": 1.0, "row": row, "column": column, "Jaccard": value},
                     {"class": name, "p": 1.0, "row": column, "column": row, "Jaccard": value},
                     {"class": name, "p": 0.5, "row": row, "column": column, "Jaccard": 0.9}]
        rows += [{"class": name, "p": 1.0, "row": d, "column": d, "Jaccard": 1.0} for d in ("a", "in")]
    return pd.DataFrame(rows)


def test_between_datasets_text_gives_the_jaccard_range_and_the_ratio_to_halves():
    long = jaccard_long()
    ratios = pd.DataFrame({"class": ["positive class", "positive class", "negative class", "positive class"],
                           "p": [1.0, 1.0, 1.0, 0.5], "ratio": [0.5, 0.61, np.nan, 0.1]})
    assert narrative.between_datasets_text(long, ratios, [1, 0], 1.0) == (
        "At top 1%, the datasets' sets overlap by a Jaccard index of 0.30 to 0.42 in the positive class and 0.20 in the "
        "negative class; on halves of the pairs, the overlap between two datasets is 0.50 to 0.61 (positive class) times "
        "that between two halves of one dataset.")
    both = ratios.fillna(0.7)
    assert "is 0.50 to 0.61 and 0.70 times that between" in narrative.between_datasets_text(long, both, [1, 0], 1.0)
    # no ratio, one class compared, no class compared
    assert narrative.between_datasets_text(long, pd.DataFrame(), [1], 1.0) == (
        "At top 1%, the datasets' sets overlap by a Jaccard index of 0.30 to 0.42 in the positive class. The negative "
        "class has fewer than two datasets with correctly classified pairs.")
    assert narrative.between_datasets_text(None, pd.DataFrame(), [], 1.0) == (
        "No class has two datasets with correctly classified pairs: no overlap between datasets to show.")


def test_between_classes_text_gives_the_shared_neurons_at_the_largest_p():
    overlap = pd.DataFrame({"shared": [10, 14, 99], "Jaccard": [0.05, 0.0736, 0.9]},
                           index=pd.MultiIndex.from_tuples([("in", 1.0), ("a", 1.0), ("in", 0.5)], names=["dataset", "p"]))
    assert narrative.between_classes_text(overlap, 1.0) == (
        "A dataset's positive and negative top-1% sets share 10 to 14 neurons (mean Jaccard 0.062).")
    assert narrative.between_classes_text(overlap.iloc[[0]], 1.0) == (
        "A dataset's positive and negative top-1% sets share 10 neurons (mean Jaccard 0.05).")
    assert narrative.between_classes_text(overlap.iloc[:0], 1.0) == (
        "No dataset has correctly classified pairs in both classes: nothing to compare.")


def test_ood_counts_text_counts_the_ood_neurons_and_the_stricter_ones():
    sizes = pd.DataFrame({"OOD neurons (intersection)": [5, 3, 40], "out-of-domain intersection": [20, 15, 80]},
                         index=pd.MultiIndex.from_tuples([("positive", 1.0), ("negative", 1.0), ("positive", 0.5)],
                                                         names=["class", "p"]))
    tests = pd.DataFrame({"class": ["positive class"], "rank-gap neurons": [2], "OOD neurons": [1]})
    start = ("Of the neurons in every out-of-domain top-1% set, 5 of 20 (positive class) and 3 of 15 (negative class) are "
             "outside the in-domain set (the intersection's OOD neurons)")
    assert narrative.ood_counts_text(sizes, tests, "in", {}, [], 1.0) == (
        start + "; 2 (positive class) are outside its top 5%, and 1 (positive class) have a higher NIG out of domain than "
        "in domain beyond the 95% quantile of the largest t in pairs shuffled between datasets (a description: any "
        "shift of a whole collection passes that test; the OOD claim of \"Paper vs reproduction\" compares class "
        "contrasts instead).")
    both = pd.concat([tests, pd.DataFrame({"class": ["negative class"], "rank-gap neurons": [4], "OOD neurons": [0]})])
    assert narrative.ood_counts_text(sizes, both, "in", {}, [], 1.0).startswith(
        start + "; 2 and 4 are outside its top 5%, and 1 and 0 have a higher NIG")
    assert narrative.ood_counts_text(sizes, pd.DataFrame(), "in", {}, [], 1.0) == start + "."
    # no class with OOD sets (the page's `sizes` is then an empty dict): why, per class
    scores = {1: scores_of(["in"]), 0: scores_of(["a"])}
    assert narrative.ood_counts_text({}, pd.DataFrame(), "in", scores, [1, 0], 1.0) == (
        "The in-domain dataset is `in`. No OOD neurons for the positive class: no out-of-domain dataset has a correctly "
        "classified relevant pair. No OOD neurons for the negative class: `in` has no correctly classified non-relevant "
        "pair.")


TOKEN_SHARES = pd.DataFrame({"pairs": [5, 3, 4], "CLS": [0.1, 0.05, 0.05], "query": [0.5, 0.2, 0.6],
                             "SEP": [0.1, 0.05, 0.05], "passage": [0.3, 0.7, 0.3]},
                            index=pd.MultiIndex.from_tuples([("in", "relevant"), ("a", "non-relevant"), ("a", "relevant")],
                                                            names=["dataset", "class"]))


def test_where_it_sits_text_names_the_token_type_with_the_largest_share():
    assert narrative.where_it_sits_text(TOKEN_SHARES, SEGMENTS) == (
        "The query tokens carry the largest share of the absolute attribution in 2 of the 3 (dataset, class) "
        "combinations (passage in 1): 20% to 60% of it, against 30% to 70% for the passage tokens and 10% to 20% for "
        "[CLS] and [SEP] together.")
    assert narrative.where_it_sits_text(TOKEN_SHARES.iloc[[1]], SEGMENTS) == (
        "The passage tokens carry the largest share of the absolute attribution in every one of the 1 (dataset, class) "
        "combinations: 70% of it, against 20% for the query tokens and 10% for [CLS] and [SEP] together.")
    assert narrative.where_it_sits_text(pd.DataFrame(), SEGMENTS) == (
        "No dataset and class has a correctly classified pair: there is no attribution to split.")


def test_top_sets_token_text_counts_the_main_token_types_of_the_sets():
    profiles = pd.DataFrame({"dataset": ["in"] * 4 + ["a"] * 2, "class": ["relevant"] * 2 + ["non-relevant"] * 2
                             + ["relevant"] * 2, "top p%": [0.5, 1.0] * 3,
                             "main token type": ["query", "query", "passage", "query", "query", "query"]}
                            ).set_index(["dataset", "class", "top p%"])
    assert narrative.top_sets_token_text(profiles) == (
        "Of the 6 top-p% neuron sets (dataset, class and p), the query tokens carry most of the set's attribution in 5 "
        "(passage in 1).")
    assert narrative.top_sets_token_text(profiles.iloc[:2]) == (
        "Of the 2 top-p% neuron sets (dataset, class and p), the query tokens carry most of the set's attribution in 2.")
    assert narrative.top_sets_token_text(pd.DataFrame()) == ""


def test_baseline_tokens_text_says_which_embeddings_move():
    assert narrative.baseline_tokens_text("PAD_QUERY", ["query"], SEGMENTS) == (
        "With the PAD_QUERY baseline only the query tokens' word embeddings move along the path, which by itself "
        "predicts that the query carries most of the attribution (see the caveats).")
    assert narrative.baseline_tokens_text("PAD_QUERY_AND_PASSAGE", ["query", "passage"], SEGMENTS) == (
        "With the PAD_QUERY_AND_PASSAGE baseline only the word embeddings of the query and passage tokens move along "
        "the path (see the caveats).")
    assert narrative.baseline_tokens_text("PAD_ALL", list(SEGMENTS), SEGMENTS) == (
        "With the PAD_ALL baseline the word embeddings of every token type move along the path.")


def test_membership_text_gives_the_bootstrap_membership_of_the_sets():
    membership = pd.DataFrame({"set size": [10, 10], "mean probability of the selected": [0.812, 0.9],
                               "selected with probability >= 0.9": [4, 7]})
    assert narrative.membership_text(membership, 1.0) == (
        "the neurons of each class and dataset's top-1% set stay in it with a mean probability of 0.812 to 0.9 (2 "
        "sets), and 4 to 7 of a set's 10 neurons stay with a probability of 0.9 or more.")
    assert narrative.membership_text(membership.assign(**{"set size": [10, 12]}), 0.5) == (
        "the neurons of each class and dataset's top-0.5% set stay in it with a mean probability of 0.812 to 0.9 (2 "
        "sets), and 4 to 7 neurons of a set stay with a probability of 0.9 or more.")
    assert narrative.membership_text(membership.iloc[:0], 1.0) == "no dataset has a correctly classified pair to resample."


def agreement_rows(values: dict[str, tuple[list[float], list[float]]]) -> pd.DataFrame:
    """An agreement table with its `kind` column: {class: (within Jaccards, between Jaccards)}."""
    return pd.DataFrame([{"class": name, "kind": kind, "Jaccard": j}
                         for name, (within, between) in values.items()
                         for kind, js in (("within a dataset (two halves)", within),
                                          ("between datasets (a half of each)", between)) for j in js])


def test_agreement_text_compares_within_and_between_dataset_overlaps():
    start = "Two disjoint halves of one dataset's pairs give top-1% sets that overlap by a Jaccard of "
    text = narrative.agreement_text(agreement_rows({"relevant": ([0.6, 0.7], [0.3, 0.4]),
                                                    "non-relevant": ([0.5, 0.55], [0.52])}), 1.0)
    assert text == (start + "0.6 to 0.7 (relevant class) and 0.5 to 0.55 (non-relevant class); halves of two different "
                    "datasets by 0.3 to 0.4 (relevant class) and 0.52 (non-relevant class). Every between-dataset overlap "
                    "lies below every within-dataset one only for the relevant class: the other's ranges overlap.")
    text = narrative.agreement_text(agreement_rows({"relevant": ([0.6, 0.7], [0.3, 0.4]),
                                                    "non-relevant": ([0.5, 0.55], [0.2])}), 1.0)
    assert text.endswith("Every between-dataset overlap lies below every within-dataset one in both classes: the "
                         "datasets' sets differ more than halves of one dataset do.")
    text = narrative.agreement_text(agreement_rows({"relevant": ([0.6, 0.7], [0.3, 0.4]), "non-relevant": ([0.5], [])}), 1.0)
    assert text == (start + "0.6 to 0.7 (relevant class); halves of two different datasets by 0.3 to 0.4 (relevant "
                    "class). Every between-dataset overlap lies below every within-dataset one: the datasets' sets differ "
                    "more than halves of one dataset do.")
    text = narrative.agreement_text(agreement_rows({"relevant": ([0.6], [0.65])}), 1.0)
    assert text.endswith("The between- and within-dataset ranges overlap in every class: the datasets' sets do not "
                         "clearly differ more than halves of one dataset do.")
    # the page's empty table (no class with two datasets of two pairs)
    empty = pd.DataFrame(columns=["class", "compared", "Jaccard", "RBO"]).assign(kind=[])
    assert narrative.agreement_text(empty, 1.0) == (
        "With fewer than two datasets of at least two pairs, there is no within- and between-dataset agreement to "
        "compare.")


def pruning_rows() -> pd.DataFrame:
    """Rows of a relevance_pruning-like table: the positive in-domain top set with both controls, its fusion set, the
    negative in-domain top set at another p only, and an empty set."""
    nan = float("nan")
    base = {"task": "in", "random controls": 39, "matched controls": 9, "controls": 39}
    return pd.DataFrame([
        {**base, "class": "positive", "set": "top: in", "p": 1.0, "neurons": 92, "delta": -0.0123,
         "delta vs random": -0.00456, "delta vs random low": -0.0101, "delta vs random high": 0.00123,
         "p vs random (Holm)": 0.0412, "delta vs matched": -0.002, "delta vs matched low": nan,
         "delta vs matched high": nan, "p vs matched (Holm)": 0.3},
        {**base, "class": "positive", "set": "fusion", "p": 1.0, "neurons": 92, "delta": -0.02,
         "delta vs random": -0.01, "delta vs random low": -0.02, "delta vs random high": 0.0, "p vs random (Holm)": 0.2,
         "delta vs matched": -0.01, "delta vs matched low": -0.02, "delta vs matched high": 0.0,
         "p vs matched (Holm)": 0.2},
        {**base, "class": "negative", "set": "top: in", "p": 0.5, "neurons": 46, "delta": 0.001,
         "delta vs random": 0.002, "delta vs random low": -0.001, "delta vs random high": 0.004,
         "p vs random (Holm)": 0.9, "delta vs matched": 0.002, "delta vs matched low": -0.001,
         "delta vs matched high": 0.004, "p vs matched (Holm)": 0.9},
        {**base, "class": "negative", "set": "OOD neurons (fusion)", "p": 1.0, "neurons": 0, "delta": 0.0,
         "delta vs random": nan, "delta vs random low": nan, "delta vs random high": nan, "p vs random (Holm)": nan,
         "delta vs matched": nan, "delta vs matched low": nan, "delta vs matched high": nan,
         "p vs matched (Holm)": nan},
    ])


def test_pruning_effects_text_gives_each_class_effect_against_its_controls():
    from neuron_ig.studies.pruning import pruning_verdicts

    table = pruning_rows()
    verdicts = pruning_verdicts(table)
    assert narrative.pruning_effects_text(table, verdicts, "in", 1.0) == (
        "Positive class (92 neurons): delta -0.0123, effect -0.00456 against random controls (95% interval -0.0101 to "
        "0.00123, Holm p = 0.0412) and -0.002 against matched ones (Holm p = 0.3): **hurts more than random**. The "
        "negative class has no set: no negative pair of `in` is classified correctly.")
    assert narrative.pruning_effects_text(table, verdicts, "in", 0.5) == (
        "The positive class has no set: no positive pair of `in` is classified correctly. Negative class (46 neurons): "
        "delta +0.001, effect +0.002 against random controls (95% interval -0.001 to 0.004, Holm p = 0.9) and +0.002 "
        "against matched ones (-0.001 to 0.004, Holm p = 0.9): **does not hurt more than random**.")
    # without controls (no matched columns at all, no random control): the delta and the verdict only
    bare = table.drop(columns=[c for c in table if "matched" in c]).assign(**{"random controls": 0, "controls": 0})
    assert narrative.pruning_effects_text(bare, pruning_verdicts(bare), "in", 1.0).startswith(
        "Positive class (92 neurons): delta -0.0123: **no control**. ")
    # no set at all (no pair of the in-domain collection classified correctly in either class)
    assert narrative.pruning_effects_text(table.iloc[:0], verdicts.iloc[:0], "in", 1.0) == (
        "The positive class has no set: no positive pair of `in` is classified correctly. The negative class has no "
        "set: no negative pair of `in` is classified correctly.")


def test_ood_pruning_text_gives_each_class_effect_on_the_tested_collections():
    from neuron_ig.studies.pruning import pruning_verdicts

    nan = float("nan")
    base = {"set": "OOD neurons", "p": 1.0, "random controls": 39, "matched controls": 0, "controls": 39}
    table = pd.DataFrame([
        {**base, "class": "positive", "task": "ood", "neurons": 7, "delta": -0.01, "delta vs random": -0.008,
         "delta vs random low": -0.02, "delta vs random high": 0.001, "p vs random (Holm)": 0.2},
        {**base, "class": "positive", "task": "in", "neurons": 7, "delta": 0.0, "controls": 0, "random controls": 0,
         "delta vs random": nan, "delta vs random low": nan, "delta vs random high": nan, "p vs random (Holm)": nan},
        {**base, "class": "negative", "task": "ood", "neurons": 0, "delta": 0.0, "delta vs random": nan,
         "delta vs random low": nan, "delta vs random high": nan, "p vs random (Holm)": nan},
    ])
    verdicts = pruning_verdicts(table)
    assert narrative.ood_pruning_text(table, verdicts, 1.0, ["ood"]) == (
        "The OOD neurons (those that pass the difference-in-differences test of page 10), pruned on the out-of-domain "
        "collections of that test: the 7 positive ones on `ood` delta -0.01, effect -0.008 against random controls "
        "(95% interval -0.02 to 0.001, Holm p = 0.2): **no significant difference**; no negative neuron passes the test.")
    assert narrative.ood_pruning_text(table, verdicts, 1.0, []).startswith("No OOD neuron is tested")
    assert narrative.ood_pruning_text(table, verdicts, 0.5, ["ood"]).startswith("No OOD neuron was pruned")


def test_verdict_counts_text_counts_the_cases_with_controls():
    from neuron_ig.studies.pruning import pruning_verdicts

    table = pruning_rows()
    assert narrative.verdict_counts_text(table, pruning_verdicts(table)) == (
        "Of all 3 (set, collection, p) cases with controls, 1 hurts more than random (1 hurts more than random, "
        "1 no significant difference, 1 does not hurt more than random).")
    two = table.assign(**{"p vs random (Holm)": [0.01, 0.01, 0.9, np.nan]})
    assert "cases with controls, 2 hurt more than random (2 hurts more than random, 1 does not" in (
        narrative.verdict_counts_text(two, pruning_verdicts(two)))
    none = table.assign(controls=0)
    assert narrative.verdict_counts_text(none, pruning_verdicts(none)) == (
        "No case has controls here, so none has a verdict.")


def test_presence_text_and_table_give_each_position_with_its_interval():
    from neuron_ig.report.narrative import presence_table, presence_text

    rows = pd.DataFrame([{"dataset": "a", "group": "relevance-specific", "neurons": 83.5, "relevant": 0.03, "mismatched": 0.004,
                          "non-relevant": 0.0035, "position": 0.0045, "position low": -0.056, "position high": 0.068,
                          "relevant - mismatched": 0.027, "difference low": 0.025, "difference high": 0.029, "twins": 64,
                          "twins called non-relevant": 1.0}])
    assert presence_text(rows) == ("Given a query that is there but not relevant (the mismatched pairs, measured on held-out "
                                   "pairs), the relevance-specific neurons sit at `a` 0.00 [-0.06, 0.07] of the way from "
                                   "non-relevant (0) to relevant pairs (1).")
    assert presence_text(rows.iloc[0:0]) == ""
    table = presence_table(rows.assign(position=np.nan))
    assert table.loc[0, "relevant - mismatched [95%]"] == "0.027 [0.025, 0.029]" and table.loc[0, "position [95%]"] == ""


def test_pruning_texts_say_how_sets_move_p_relevant_the_power_and_the_controls_tested_as_sets():
    from neuron_ig.report.narrative import (
        controls_as_sets_text,
        power_text,
        probability_shift_text,
    )

    shifts = pd.DataFrame([{"scheme": "positive · fusion", "pairs": "relevant", "effect": -0.89, "interval low": -0.93,
                            "interval high": -0.85},
                           {"scheme": "positive · fusion", "pairs": "non-relevant", "effect": 0.01, "interval low": -0.02,
                            "interval high": 0.05}])
    text = probability_shift_text(shifts)
    assert "positive · fusion on relevant pairs -0.89 [-0.93, -0.85] (beyond its controls)" in text
    assert "non-relevant pairs +0.01 [-0.02, +0.05];" not in text and "+0.01 [-0.02, +0.05] (set minus" in text
    assert probability_shift_text(pd.DataFrame()).startswith("No set was pruned with controls")
    power = power_text(12, 20, {"positive": 0.15}, {"positive": 113.0}, controls=19, family=2)
    assert "12 informative queries (of 20" in power and "positive set 15%" in power and "one-sided at 0.025" in power
    assert "about 113 informative queries, some 189 evaluation queries" in power
    assert "With R = 19 controls no p-value is below 0.05" in power and "R >= 39" in power
    assert "With R =" not in power_text(12, 20, {"positive": 0.15}, {"positive": 113.0}, controls=39, family=2)
    few = power_text(12, 20, {}, {}, controls=2, family=2)
    assert "too few controls or queries to estimate the power." in few and "With R = 2 controls" in few
    checks = pd.DataFrame({"fires": [False, True, False], "p queries": [0.01, 0.02, 0.5]})
    assert controls_as_sets_text(checks).startswith("Each random control, tested as if it were the pruned set")
    assert "1 of 3 reach p <= 0.05" in controls_as_sets_text(checks) and "say so for 2" in controls_as_sets_text(checks)
    assert controls_as_sets_text(checks.iloc[0:0]).startswith("Fewer than 3 controls")


def test_the_cross_encoder_texts_give_each_gain_and_each_missed_target():
    from neuron_ig.report.narrative import gain_text, targets_text

    checks = pd.DataFrame([
        {"collection": "a", "target": "nDCG@10 minus BM25's: >= 0", "observed": 0.27, "low": 0.2, "high": 0.34, "met": True},
        {"collection": "b", "target": "nDCG@10 minus BM25's: >= 0", "observed": -0.05, "low": -0.12, "high": 0.01, "met": False},
        {"collection": "b", "target": "relevant pairs in their class: >= 50%", "observed": 0.475, "low": 0.41, "high": 0.54,
         "met": False}])
    gain = checks[checks["target"].str.startswith("nDCG@10")].set_index("collection")
    assert gain_text(gain) == ("+0.270 on `a` (in domain; 95% interval +0.200 to +0.340) and -0.050 on `b` (95% interval "
                               "-0.120 to +0.010)")
    assert targets_text(checks) == ("It meets 1 of the 3 stand-in targets and misses on `b`, nDCG@10 minus BM25's (-0.050 "
                                    "against the target >= 0; 95% interval -0.120 to +0.010) and relevant pairs in their "
                                    "class (47.5% against the target >= 50%; 95% interval 41.0% to 54.0%).")
    assert targets_text(checks.assign(met=True)) == "It meets every one of the 3 stand-in targets."

