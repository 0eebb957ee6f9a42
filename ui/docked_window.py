"""A main window whose panels are named docks and whose keys come from a table of shortcuts (the live
window and the session viewer)."""
from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget


class DockedWindow(QMainWindow):
    def __init__(self):
        super().__init__()
        self.docks: dict[str, QDockWidget] = {}

    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        self.docks[title] = dock
        return dock

    def _add_shortcuts(self, shortcuts, context) -> None:
        """One action per row of `shortcuts`, calling the window's method of that name (with its arg)."""
        for s in shortcuts:
            action = QAction(s.help, self)
            action.setShortcut(QKeySequence(s.key))
            action.setShortcutContext(context)
            method = getattr(self, s.action)
            action.triggered.connect(lambda _=False, m=method, a=s.arg: m() if a is None else m(a))
            self.addAction(action)
