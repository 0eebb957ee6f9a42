"""Analysis: py-feat's networks on a backend (detect → crop → multitask → ArcFace) and the tracker that
keeps each person's id across frames."""
