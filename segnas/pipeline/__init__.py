"""The pipeline as data: its stages, their code dependencies and the digests of their outputs.

Import from the submodules; this file imports none of them.
"""
