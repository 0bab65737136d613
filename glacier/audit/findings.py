"""What ``glacier inspect`` concludes: one verdict per finding, saying what preprocess (or
predict) will do about it. What preprocess refuses (inf, stray labels, swapped mask channels,
a scene without CRS) is always listed; the shares below only decide what is worth a line."""

from __future__ import annotations

from glacier.audit.report import BandTally, Finding, InspectReport
from glacier.domain import describe_stray_labels

SATURATED_WORTH_A_LINE = 0.001
ZEROS_WORTH_A_LINE = 0.01
FILL_ACTION = (
    "preprocess leaves them out of the band statistics and --min-valid and ignores them in training; "
    "predict and solution.py call them background"
)


def _pct(share: float) -> str:
    return f"{100 * share:.2f}%"


def _band_findings(band: BandTally) -> list[Finding]:
    found = []
    if band.infs:
        example = band.infinite_files[0]
        found.append(
            Finding(band.name, f"{band.infs} infinite value(s) in {len(band.infinite_files)} file(s), e.g. {example}",
                    "preprocess refuses these files: replace inf with NaN or the nodata value")
        )  # fmt: skip
    for value in sorted(band.nodata):
        found.append(Finding(band.name, f"nodata tag {value:g}", "pixels equal to it are fill"))
    level, saturated = band.saturation()
    if level is not None and saturated >= SATURATED_WORTH_A_LINE:
        found.append(
            Finding(band.name, f"{_pct(saturated)} of valid pixels at {level} (saturated: Landsat 7 saturates over snow)",
                    "kept as they are: they are real bright surfaces, and the statistics include them")
        )  # fmt: skip
    if band.valid and band.minimum == band.maximum:
        found.append(
            Finding(band.name, f"every valid pixel is {band.minimum:g}",
                    "its std is 0: standardisation divides by 1 and the band tells the model nothing")
        )  # fmt: skip
    if band.valid_zeros / max(band.pixels, 1) >= ZEROS_WORTH_A_LINE:
        found.append(
            Finding(band.name, f"{_pct(band.valid_zeros / band.pixels)} zeros at pixels that are not fill",
                    "kept as data: only a pixel that is 0 in every band is fill")
        )  # fmt: skip
    return found


def _label_findings(report: InspectReport) -> list[Finding]:
    found = []
    if report.labels is None:
        found.append(
            Finding(
                "labels",
                "no labels/ folder",
                "test data: predict reads it; preprocess needs labels (training data)",
            )
        )
    if report.stray_labels:
        moved = sum(n for _, n in report.stray_labels)
        found.append(
            Finding("labels", describe_stray_labels(report.stray_labels),
                    f"preprocess refuses them; --snap-labels moves them to the nearest class value ({moved} px)")
        )  # fmt: skip
    if report.labelled_at_fill:
        found.append(
            Finding("labels", f"{report.labelled_at_fill} pixels labelled as a glacier class lie on fill",
                    "unlabelled (ignored) in training, background in predictions")
        )  # fmt: skip
    check = report.mask_check
    if check is not None and check.status == "swapped":
        found.append(
            Finding("mask channels", f"probably swapped: {check.figures()}",
                    "preprocess refuses: pass --swap-mask-channels if they are swapped, --no-mask-check if not")
        )  # fmt: skip
    elif check is not None and check.status in ("ok", "mixed"):
        action = "preprocess proceeds" + (
            "; the two signs disagree, look at the labels" if check.status == "mixed" else ""
        )
        found.append(Finding("mask channels", f"{check.status}: {check.figures()}", action))
    return found


def findings(report: InspectReport) -> list[Finding]:
    """Every verdict of ``report``, data first, then bands, labels and sizes."""
    found = []
    if report.fill_pixels:
        found.append(
            Finding("fill", f"{_pct(report.fill_fraction)} of pixels ({report.images_with_fill} of "
                    f"{report.images_read} images read) are 0 in every band, NaN or nodata", FILL_ACTION)
        )  # fmt: skip
    for band in report.bands:
        found.extend(_band_findings(band))
    found.extend(_label_findings(report))
    if len(report.sizes) > 1:
        sizes = ", ".join(f"{h} x {w} ({n})" for (h, w), n in sorted(report.sizes.items()))
        found.append(
            Finding(
                "sizes", f"{len(report.sizes)} image sizes: {sizes}", "preprocess pads edge tiles with ignore"
            )
        )
    found.extend(report.layout_findings)
    if not found:
        found.append(Finding("data", "nothing unusual found", "preprocess uses it as it is"))
    return found
