"""Layer 3, the embedded cross-encoder: the packaged bi-encoder as teacher (``teacher``) and the fine-tuning
recipe that makes ``neuron-ig/minilm-l6-cross-encoder`` offline (``training``). ``pyproject.toml`` registers the
model by name (the ``neuron_ig.made_models`` entry points), so ``engine.models`` loads it without importing this layer."""
