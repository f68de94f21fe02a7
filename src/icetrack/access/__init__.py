"""Data access shared by the query, fetch and reference steps: image sources and STAC
clients (:mod:`.sources`), cloud rules (:mod:`.clouds`), local files as a static
catalogue (:mod:`.local_files`), HTTP settings and credentials (:mod:`.http`) and the
download cache (:mod:`.download`)."""
