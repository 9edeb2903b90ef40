"""The docs of the commit in the details panel: which commit, from where, the commit check, the document.

Everything but the document is shown literally (``for_markdown``); the document is rendered as Markdown
with its control characters made inert (``for_markdown_document``).
"""

from __future__ import annotations

from todobox_deploy.checklist.data import DOCS
from todobox_deploy.engine.docs import CommitCheck, DocsReading
from todobox_deploy.tui.text import for_markdown, for_markdown_document


def loading_markdown(item_id: str) -> str:
    return f"*Reading {for_markdown(DOCS[item_id])} as it is in the target commit…*"


def _check_markdown(check: CommitCheck) -> list[str]:
    mark = {True: "✔", False: "✘", None: "?"}[check.same]
    return ["", f"**Commit check:** {mark} {for_markdown(check.summary)}"]


def _range_markdown(check: CommitCheck) -> list[str]:
    lines = ["", "---", "", f"**Between the host's HEAD and the target:** {for_markdown(check.range_note)}"]
    if check.commits:
        lines += [""] + [f"- {for_markdown(sha)} {for_markdown(subject)}" for sha, subject in check.commits]
    if check.migration_files:
        lines += ["", "**Migration files changed:**", ""]
        lines += [f"- {for_markdown(' '.join(f.split()))}" for f in check.migration_files]
    elif check.commits:
        lines += ["", "**Migration files changed:** none"]
    return lines


def docs_markdown(reading: DocsReading) -> str:
    """The reading as the details panel's Markdown (after the node's own text): which commit, the commit
    check, the document, then the commits and migration files between the host's HEAD and the target."""
    doc = reading.doc
    lines = ["", "---", "", f"### {for_markdown(doc.path)}", ""]
    if doc.commit is not None:
        where = f" from {for_markdown(doc.where)}" if doc.where else ""
        lines.append(f"Commit {for_markdown(doc.commit.sha[:12])} ({for_markdown(doc.commit.label)}){where}")
    if reading.check is not None:
        lines += _check_markdown(reading.check)
    else:
        lines += ["", "*Set `[app] local_repo` to your local clone to check this commit against it.*"]
    lines += ["", "*z: zoom this panel to read.*", "", "---", ""]
    if doc.text is None:
        lines.append(f"**Not shown:** {for_markdown(doc.problem or 'unknown reason')}")
    elif not doc.text.strip():
        lines.append(f"*{for_markdown(doc.path)} is empty in this commit.*")
    else:
        lines.append(for_markdown_document(doc.text))
    if reading.check is not None and (reading.check.range_note or reading.check.commits):
        lines += ["", *_range_markdown(reading.check)]
    return "\n".join(lines)
