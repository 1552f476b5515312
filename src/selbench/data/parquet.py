"""A Parquet file of flat records, with the same field mapping as `jsonl` (`--field output=completion`)."""

from __future__ import annotations

from selbench.data.jsonl import mapped_loader

LOADER = mapped_loader("parquet")
