"""A trial: one architecture trained briefly and scored on meta-val, the search's reward.
``spec`` says what a trial runs, ``reward`` runs one, ``jobs`` runs many as stamped files."""
