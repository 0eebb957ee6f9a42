"""The one table each benchmark prints: a title line, then a Markdown table (pasteable into docs/BENCHMARKS.md)."""
from __future__ import annotations


def print_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    """Columns are as wide as their widest cell; the first is left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    print(f"# {title}")
    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
