"""Apache Beam jobs over rlif_data: ingest, downsample, relabel, merge."""
