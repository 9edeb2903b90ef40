"""The session journal: a hash-chained JSON-lines audit trail, its verification and its Markdown report.

Standard library only: this package sits below the engine and the TUI.
"""

from todobox_deploy.journal.journal import GENESIS, Journal, first_entry, last_entry, line_hash, utc_now
from todobox_deploy.journal.report import journal_report, report_file
from todobox_deploy.journal.verify import JournalCheck, verify_entries, verify_journal

__all__ = [
    "GENESIS",
    "Journal",
    "JournalCheck",
    "first_entry",
    "journal_report",
    "last_entry",
    "line_hash",
    "report_file",
    "utc_now",
    "verify_entries",
    "verify_journal",
]
