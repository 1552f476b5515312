"""Generation backends (HF transformers, vLLM) and the cached generator."""
