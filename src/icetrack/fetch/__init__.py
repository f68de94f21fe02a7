"""Step 2: the glacier window of each scene, reprojected onto the common grid
(:mod:`.window`)."""

from icetrack.fetch.window import FetchError, fetch_date, reproject_to_grid

__all__ = ["FetchError", "fetch_date", "reproject_to_grid"]
