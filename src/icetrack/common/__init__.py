"""What every step shares: atomic writes (:mod:`.atomic`), the common grid (:mod:`.grid`),
raster and NetCDF I/O (:mod:`.rasters`), provenance records (:mod:`.provenance`), rule
logs and progress bars (:mod:`.logs`) and physical units (:mod:`.units`)."""
