"""segnas: template-based search of compact semantic segmentation architectures."""

__version__ = "0.1.0"
