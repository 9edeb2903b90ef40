"""Migration files read from a commit on the host (never by importing the app), as a revision graph."""

from __future__ import annotations

import json
import posixpath

from todobox_deploy.config import AppConfig
from todobox_deploy.core.streams import CommandOutput
from todobox_deploy.engine.alembic_graph import RevisionGraph
from todobox_deploy.engine.flask_cli import app_command, app_python
from todobox_deploy.engine.session import DeploySession


def read_commit_files(session: DeploySession, commit: str, paths: list[str]) -> dict[str, str]:
    """The exact contents of ``paths`` at ``commit`` on the host, in one ``git cat-file --batch``."""
    if not paths:
        return {}
    request = "".join(f"{commit}:{p}\n" for p in paths).encode()
    result = session.capture(
        app_command(session.config.app, ["git", "cat-file", "--batch"]),
        stdin=request,
        display="git cat-file --batch",
    )
    data = result.stdout.encode("utf-8")
    files: dict[str, str] = {}
    pos = 0
    for path in paths:
        end = data.index(b"\n", pos)
        header = data[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[1] != b"blob":
            continue  # "missing": the caller reports the absent file
        size = int(header[2])
        files[path] = data[pos : pos + size].decode("utf-8", "replace")
        pos += size + 1
    return files


def graph_at_commit(session: DeploySession, commit: str, migrations_dir: str) -> tuple[RevisionGraph, str]:
    """The revision graph of ``<migrations_dir>/versions`` at ``commit`` (``HEAD``: the work tree's commit).

    Raises FileNotFoundError when the directory is not in that commit."""
    versions = posixpath.join(migrations_dir, "versions")
    res = session.capture(
        app_command(session.config.app, ["git", "ls-tree", "--name-only", f"{commit}:{versions}"]),
        display=f"git ls-tree {commit[:12]}:{versions}",
    )
    if res.exit_status != 0:
        raise FileNotFoundError(f"cannot list {versions} in {commit[:12]}: {res.stderr.strip()}")
    names = [n for n in res.stdout.splitlines() if n.endswith(".py")]
    files = read_commit_files(session, commit, [posixpath.join(versions, n) for n in names])
    return RevisionGraph.from_files(files), versions


_READ_DIR = """
import glob, json, os, sys
d = sys.argv[1]
if not os.path.isdir(d):
    sys.exit(f"no directory {d}")
files = {}
for p in sorted(glob.glob(os.path.join(d, "*.py"))):
    with open(p, encoding="utf-8", errors="replace") as fh:
        files[os.path.join(d, os.path.basename(p))] = fh.read()
print(json.dumps(files))
"""


def work_tree_read(app: AppConfig, migrations_dir: str) -> tuple[str, str]:
    """``(display, command)`` that prints the work tree's ``<migrations_dir>/versions/*.py`` as JSON."""
    versions = posixpath.join(migrations_dir, "versions")
    return f"read {versions}/*.py", app_command(app, [app_python(app), "-c", _READ_DIR, versions])


def graph_from_read(app: AppConfig, migrations_dir: str, res: CommandOutput) -> RevisionGraph:
    """The graph from :func:`work_tree_read`'s result; FileNotFoundError when the directory is missing."""
    versions = posixpath.join(migrations_dir, "versions")
    if res.exit_status != 0:
        raise FileNotFoundError(f"cannot read {versions} in {app.path}: {res.stderr.strip()}")
    return RevisionGraph.from_files(json.loads(res.stdout))


def graph_in_work_tree(session: DeploySession, migrations_dir: str) -> tuple[RevisionGraph, str]:
    """The revision graph of the files Alembic will read: ``<migrations_dir>/versions`` in the work tree,
    untracked files included. Raises FileNotFoundError when the directory is missing."""
    app = session.config.app
    display, command = work_tree_read(app, migrations_dir)
    res = session.capture(command, display=display)
    return graph_from_read(app, migrations_dir, res), posixpath.join(migrations_dir, "versions")


def history_lines(graph: RevisionGraph) -> list[str]:
    """The graph as ``flask db history`` prints it, newest first: ``down -> rev (head), path``."""
    heads = set(graph.heads())
    ordered = graph.ordered(graph.revisions)
    lines = []
    for rev in reversed(ordered):
        down = ", ".join(rev.down_revisions) or "<base>"
        mark = " (head)" if rev.revision in heads else ""
        lines.append(f"{down} -> {rev.revision}{mark}, {rev.path}")
    return lines
