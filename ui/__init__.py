"""The desktop app (PySide6 + pyqtgraph), installed as `realtime_feat.ui`: one window around one
`LiveSession`, using the library's public API only. The library never imports this package."""
