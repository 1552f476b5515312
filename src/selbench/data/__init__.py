"""Canonical instruction data: one loader per source, Parquet + manifest output."""

from selbench.data.schema import Example, example_id, read_examples, write_examples

__all__ = ["Example", "example_id", "read_examples", "write_examples"]
