"""Output streams and the sink that receives a command's lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

Stream = Literal["stdout", "stderr", "info", "error"]

OutputSink = Callable[[Stream, list[str]], None]
"""Receives complete lines (no trailing newline) in batches, each batch tagged with its stream.

Called from worker threads; a front end must only hand the batch over (e.g. post a message)."""
