"""Test doubles: small files and objects in the layouts of external tools."""
