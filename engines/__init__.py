"""Backend-specific code (installed as `realtime_feat.engines`): networks as plain tensor
functions, ONNX export with parity checks, runners per backend, and backend selection."""
from .base import Backend, Runner
from .select import available_backends, resolve_device, select_backend

__all__ = ["Backend", "Runner", "available_backends", "resolve_device", "select_backend"]
