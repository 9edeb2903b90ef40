"""The exit codes of ``todobox-deploy run`` and ``rollback`` (documented in the README and ``--help``)."""

from __future__ import annotations

OK = 0  # every phase confirmed and the success criteria met
PHASE_FAILED = 1  # a phase failed; the message says what state the host is in
USAGE = 2  # bad usage or config
NEEDS_PERSON = 3  # stopped at a gate that needs a person (not automated, answered no, end of input)
LOCKED = 4  # the host is locked by another deploy
CONNECTION = 255  # connection or host-key failure

HELP = """exit codes:
  0    every phase confirmed and the success criteria met
  1    a phase failed (the message says what state the host is in)
  2    bad usage or config
  3    stopped at a gate that needs a person (not automated, answered no, or end of input)
  4    the host is locked by another deploy
  255  connection or host-key failure"""
