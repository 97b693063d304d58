"""The parameters of a dataset's NIG, declared once for every page that computes it.

Each such page's parameters cell names every field of :class:`NIGParameters` with the default written here
(``tests/test_notebooks.py`` checks it), and takes them in one line, ``nig = NIGParameters.of_page(globals())``,
so that a value set for the whole book (``book: {rule: right}`` in a params file) reaches every page, and a page
that forgets one fails at once instead of computing with another value.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from neuron_ig.studies.change import drop_small_changes, kept_pairs, small_change
from neuron_ig.studies.results import DatasetNIG, datasets_nig


@dataclasses.dataclass(frozen=True)
class NIGParameters:
    """What changes a page's NIG results: the model, the pairs, the path and the arithmetic, and the pairs kept.

    Attributes:
        model: Hugging Face id, local folder, or the embedded default.
        n_pairs: correctly classified pairs per dataset and class (the first of the seeded draw).
        seed: seed of the pair draw.
        baseline: ``PAD_QUERY``, ``PAD_QUERY_AND_PASSAGE``, ``PAD_ALL`` or ``NEUTRAL`` (:mod:`neuron_ig.engine.baselines`).
        steps: m, the steps of the integration path.
        rule: gradient at the ``left`` (captum) or ``right`` (the authors' code) end of each step.
        max_length: tokens of ``[CLS] query [SEP] passage [SEP]``.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (results do not depend on it).
        precision: ``fp32``, ``bf16`` or ``tf32`` (CUDA only).
        min_grade: lowest grade counted relevant: None (the table of :mod:`neuron_ig.ir.grades`), an int, or
            ``{dataset id: grade}``.
        min_change: pairs whose F(x) - F(x') is below this are dropped before the class means (0: keep all).
    """

    model: str = "neuron-ig/minilm-l6-cross-encoder"
    n_pairs: int = 64
    seed: int = 0
    baseline: str = "PAD_QUERY"
    steps: int = 50
    rule: str = "left"
    max_length: int = 128
    device: str = "auto"
    precision: str = "fp32"
    min_grade: int | Mapping[str, int] | None = None
    min_change: float = 0.0

    @classmethod
    def names(cls) -> list[str]:
        return [field.name for field in dataclasses.fields(cls)]

    @classmethod
    def of_page(cls, namespace: Mapping) -> NIGParameters:
        """The page's values, from its namespace (a notebook passes ``globals()``).

        Raises:
            ValueError: the page's parameters cell lacks some of them.
        """
        missing = [name for name in cls.names() if name not in namespace]
        if missing:
            defaults = ", ".join(f"{name} = {getattr(cls(), name)!r}" for name in missing)
            raise ValueError(f"this page's parameters cell declares no {', '.join(missing)}: add {defaults}")
        return cls(**{name: namespace[name] for name in cls.names()})

    def nig_arguments(self) -> dict:
        """The keyword arguments of :func:`neuron_ig.studies.results.datasets_nig` (all but model and min_change)."""
        return {name: getattr(self, name) for name in self.names() if name not in ("model", "min_change")}

    def class_results(self, datasets: Sequence[str], label: int) -> dict[str, DatasetNIG]:
        """``{dataset: DatasetNIG}`` of one class (1 relevant, 0 non-relevant pairs), cached, with the pairs
        whose change is below ``min_change`` dropped (the pages' one rule)."""
        results = datasets_nig(self.model, datasets, label, progress=False, **self.nig_arguments())
        return drop_small_changes(results, self.min_change)

    def mismatched_results(self, datasets: Sequence[str]) -> dict[str, tuple[DatasetNIG, DatasetNIG]]:
        """``{dataset: (relevant, mismatched)}``: the relevant pairs :meth:`class_results` attributes and their
        mismatched twins (each passage with another of their queries: :func:`neuron_ig.ir.pairs.mismatched_pairs`),
        cached; row i of ``mismatched`` is the twin of row i of ``relevant``, and a pair dropped by ``min_change`` is
        dropped with its twin. A dataset whose pairs hold fewer than two queries has no twins and is left out."""
        relevant = datasets_nig(self.model, datasets, 1, progress=False, **self.nig_arguments())
        twins = datasets_nig(self.model, datasets, 0, progress=False, mismatched=True, **self.nig_arguments())
        paired = {}
        for dataset in datasets:
            own, twin = relevant[dataset], twins[dataset]
            if len(twin.score) != len(own.score) or not len(own.score):
                continue
            if not np.array_equal(twin.doc_ids, own.doc_ids):
                raise RuntimeError(f"the mismatched pairs of {dataset} are not in the order of its relevant pairs: clear "
                                   "their cache entries (NEURON_IG_CACHE/nig) and run again")
            keep = ~small_change(own, self.min_change) if self.min_change > 0 else np.ones(len(own.score), dtype=bool)
            paired[dataset] = (kept_pairs(own, keep), kept_pairs(twin, keep))  # as class_results keeps them
        return paired
