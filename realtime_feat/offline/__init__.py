"""Offline: `process` of videos, image sets and recorded sessions, every frame in batches, on this
machine or a Ray cluster."""
