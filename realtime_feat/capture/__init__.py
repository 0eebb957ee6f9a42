"""Capture: where frames come from (cameras and their modes, files, stream URLs, image folders), the
capture thread that stamps every frame as it leaves the source, and the readers of `process`'s inputs."""
