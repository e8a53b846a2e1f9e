"""Learners: RLPD (`trainers.agents.rlpd`) and BC / HG-DAgger / DAgger (`trainers.agents.bc`)."""
