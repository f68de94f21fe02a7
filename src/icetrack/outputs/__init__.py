"""Outputs: the per-pair CF NetCDF (:mod:`.netcdf`) and GeoTIFFs (:mod:`.geotiff`), the
glacier's cube (:mod:`.cube`), point time series (:mod:`.timeseries`) and figures
(:mod:`.figures`)."""
