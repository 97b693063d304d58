"""Layer 4, the studies the pages report: NIG of a dataset's pairs, cached (``results``), class means and token
types (``aggregation``), the change F(x) - F(x') (``change``), ranking effectiveness of a model
(``effectiveness``), the pruning study (``pruning``), robustness variants (``robustness``) and the verdicts of
the report's claims (``verdicts``)."""
