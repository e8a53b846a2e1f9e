"""Robot sessions: SpaceMouse input, robot environment interface, session recording."""
