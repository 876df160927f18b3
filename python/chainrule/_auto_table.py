"""Measured seconds per training step behind ``backend="auto"``."""

TABLE = {}
