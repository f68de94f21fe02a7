"""Cloud rules: which pixels of a cloud/QA band are cloud, and which are fill.

Two encodings exist: classes (Sentinel-2 SCL: a pixel *is* class 8) and bit flags
(Landsat QA_PIXEL: a pixel *has* bit 3 set, whatever its other bits say). A rule is
``{"classes": [...]}`` or ``{"bits": [...], "fill_bits": [...]}``; snow/ice is never in
a rule, since it is the surface being tracked. Kept apart from :mod:`icetrack.access.sources`
(STAC clients, signing) so that reading pixels needs nothing but numpy.
"""

from __future__ import annotations

import numpy as np


def cloud_rule(source: dict) -> dict:
    """The source's cloud rule as ``{"classes": [...]}`` or ``{"bits": [...], "fill_bits": [...]}``."""
    if source.get("cloud_bits"):
        return {"bits": [int(b) for b in source["cloud_bits"]], "fill_bits": [int(b) for b in source.get("fill_bits", [])]}
    return {"classes": [int(c) for c in source.get("cloud_classes", [3, 8, 9, 10])]}


def _bit_mask(bits: list[int]) -> int:
    return sum(1 << b for b in bits)


def cloudy_pixels(values: np.ndarray, rule: dict) -> np.ndarray:
    """True where a cloud/QA band says cloud: a class in ``rule['classes']``, or any of the
    bit flags ``rule['bits']`` set (QA_PIXEL: bit tests, never class equality)."""
    if "bits" in rule:
        return (values.astype(np.int64) & _bit_mask(rule["bits"])) != 0
    return np.isin(values, rule["classes"])


def fill_pixels(values: np.ndarray, rule: dict) -> np.ndarray:
    """True where a bit-flag QA band marks fill (no data); classes have none beyond nodata."""
    if rule.get("fill_bits"):
        return (values.astype(np.int64) & _bit_mask(rule["fill_bits"])) != 0
    return np.zeros(values.shape, bool)
