"""Canonical instruction data: one loader per source, Parquet + manifest output."""

from selbench.data.schema import (
    Example,
    dataset_sha256,
    example_id,
    read_examples,
    rows_sha256,
    write_examples,
)

__all__ = ["Example", "dataset_sha256", "example_id", "read_examples", "rows_sha256", "write_examples"]
