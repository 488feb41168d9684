"""Fitting models: pipelines, the in-memory and streaming fitters, search over rolling origins, calibration."""

__all__ = ["calibration", "in_memory", "pipeline", "rolling", "streaming"]
