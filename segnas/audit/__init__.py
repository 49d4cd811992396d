"""The reward audit: how repeatable the search reward is across seeds, how well it ranks
architectures like their final training does, and what cheaper signals rank as well."""
