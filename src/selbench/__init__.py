"""selbench: does an instruction-selection strategy beat random sampling, and is it worth its cost?

Reproduces and generalizes "Chasing Random" (Diddee & Ippolito): datasets x strategies x budgets x
seeds x fine-tuning presets x benchmarks, every step cached by content hash and cost-accounted.
"""

__version__ = "0.1.0"
