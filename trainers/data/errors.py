"""Errors raised while turning datasets into transitions, buffers and batches.

Each is an `RlifDataError` (and a `ValueError`), so the CLI prints its one-line
message and exits with code 2.
"""

from rlif_data import errors


class TransitionDataError(errors.RlifDataError, ValueError):
    """Data cannot be used as trainer transitions; the message says what and how to fix it."""


class NonFiniteTransitionError(TransitionDataError):
    """A transition holds NaN or inf; the message names dataset, episode and step."""


class SpecMismatchError(TransitionDataError):
    """Two sources disagree on the observation or action spec; the message names both."""


class RewardModeError(TransitionDataError):
    """A reward mode is unknown or the dataset cannot provide it (e.g. 'rlif' on raw logs)."""


class EmptyTransitionsError(TransitionDataError):
    """A load or a sample would produce no transitions at all."""
