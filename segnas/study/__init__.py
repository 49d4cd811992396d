"""A study of search strategies replicated over search seeds: its plan, one run (search plus
the final training of its best), and the aggregation of the committed runs."""
