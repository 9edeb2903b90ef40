"""The documents of the commit being deployed, and whether it is the commit the operator reviewed.

The checklist asks for MIGRATION_FIX_SUMMARY.md and MIGRATION_ANALYSIS.md to be read: they are read as they
are in the target commit, from the operator's local clone (``[app] local_repo``, GitPython) when it has
that commit, else on the host (``git show``). With a local clone the commit the host fetched is compared
with the clone's HEAD, and the commits and migration files between the host's HEAD and the target are
listed. Blocking (git, SSH): call it from a worker thread. Text is returned as read: front ends make it
inert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from todobox_deploy.checklist.data import DOCS
from todobox_deploy.config import AppConfig, DeployConfig
from todobox_deploy.core.context import DeployContext
from todobox_deploy.engine.flow import describe

if TYPE_CHECKING:
    from git import Repo

    from todobox_deploy.remote.connection import CommandResult

NOT_FETCHED = "available after the pre-flight fetched the target commit"
MAX_BYTES = 1_000_000
MAX_COMMITS = 200


class HostGit(Protocol):
    """What reading on the host needs (a :class:`DeploySession`)."""

    def capture(
        self,
        argv: Sequence[str] | str,
        *,
        stdin: bytes | None = None,
        timeout: float | None = 60.0,
        display: str | None = None,
        record: bool = True,
    ) -> CommandResult: ...


@dataclass(frozen=True)
class Revision:
    sha: str
    label: str  # what this commit is, e.g. "the target commit, fetched by the pre-flight"


@dataclass(frozen=True)
class CommitDoc:
    """One document as read (``text``), or why it could not be (``problem``, said plainly)."""

    path: str
    where: str  # "your local clone /path" or "the host"
    commit: Revision | None
    text: str | None
    problem: str | None = None


@dataclass(frozen=True)
class CommitCheck:
    """The host's target against the local clone's HEAD, and what lies between the host's HEAD and it."""

    same: bool | None  # None: cannot compare (yet)
    summary: str
    commits: tuple[tuple[str, str], ...] = ()  # (short sha, subject), oldest first
    migration_files: tuple[str, ...] = ()  # "A<TAB>migrations/versions/x.py" (git diff --name-status)
    range_note: str = ""  # why the range is not listed, or its bounds


@dataclass(frozen=True)
class DocsReading:
    item: str
    doc: CommitDoc
    check: CommitCheck | None  # None: no local clone configured

    def to_json(self) -> dict[str, Any]:
        """What the journal keeps of a reading (not the document's text)."""
        return {
            "item": self.item,
            "path": self.doc.path,
            "commit": self.doc.commit.sha if self.doc.commit else None,
            "where": self.doc.where,
            "found": self.doc.text is not None,
            "problem": self.doc.problem,
            "same_commit": self.check.same if self.check else None,
            "check": self.check.summary if self.check else None,
        }


def _short(sha: str) -> str:
    return sha[:12]


# -- on the host ------------------------------------------------------------------------------------


def _host_git(host: HostGit, app: AppConfig, *args: str) -> CommandResult:
    from todobox_deploy.engine.flask_cli import app_command  # loads only when the host is read

    argv = ["git", *args]
    return host.capture(app_command(app, argv), timeout=30, display=" ".join(argv), record=False)


def _host_rev(host: HostGit, app: AppConfig, ref: str) -> str | None:
    res = _host_git(host, app, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    sha = res.stdout.strip()
    return sha if res.exit_status == 0 and sha else None


def host_target(config: DeployConfig, context: DeployContext, host: HostGit | None) -> Revision | None:
    """The commit the deploy moves to: the pre-flight's, else the upstream branch as last fetched."""
    if context.commit_target:
        return Revision(context.commit_target, "the target commit, fetched by the pre-flight")
    if host is None:
        return None
    app = config.app
    upstream = f"{app.git_remote}/{app.git_branch}"
    sha = _host_rev(host, app, f"refs/remotes/{upstream}")
    if sha is None:
        return None
    return Revision(sha, f"{upstream} as last fetched on the host (the pre-flight fetches it again)")


def _read_on_host(host: HostGit, app: AppConfig, rev: Revision, path: str) -> CommitDoc:
    where = "the host"
    spec = f"{rev.sha}:{path}"
    size = _host_git(host, app, "cat-file", "-s", spec)
    if size.exit_status != 0:
        err = size.stderr.strip()
        if "does not exist" in err or "exists on disk, but not in" in err:
            return CommitDoc(path, where, rev, None, f"{path} is not in commit {_short(rev.sha)}")
        return CommitDoc(path, where, rev, None, f"cannot read {path}: {err or f'exit {size.exit_status}'}")
    try:
        too_big = int(size.stdout.strip()) > MAX_BYTES
    except ValueError:
        too_big = False
    if too_big:
        return CommitDoc(path, where, rev, None, f"{path} is larger than {MAX_BYTES} bytes: not shown")
    shown = _host_git(host, app, "show", spec)
    if shown.exit_status != 0:
        err = shown.stderr.strip() or f"exit {shown.exit_status}"
        return CommitDoc(path, where, rev, None, f"cannot read {path}: {err}")
    return CommitDoc(path, where, rev, shown.stdout)


# -- in the local clone -----------------------------------------------------------------------------


def _open_clone(path: Path) -> Repo:
    from git import Repo  # GitPython loads only when a local clone is configured

    return Repo(path)


def _local_sha(repo: Repo, sha: str) -> str | None:
    """The full sha of ``sha`` when the clone has that commit, else None."""
    try:
        return str(repo.commit(sha).hexsha)
    except Exception:
        return None


def _read_local(repo: Repo, where: str, rev: Revision, path: str) -> CommitDoc:
    try:
        tree = repo.commit(rev.sha).tree
    except Exception as exc:
        return CommitDoc(path, where, rev, None, f"cannot read commit {_short(rev.sha)}: {describe(exc)}")
    try:
        blob = tree / path
    except KeyError:
        return CommitDoc(path, where, rev, None, f"{path} is not in commit {_short(rev.sha)}")
    if blob.type != "blob":
        return CommitDoc(path, where, rev, None, f"{path} is not a file in commit {_short(rev.sha)}")
    if blob.size > MAX_BYTES:
        return CommitDoc(path, where, rev, None, f"{path} is larger than {MAX_BYTES} bytes: not shown")
    data: bytes = blob.data_stream.read()
    return CommitDoc(path, where, rev, data.decode("utf-8", errors="replace"))


def _head(repo: Repo) -> tuple[str, str]:
    """(HEAD's sha, " on branch X" or " (detached)")."""
    sha = str(repo.head.commit.hexsha)
    branch = "" if repo.head.is_detached else f" on branch {repo.active_branch.name}"
    return sha, branch or " (detached)"


def _compare(repo: Repo, target: Revision | None, head: str, branch: str) -> tuple[bool | None, str]:
    mine = f"your clone's HEAD {_short(head)}{branch}"
    if target is None:
        return None, f"the host's target commit is not known yet ({NOT_FETCHED}); {mine}"
    if _local_sha(repo, target.sha) is None:
        return False, (
            f"DIFFERENT: the host deploys {_short(target.sha)} ({target.label}), which is not in your clone "
            f"(fetch there to review it); {mine}"
        )
    if target.sha == head:
        return (
            True,
            f"same commit {_short(head)}: the code you reviewed ({mine}) is the code the host deploys",
        )
    if repo.is_ancestor(repo.commit(target.sha), repo.commit(head)):
        how = "an ancestor of your HEAD: the host deploys older code than you reviewed"
    elif repo.is_ancestor(repo.commit(head), repo.commit(target.sha)):
        how = "ahead of your HEAD: the host deploys commits you have not checked out"
    else:
        how = "on another line than your HEAD"
    return False, f"DIFFERENT: the host deploys {_short(target.sha)} ({target.label}), {how}; {mine}"


def _range(
    repo: Repo, config: DeployConfig, base: str | None, target: Revision | None
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...], str]:
    if base is None or target is None:
        return (), (), "the host's HEAD and target are not both known yet"
    missing = [s for s in (base, target.sha) if _local_sha(repo, s) is None]
    if missing:
        return (), (), f"not in your clone: {', '.join(_short(s) for s in missing)}"
    commits = tuple(
        (_short(str(c.hexsha)), str(c.summary))
        for c in repo.iter_commits(f"{base}..{target.sha}", max_count=MAX_COMMITS)
    )[::-1]
    diff = repo.git.diff("--name-status", base, target.sha, "--", config.migration.migrations_dir)
    files = tuple(line for line in str(diff).splitlines() if line.strip())
    return commits, files, f"{_short(base)} (the host's HEAD) .. {_short(target.sha)} (the target)"


def _host_head(config: DeployConfig, context: DeployContext, host: HostGit | None) -> str | None:
    if context.commit_before:
        return context.commit_before
    return _host_rev(host, config.app, "HEAD") if host is not None else None


# -- the reading ------------------------------------------------------------------------------------


def read_docs(
    item_id: str, config: DeployConfig, context: DeployContext, host: HostGit | None
) -> DocsReading:
    """The document ``DOCS[item_id]`` at the target commit, and the commit check (never raises)."""
    path = DOCS[item_id]
    try:
        target = host_target(config, context, host)
    except Exception as exc:
        target = None
        reach = f"cannot reach the host: {describe(exc)}"
    else:
        reach = "" if host is not None else "no connection to the host"
    local = config.app.local_repo
    if local is None:
        return DocsReading(item_id, _doc_from_host(config, host, target, path, reach), None)
    where = f"your local clone {local}"
    try:
        repo = _open_clone(local)
        head, branch = _head(repo)
    except Exception as exc:
        check = CommitCheck(None, f"cannot open the local clone {local}: {describe(exc)}")
        return DocsReading(item_id, _doc_from_host(config, host, target, path, reach), check)
    with repo:
        same, summary = _compare(repo, target, head, branch)
        try:
            commits, files, note = _range(repo, config, _host_head(config, context, host), target)
        except Exception as exc:
            commits, files, note = (), (), f"cannot list the commits: {describe(exc)}"
        check = CommitCheck(same, summary, commits, files, note)
        if target is None:
            rev = Revision(head, f"your clone's HEAD{branch}: the host's target is not known yet")
            doc = _read_local(repo, where, rev, path)
        elif _local_sha(repo, target.sha) is not None:
            doc = _read_local(repo, where, target, path)
        else:
            doc = _doc_from_host(config, host, target, path, reach)
    return DocsReading(item_id, doc, check)


def _doc_from_host(
    config: DeployConfig, host: HostGit | None, target: Revision | None, path: str, reach: str
) -> CommitDoc:
    if target is None:
        return CommitDoc(path, "", None, None, f"{NOT_FETCHED} ({reach})" if reach else NOT_FETCHED)
    if host is None:
        return CommitDoc(path, "", target, None, f"{path}: {reach}")
    try:
        return _read_on_host(host, config.app, target, path)
    except Exception as exc:
        return CommitDoc(path, "the host", target, None, f"cannot read {path} on the host: {describe(exc)}")
