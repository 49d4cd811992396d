"""Exceptions a user can cause; each message names the file, key or value and what to do."""


class SegnasError(Exception):
    """Base class for errors caused by user input or configuration."""


class GenotypeError(SegnasError, ValueError):
    """An architecture description is malformed or violates the search space."""


class ConfigError(SegnasError, ValueError):
    """A configuration value is missing, misspelt, of the wrong type or out of range."""


class DataError(SegnasError, ValueError):
    """A dataset file is missing, corrupt or inconsistent."""


class ArtifactError(SegnasError, RuntimeError):
    """A stored artifact (cache, checkpoint) does not match what the caller expects."""
