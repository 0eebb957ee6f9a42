"""The session viewer's controls, holding intent, not logic: its keyboard table, the people panel (rename,
merge, unmerge), the annotations panel (events and exclusion spans) and the epochs dialog. The viewer
window turns each intent into one call on the session review."""
from __future__ import annotations

import pandas as pd
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QFormLayout, QGridLayout, QHBoxLayout,
                               QHeaderView, QLineEdit, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from realtime_feat.review.epochs import join_labels

from .controls import OVERLAY_SHORTCUTS, Shortcut
from .timeseries import PALETTE


SHORTCUTS = (
    Shortcut("Space", "toggle_play", None, "play / pause at the recorded timing"),
    Shortcut("Right", "step", 1, "next frame"),
    Shortcut("Left", "step", -1, "previous frame"),
    Shortcut("Shift+Right", "jump", 1.0, "1 s later"),
    Shortcut("Shift+Left", "jump", -1.0, "1 s earlier"),
    Shortcut("PgDown", "jump", 10.0, "10 s later"),
    Shortcut("PgUp", "jump", -10.0, "10 s earlier"),
    Shortcut("Home", "seek_time", 0.0, "the first frame"),
    Shortcut("N", "next_marker", 1, "the next marker or event"),
    Shortcut("Shift+N", "next_marker", -1, "the previous marker or event"),
    Shortcut("E", "add_event", None, "an event at the cursor (asks for its label)"),
    Shortcut("[", "span_start", None, "an exclusion span starts at the cursor"),
    Shortcut("]", "span_end", None, "the exclusion span ends at the cursor (asks for its label)"),
    Shortcut("Delete", "delete_annotation", None, "delete the annotation selected in the list"),
    *OVERLAY_SHORTCUTS,
    Shortcut("Ctrl+E", "export_epochs", None, "export epochs around markers (CSV)"),
    Shortcut("Ctrl+R", "export_report", None, "write the session's report (HTML)"),
    Shortcut("F1", "show_help", None, "this help (Shift+drag on a plot: an exclusion span; drag a span or "
                                      "event to move it; click a plot to seek)"),
    Shortcut("Ctrl+W", "close", None, "close the viewer"),
)


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setSelectionBehavior(QAbstractItemView.SelectRows)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _cell(text, editable: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(str(text))
    if not editable:
        item.setFlags(item.flags() & ~Qt.ItemIsEditable)
    return item


class PeoplePanel(QWidget):
    """Each confirmed track: its person (editable: a rename), colour, rows and when it was seen."""

    renamed = Signal(int, str)        # track, new name
    mergeRequested = Signal(list)     # tracks
    unmergeRequested = Signal(int)    # track
    trackChosen = Signal(int)         # a track clicked: follow it in the panels

    def __init__(self):
        super().__init__()
        self.table = _table(["track", "person", "rows", "seen (s)"])
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.itemChanged.connect(self._edited)
        self.table.itemSelectionChanged.connect(self._chosen)
        self.merge = QPushButton("Merge selected (one person)")
        self.unmerge = QPushButton("Unmerge")
        self.unmerge.setToolTip("A merged track (shown as 7 → 3) becomes its own person again; on the track others "
                                "were merged into, each of them does")
        self.merge.clicked.connect(lambda: self.mergeRequested.emit(self.selected()))
        self.unmerge.clicked.connect(lambda: [self.unmergeRequested.emit(t) for t in self.selected()])
        buttons = QHBoxLayout()
        buttons.addWidget(self.merge)
        buttons.addWidget(self.unmerge)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        self.tracks: list[int] = []

    def set_people(self, people: pd.DataFrame, colours: dict[str, int]) -> None:
        self.table.blockSignals(True)
        self.table.setRowCount(len(people))
        self.tracks = [int(t) for t in people["track_id"]]
        for row, p in enumerate(people.itertuples()):
            merged = f" → {p.into}" + (f" (own name: {p.own})" if p.own else "") if p.into != p.track_id else ""
            self.table.setItem(row, 0, _cell(f"{p.track_id}{merged}"))
            name = _cell(p.person, editable=True)
            name.setForeground(QColor(*PALETTE[colours.get(p.person, 0) % len(PALETTE)]))
            self.table.setItem(row, 1, name)
            self.table.setItem(row, 2, _cell(p.rows))
            self.table.setItem(row, 3, _cell(f"{p.first:.1f}–{p.last:.1f}"))
        self.table.blockSignals(False)

    def selected(self) -> list[int]:
        return [self.tracks[r] for r in sorted({i.row() for i in self.table.selectedIndexes()})]

    def _edited(self, item: QTableWidgetItem) -> None:
        if item.column() == 1:
            self.renamed.emit(self.tracks[item.row()], item.text())

    def _chosen(self) -> None:
        tracks = self.selected()
        if len(tracks) == 1:
            self.trackChosen.emit(tracks[0])


class AnnotationsPanel(QWidget):
    """Review's events and exclusion spans: label and person editable in place; a double click seeks."""

    edited = Signal(int, str, str)    # index, label, person
    chosen = Signal(int)              # double-clicked: seek to it

    def __init__(self):
        super().__init__()
        self.table = _table(["kind", "label", "from (s)", "to (s)", "person"])
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.itemChanged.connect(self._edited)
        self.table.itemDoubleClicked.connect(lambda item: self.chosen.emit(item.row()))
        self.add_event = QPushButton("Event at cursor  (E)")
        self.start_span = QPushButton("Exclude from  ([)")
        self.end_span = QPushButton("…to  (])")
        self.delete = QPushButton("Delete  (Del)")
        grid = QGridLayout()
        for i, button in enumerate((self.add_event, self.start_span, self.end_span, self.delete)):
            grid.addWidget(button, i // 2, i % 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(grid)

    def set_annotations(self, items: list, t0: float) -> None:
        self.table.blockSignals(True)
        self.table.setRowCount(len(items))
        for row, a in enumerate(items):
            self.table.setItem(row, 0, _cell(a.kind))
            self.table.setItem(row, 1, _cell(a.label, editable=True))
            self.table.setItem(row, 2, _cell(f"{a.t_start - t0:.3f}"))
            self.table.setItem(row, 3, _cell(f"{a.t_end - t0:.3f}"))
            self.table.setItem(row, 4, _cell(a.person, editable=a.kind == "exclude"))
        self.table.blockSignals(False)

    def selected(self) -> int:
        rows = {i.row() for i in self.table.selectedIndexes()}
        return rows.pop() if rows else -1

    def select(self, index: int) -> None:
        self.table.selectRow(index)

    def _edited(self, item: QTableWidgetItem) -> None:
        row = item.row()
        self.edited.emit(row, self.table.item(row, 1).text(), self.table.item(row, 4).text())


class EpochsDialog(QDialog):
    """Marker labels, window and baseline for `epochs` (the same texts the command line takes)."""

    def __init__(self, labels: list[str], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export epochs")
        self.markers = QLineEdit(join_labels(labels))
        self.window = QLineEdit("-1,3")
        self.baseline = QLineEdit("", placeholderText="e.g. -1,0 (empty: none)")
        form = QFormLayout(self)
        form.addRow("Markers (labels, comma-separated; \"quote, one\" with a comma)", self.markers)
        form.addRow("Window (s around each)", self.window)
        form.addRow("Baseline (s around each)", self.baseline)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
