"""Flax networks of the trainers: MLP trunk, critic ensemble, tanh-Gaussian actor."""

from trainers.networks import tanh_normal
from trainers.networks.actor import LOG_STD_HEAD, MEAN_HEAD, TanhGaussianActor
from trainers.networks.ensemble import (
    CriticEnsemble,
    QNetwork,
    sample_subset,
    subsample_ensemble,
)
from trainers.networks.mlp import MLP

__all__ = [
    "MLP",
    "QNetwork",
    "CriticEnsemble",
    "TanhGaussianActor",
    "MEAN_HEAD",
    "LOG_STD_HEAD",
    "sample_subset",
    "subsample_ensemble",
    "tanh_normal",
]
