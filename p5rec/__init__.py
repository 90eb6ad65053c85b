"""p5rec: P5-style recommendation with one language model for every task."""

__version__ = "0.1.0"
