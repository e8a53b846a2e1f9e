"""Imitation baselines (BC, HG-DAgger, DAgger): one learner, three data views."""

from trainers.agents.bc.learner import BCLearner, bc_loss

__all__ = ["BCLearner", "bc_loss"]
