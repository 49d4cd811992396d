"""Subcommands of the ``segnas`` console script; each module exposes ``register(subparsers)``."""
