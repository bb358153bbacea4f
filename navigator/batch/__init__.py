"""Batch planning over many subjects on Dask (`navigator batch CONFIG.toml`)."""
