"""neuron_ig: Neuron Integrated Gradients (NIG) and relevance neurons of cross-encoders.

The library behind the reproduction of "Which Neurons Matter in IR?" (Vast et al., ICTIR 2024).
One module per concept: ``models`` (loading), ``encoding`` (pairs and token types), ``baselines``,
``nig`` (the attribution engine), ``results`` (NIG of a dataset, cached), ``aggregation``, ``selection``,
``robustness``, ``data`` and ``embedded`` (collections), ``retrieval`` (BM25), ``evaluation``,
``training`` (the embedded cross-encoder), ``plots``, ``provenance``, ``cache`` and ``runner`` (the book).
"""
