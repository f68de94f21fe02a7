"""Reference velocity to compare with: ITS_LIVE datacubes and mosaics (:mod:`.itslive`)."""
