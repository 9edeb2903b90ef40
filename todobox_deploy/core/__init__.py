"""The dependency-free bottom layer: the vocabulary every other package shares.

Output streams and sinks, phase statuses and outcomes, the typed deploy context and env-file parsing.
Imports nothing but the standard library; every other package may import it.
"""
