"""The interpreter tuned while the process starts, until its front end is up (tests/bench_first_frame.py).

- **The cyclic garbage collector is off.** Starting the wizard builds some hundred thousand long-lived
  objects (modules, classes, the checklist, the widgets and their styles). Each young-generation pass
  scans them again and finds no garbage: about 130 passes and 30 ms before the first frame. At the end,
  what was built goes into the permanent generation (``gc.freeze``), so later passes skip it and stay
  short while phases stream. Reference counting frees everything else meanwhile; only a cycle made during
  startup waits, and it stays in the frozen set.
- **The thread switch interval is 1 ms instead of 5.** Textual hands each frame to a writer thread. While
  the main thread is busy building the rest of the screen, that thread waits for the GIL a whole switch
  interval at each step (wake up, write, flush): the first frame reached the terminal about 8 ms later.
"""

from __future__ import annotations

import gc
import sys

STARTUP_SWITCH_INTERVAL = 0.001
_saved_interval: float | None = None
_held_gc = False


def begin_startup() -> None:
    """Turn the cyclic collector off and shorten the switch interval, until :func:`end_startup`."""
    global _held_gc, _saved_interval
    if gc.isenabled():
        gc.disable()
        _held_gc = True
    if _saved_interval is None:
        _saved_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(_saved_interval, STARTUP_SWITCH_INTERVAL))


def end_startup() -> None:
    """Undo :func:`begin_startup` (freezing what was built); a no-op when startup has ended already."""
    global _held_gc, _saved_interval
    if _held_gc:
        _held_gc = False
        gc.freeze()
        gc.enable()
    if _saved_interval is not None:
        sys.setswitchinterval(_saved_interval)
        _saved_interval = None
