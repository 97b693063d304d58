"""Layer 2, the engine: a cross-encoder (``models``), its input pairs and token types (``encoding``), the NIG
baselines (``baselines``), Neuron Integrated Gradients (``nig``) and the forward hooks that zero neurons
(``pruning_hooks``). Imports only ``runtime``."""
