"""Running on a cluster: each job's memory and run time from its data (:mod:`.resources`)."""
