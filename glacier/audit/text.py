"""The terminal layout of an inspect report: a header, one table row per band, the labels,
then the verdicts."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from glacier.audit.report import InspectReport

COLUMNS = (
    ("band", "band", 22), ("dtype", "dtype", 8), ("nodata", "nodata", 7), ("min", "min", 9),
    ("p1", "p1", 9), ("p50", "p50", 9), ("p99", "p99", 9), ("max", "max", 9), ("fill", "fill_fraction", 7),
    ("zero", "zero_fraction", 7), ("NaN", "nan_fraction", 7), ("inf", "inf_fraction", 7),
    ("saturated", "saturated_fraction", 10),
)  # fmt: skip


def _cell(key: str, value) -> str:
    if value is None:
        return "-"
    if key.endswith("fraction"):
        return f"{100 * value:.2f}%"
    if isinstance(value, list):
        return ",".join(f"{v:g}" for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _ids(ids: list[str]) -> str:
    shown = ", ".join(ids[:5]) + (f", ..., {ids[-1]}" if len(ids) > 5 else "")
    return f"{len(ids)} image{'s' if len(ids) != 1 else ''}: {shown}"


def report_text(report: InspectReport) -> str:
    """The whole report as lines of text."""
    sizes = ", ".join(f"{h} x {w} px ({n})" for (h, w), n in sorted(report.sizes.items()))
    lines = [
        f"{report.source}: {report.layout}, {_ids(report.ids)}",
        f"sizes: {sizes}; pixels: {report.sampling}",
        f"fill (0 in every band, NaN or nodata): {100 * report.fill_fraction:.2f}% of pixels read, "
        f"in {report.images_with_fill} of {report.images_read} images",
        "",
        "  ".join(title.ljust(width) for title, _, width in COLUMNS).rstrip(),
    ]
    for band in report.bands:
        row = band.to_dict()
        lines.append("  ".join(_cell(key, row[key]).ljust(width) for _, key, width in COLUMNS).rstrip())
    lines.append("")
    if report.labels is not None:
        total = max(sum(report.labels.values()), 1)
        shares = ", ".join(f"{name} {100 * n / total:.2f}%" for name, n in report.labels.items())
        where = " (outside fill)" if report.layout.startswith("hkh") else ""
        lines.append(f"labels{where}: {shares}")
    if report.mask_check is not None:
        lines.append(report.mask_check.describe())
    lines.append("verdicts:")
    lines.extend(f"- {finding.line()}" for finding in report.findings)
    return "\n".join(lines)
