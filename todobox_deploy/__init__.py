"""todobox-deploy: a guided, gated and auditable deploy wizard for a Flask + MySQL app."""

__version__ = "0.1.0"
