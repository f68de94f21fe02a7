"""Step 1: the scenes over a glacier, with the cloud fraction over the glacier
(:mod:`.scenes`), and the image pairs chosen from them (:mod:`.pairs`)."""

from icetrack.query.pairs import select_pairs
from icetrack.query.scenes import QueryError, query_scenes

__all__ = ["QueryError", "query_scenes", "select_pairs"]
