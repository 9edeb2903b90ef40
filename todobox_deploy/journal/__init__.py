"""The session journal: a hash-chained JSON-lines audit trail (``journal``), its verification (``verify``)
and its Markdown report (``report``).

Standard library only: this package sits below the engine and the TUI. Import from the modules: the
wizard needs only ``journal`` before its first frame.
"""
