"""Step 4: texture filters that bring out trackable features, NaN-aware (:mod:`.texture`)."""

from icetrack.filter.texture import apply_filter, band_descriptions

__all__ = ["apply_filter", "band_descriptions"]
