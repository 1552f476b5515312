"""Offline assets: packaged models and datasets, and one function that resolves any model spec."""
