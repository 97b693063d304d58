"""Layer 2, statistics on neuron scores: top-p% sets and set operations across datasets (``selection``), null
references by resampling pairs (``nulls``), agreement measures (``agreement``), random controls and the test
against them (``controls``) and paired tests with multiplicity corrections (``significance``). numpy, scipy and
pandas only: imports nothing else of the library."""
