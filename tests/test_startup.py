"""The interpreter's startup tuning (core/startup.py): begun once, ended once, everything restored."""

from __future__ import annotations

import gc
import sys

from todobox_deploy.core.startup import STARTUP_SWITCH_INTERVAL, begin_startup, end_startup


def test_begin_and_end_restore_the_collector_and_the_switch_interval() -> None:
    interval = sys.getswitchinterval()
    assert gc.isenabled()
    try:
        begin_startup()
        begin_startup()  # a second begin changes nothing and is undone by the one end
        assert not gc.isenabled()
        assert sys.getswitchinterval() == STARTUP_SWITCH_INTERVAL
    finally:
        end_startup()
    assert gc.isenabled() and sys.getswitchinterval() == interval
    end_startup()  # a second end is a no-op
    assert gc.isenabled() and sys.getswitchinterval() == interval


def test_a_collector_turned_off_by_someone_else_stays_off() -> None:
    gc.disable()
    try:
        begin_startup()
        end_startup()
        assert not gc.isenabled()  # not ours to turn on
    finally:
        gc.enable()
