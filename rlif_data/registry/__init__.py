"""Versioned datasets: a registry of immutable TFDS dataset versions, tags, lineage, sharing."""
