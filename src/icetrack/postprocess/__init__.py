"""Step 6: from raw offsets to a velocity map one can trust — masks, stable-ground
correction, gap filling and errors (:mod:`.velocity`), the pair's outcome in words
(:mod:`.outcome`), the GLAFT quality metrics (:mod:`.quality`), and the whole step for one
pair (:mod:`.pair`)."""
