"""Layer 1: what every other layer stands on. The results cache (``cache``), devices and batch sizes
(``device``), the ranks of a run under torchrun (``distributed``), and the software versions that made a result
(``versions``). Imports nothing of the library."""
