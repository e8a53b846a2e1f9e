"""rlif-data: record interventions as RLDS, build datasets, train RLIF agents."""
from rlif_data.version import __version__
