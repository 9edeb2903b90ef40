"""Checklist step "Back up the production database": a verified dump on the host, before anything changes.

Before: the schema's size against the free space of the backup directory (refused when it may not fit).
During: the dump runs detached on the host (it survives a dropped link); the password goes only over stdin.
After: the file is read back (exit statuses, non-empty, gzip integrity, the trailer, a CREATE TABLE for each
table, sha256) and recorded in the context only when every check passed; older backups are pruned.
"""

from __future__ import annotations

import dataclasses
import posixpath
import secrets as random
import shlex
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from todobox_deploy.config import Compression
from todobox_deploy.core.context import BackupRecord
from todobox_deploy.core.outcome import PhaseOutcome, PhaseStatus
from todobox_deploy.core.streams import OutputSink, Stream
from todobox_deploy.engine import backup_cmd as bc
from todobox_deploy.engine.phases.common import keep_stdout
from todobox_deploy.engine.phases.spec import PhaseCall
from todobox_deploy.remote.errors import CommandCancelled, HostUnreachable, LinkLost, RunStateUnknown
from todobox_deploy.remote.mysql import mysql_command

Facts = tuple[tuple[str, str], ...]
_TABLES_SQL = (
    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
    " AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME"
)
_SIZE_SQL = "SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"


@dataclasses.dataclass(frozen=True)
class ServerFacts:
    version: str
    tables: tuple[str, ...]
    estimate: int | None  # data + index bytes; None: cannot verify
    gtid_mode: str | None  # MySQL only

    @property
    def is_mariadb(self) -> bool:
        return "mariadb" in self.version.lower()


def _quiet(call: PhaseCall, script: str, display: str) -> tuple[int, list[str]]:
    """Run a host command; keep its stdout (not shown), pass stderr on to the operator."""
    out: list[str] = []

    def sink(stream: Stream, lines: list[str]) -> None:
        if stream == "stdout":
            out.extend(lines)
        else:
            call.sink(stream, lines)

    return call.session.run(script, sink, cancel=call.cancel, display=display), out


def _server_facts(call: PhaseCall) -> ServerFacts:
    db = call.config.database.name
    conn = call.session.open_db()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            version = str(cur.fetchone()[0])
            cur.execute(_TABLES_SQL, (db,))
            tables = tuple(str(r[0]) for r in cur.fetchall())
            cur.execute(_SIZE_SQL, (db,))
            row = cur.fetchone()
            estimate = int(row[0]) if row and row[0] is not None else None
            gtid: str | None = None
            if "mariadb" not in version.lower():
                try:
                    cur.execute("SELECT @@GLOBAL.gtid_mode")
                    gtid = str(cur.fetchone()[0])
                except Exception:
                    gtid = None
    finally:
        conn.close()
    return ServerFacts(version, tables, estimate, gtid)


def backup(call: PhaseCall) -> PhaseOutcome:
    """Make (or, after a resume, finish or re-show) this deploy's verified backup."""
    ctx = call.context
    try:
        if ctx.backup is not None and ctx.backup.verified:
            return _already_made(call, ctx.backup)
        if ctx.backup_run:
            resumed = _resume(call, ctx.backup_run)
            if resumed is not None:
                return resumed
        return _new_backup(call)
    except CommandCancelled as exc:  # a check or probe was cancelled (the dump itself is handled in _follow)
        return PhaseOutcome(PhaseStatus.CANCELLED, f"backup cancelled: {exc}")


def _file_for(call: PhaseCall, stamp: str) -> str:
    cfg = call.config
    return posixpath.join(
        cfg.backup.directory, bc.backup_name(cfg.database.name, stamp, cfg.backup.compression)
    )


@dataclasses.dataclass(frozen=True)
class Ready:
    """What the pre-checks found: the server, the space verdict and the dump program to run."""

    server: ServerFacts
    space: str
    client: bc.DumpClient


def _prepare(call: PhaseCall) -> Ready | PhaseOutcome:
    """Ask the server its size and tables, the host its free space and dump programs; refuse what may fail."""
    session, sink, cfg = call.session, call.sink, call.config
    directory, compression = cfg.backup.directory, cfg.backup.compression
    sink("info", [f"asking {cfg.database.name} at {cfg.database.host}:{cfg.database.port} for its size"])
    try:
        server = _server_facts(call)
    except Exception as exc:
        return _failed(f"cannot verify the schema's size and tables: {session.secrets.redact(str(exc))}")
    if not server.tables:
        return _failed(
            f"cannot verify what the dump must hold: the server lists no tables in {cfg.database.name} "
            f"for {cfg.database.user} (none, or no privilege to see them)"
        )
    if server.estimate is None:
        return _failed(
            f"cannot verify the size of {cfg.database.name}: information_schema gave no data length"
        )
    sink(
        "info", [f"server {server.version}; {len(server.tables)} tables; data+index {_size(server.estimate)}"]
    )
    programs = dict.fromkeys(["mariadb-dump", "mysqldump", cfg.database.dump])
    rc, out = _quiet(
        call, bc.prepare_script(directory, programs), f"mkdir -p -m 0700 {directory}; df; command -v"
    )
    created = [ln for ln in out if ln.startswith("created ")]
    if created:
        sink("info", created)
    if rc in bc.DIR_PROBLEMS:
        return _failed(f"the backup directory {directory} {bc.DIR_PROBLEMS[rc]} on the host")
    free = bc.parse_df(out) if rc == 0 else None
    if free is None:
        return _failed(f"cannot verify the free space in {directory} (df exited {rc}: {' '.join(out)[:200]})")
    needed = bc.space_needed(server.estimate, compression)
    space = (
        f"{_size(free)} free in {directory}; needs up to {_size(needed)} "
        f"(data+index {_size(server.estimate)}{' x2 uncompressed' if compression == 'none' else ''}"
        f" + {_size(bc.SPACE_MARGIN)} margin)"
    )
    sink("info", [space])
    if free < needed:
        return _failed(f"refused before dumping: {space}", (("free space before", space),))
    client = bc.choose_client(cfg.database.dump, bc.parse_detected(out), server.is_mariadb)
    if client is None:
        return _failed(f"dump program {cfg.database.dump} not found on the host (PATH of the SSH session)")
    sink("info", [f"dump program {client.path}: {client.version}"])
    return Ready(server, space, client)


def _new_backup(call: PhaseCall) -> PhaseOutcome:
    ready = _prepare(call)
    if isinstance(ready, PhaseOutcome):
        return ready
    if call.cancel.is_set():
        return PhaseOutcome(PhaseStatus.CANCELLED, "cancelled before the dump; nothing was written")
    session, sink, cfg = call.session, call.sink, call.config
    server, client, compression = ready.server, ready.client, cfg.backup.compression
    stamp = bc.stamp_of(datetime.now(UTC))
    final = _file_for(call, stamp)
    run_id = bc.run_id_of(stamp, random.token_hex(4))
    flags = bc.dump_flags(
        cfg.database, client, server_is_mariadb=server.is_mariadb, gtid_mode=server.gtid_mode
    )
    argv, option_file = mysql_command(
        dataclasses.replace(cfg.database, dump=client.path), session.db_password(), flags, tool="dump"
    )
    mark = f"__todobox_check_{random.token_hex(6)}"
    script = bc.dump_script(argv, compression, final, mark)
    pipe = f" | gzip {bc.GZIP_LEVEL}" if compression == "gzip" else ""
    display = f"{client.name} {cfg.database.name}{pipe} > {final}"
    call.establish(backup_run=run_id)
    sink("info", [f"$ {shlex.join(argv)}{pipe} > {final}.part   (detached run {run_id})"])
    checks = "every CREATE TABLE and the last line of the SQL, the gzip CRC and length, the sha256"
    sink("info", [f"  (checked as it is written: {checks})"])
    dumped: list[str] = []
    failure = _follow(
        call,
        run_id,
        final,
        lambda: session.run_detached(
            run_id,
            script,
            keep_stdout(_hiding(sink, mark), dumped),
            cancel=call.cancel,
            stdin=option_file,
            display=display,
        ),
        client.name,
        dumped,
    )
    facts: Facts = (
        ("dump program", f"{client.path} ({client.version})"),
        ("server version", server.version),
        ("free space before", ready.space),
        ("run id", run_id),
    )
    if failure is not None:
        return dataclasses.replace(failure, facts=failure.facts + facts)
    return _verify_and_record(call, final, stamp, server.tables, facts, dumped, mark)


def _hiding(sink: OutputSink, mark: str) -> OutputSink:
    """A sink that leaves out the check results' lines (``mark``-prefixed: the phase reads them)."""

    def hide(stream: Stream, lines: list[str]) -> None:
        shown = [line for line in lines if not line.startswith(mark)]
        if shown:
            sink(stream, shown)

    return hide


def _follow(
    call: PhaseCall,
    run_id: str,
    final: str,
    start: Callable[[], int],
    program: str,
    output: Sequence[str] = (),
) -> PhaseOutcome | None:
    """Run/follow the detached dump; None when it exited 0, else the outcome (backup_run settled)."""
    compression = call.config.backup.compression
    try:
        rc = start()
    except CommandCancelled as exc:
        _remove(call, [final + ".part"])
        call.establish(backup_run=None)
        return PhaseOutcome(PhaseStatus.CANCELLED, f"backup cancelled; no file was kept ({exc})")
    except (LinkLost, HostUnreachable) as exc:
        return _failed(
            f"lost the host during the dump: {exc}. The dump goes on there as run {run_id}: "
            "run this phase again to re-attach (it never starts a second dump meanwhile)"
        )
    except RunStateUnknown as exc:
        _remove(call, [final + ".part"])
        call.establish(backup_run=None)
        return _failed(f"{exc}; the partial file was removed: run the phase again for a new backup")
    if rc != 0:
        call.establish(backup_run=None)
        said = [ln.strip() for ln in output if ln.strip() and not ln.startswith("stage exit statuses:")]
        detail = f" (last output: {said[-1][:160]})" if said else ""
        return _failed(
            f"backup FAILED: {bc.describe_failure(rc, program, compression)}; no backup file was kept{detail}"
        )
    return None


def _verify_and_record(
    call: PhaseCall,
    final: str,
    stamp: str,
    tables: Sequence[str],
    facts: Facts,
    dumped: Sequence[str],
    mark: str | None = None,
) -> PhaseOutcome:
    """Check the file (from the dump's own checks when its output has them, else by reading it back),
    then record it as this deploy's backup and prune; a file that fails a check is renamed, never used."""
    session, sink = call.session, call.sink
    compression = call.config.backup.compression
    statuses = [ln for ln in dumped if ln.startswith("stage exit statuses:")]
    passed = [statuses[-1].removeprefix("stage ") if statuses else "dump script exited 0"]
    checked = bc.checked_lines(dumped, mark) if mark else []
    if checked:
        problem, back = _judge(bc.parse_verify(checked), compression, tables, passed, as_written=True)
    else:
        problem, back = _check_file(call, final, compression, tables, passed)
    if problem is not None:
        bad = final + ".unverified"
        rc = session.capture(["mv", "-T", "--", final, bad], display=f"mv {final} {bad}").exit_status
        call.establish(backup_run=None)
        kept = f"the file was renamed to {bad}" if rc == 0 else "the file could not be renamed"
        return _failed(
            f"backup check failed: {problem}; not recorded as a backup ({kept})",
            (("backup file", final), *facts, ("checks passed", "; ".join(passed))),
        )
    size, sha = back.size, back.sha256
    assert size is not None and sha is not None
    record = BackupRecord(final, size, sha, True, bc.created_at_of(stamp), tuple(tables))
    call.establish(backup=record, backup_run=None)
    pruned, prune_problem = _prune(call, final, back.files)
    facts = (
        ("backup file", final),
        ("size", f"{_size(size)} ({size} bytes)"),
        ("sha256", sha),
        ("tables", f"{len(tables)}: {', '.join(tables)}"),
        *facts,
        ("checks passed", "; ".join(passed)),
        ("pruned", ", ".join(pruned) or "(none)"),
    )
    summary = f"backup verified: {final} ({_size(size)}, sha256 {sha[:12]}…)"
    if prune_problem:
        sink("stderr", [prune_problem])
        return PhaseOutcome(PhaseStatus.WARNING, f"{summary}; {prune_problem}", facts)
    return PhaseOutcome(PhaseStatus.OK, summary, facts)


def _check_file(
    call: PhaseCall, path: str, compression: Compression, tables: Sequence[str], passed: list[str]
) -> tuple[str | None, bc.ReadBack]:
    """(the failed check or None, what the read-back showed); appends each passed check to ``passed``."""
    call.sink("info", [f"verifying {path} on the host"])
    _, out = _quiet(
        call, bc.verify_script(path, compression), f"read back {path} (stat, gzip -d | scan, sha256sum)"
    )
    return _judge(bc.parse_verify(out), compression, tables, passed, as_written=False)


def _judge(
    back: bc.ReadBack, compression: Compression, tables: Sequence[str], passed: list[str], *, as_written: bool
) -> tuple[str | None, bc.ReadBack]:
    """(the failed check or None, ``back``); appends each passed check to ``passed``."""
    if back.size is None:
        return "exists: the file cannot be read (stat failed)", back
    if back.size <= 0:
        return "non-empty: the file has 0 bytes", back
    passed.append(f"exists, {back.size} bytes")
    if back.decompress_status != 0:
        return f"gzip integrity: gzip -d exited {back.decompress_status}", back
    if compression == "gzip":
        how = "the written bytes decompressed in full" if as_written else "decompressed in full"
        passed.append(f"gzip integrity ({how}: CRC and length)")
    if back.scan_status != 0:
        return f"content: cannot verify it, the scan exited {back.scan_status}", back
    if not bc.trailer_ok(back.last_line):
        return f"trailer: the last line is not '{bc.TRAILER}' but {back.last_line!r:.80}", back
    passed.append(f"trailer ({back.last_line})")
    missing = bc.missing_tables(tables, back.tables)
    if missing:
        return f"tables: no CREATE TABLE for {', '.join(missing)}", back
    passed.append(f"CREATE TABLE for all {len(tables)} tables")
    if back.sha256 is None:
        return "sha256: sha256sum gave no checksum", back
    passed.append("sha256")
    if as_written:
        if back.written_sha256 != back.sha256:
            return "sha256: the file on disk differs from the bytes written", back
        passed.append("the file on disk hashed again: the same sha256 as the bytes written")
    return None, back


def _prune(call: PhaseCall, final: str, names: Sequence[str]) -> tuple[list[str], str | None]:
    """Delete older backups of this database beyond ``[backup] keep`` among the directory's ``names``
    (listed by the read-back): (deleted names, problem or None)."""
    cfg = call.config
    directory = cfg.backup.directory
    doomed = bc.prune_selection(names, cfg.database.name, posixpath.basename(final), cfg.backup.keep)
    if not doomed:
        return [], None
    if not _remove(call, [posixpath.join(directory, n) for n in doomed]):
        return [], f"could not delete old backups {', '.join(doomed)}"
    call.sink("info", [f"pruned (keep {cfg.backup.keep}): {', '.join(doomed)}"])
    return doomed, None


def _remove(call: PhaseCall, paths: list[str]) -> bool:
    res = call.session.capture(["rm", "-f", "--", *paths], display=f"rm -f {' '.join(paths)}")
    return res.exit_status == 0


# -- a resumed deploy -------------------------------------------------------------------------


def _already_made(call: PhaseCall, record: BackupRecord) -> PhaseOutcome:
    """This deploy's verified backup exists: show it again (size and sha256 re-read), never dump twice."""
    facts: Facts = (
        ("backup file", record.path),
        ("size", f"{_size(record.size)} ({record.size} bytes)"),
        ("sha256", record.sha256),
        ("tables", f"{len(record.tables)}: {', '.join(record.tables)}"),
        ("created at", record.created_at),
    )
    _, out = _quiet(
        call,
        f"stat -c %s -- {shlex.quote(record.path)} && sha256sum -- {shlex.quote(record.path)}",
        f"stat+sha256sum {record.path}",
    )
    size = out[0].strip() if out else ""
    sha = bc.parse_sha256(out[1]) if len(out) > 1 else None
    if size != str(record.size) or sha != record.sha256:
        return _failed(
            f"the backup this deploy made ({record.path}) is missing or changed on the host "
            f"(size {size or '?'}, sha256 {sha or '?'}): it is not replaced automatically, because a new "
            "dump now may no longer hold the state before the deploy",
            facts,
        )
    return PhaseOutcome(
        PhaseStatus.OK,
        f"already made: backup verified earlier in this deploy: {record.path} "
        f"({_size(record.size)}, sha256 {record.sha256[:12]}…); not dumped again",
        facts + (("checks passed", "size and sha256 re-read and unchanged"),),
    )


def _resume(call: PhaseCall, run_id: str) -> PhaseOutcome | None:
    """An earlier session started dump ``run_id`` and never concluded it: re-attach or finish it.

    None: nothing of it can be used (it never started, failed, or vanished): make a new backup."""
    session, sink = call.session, call.sink
    stamp = bc.stamp_of_run(run_id)
    if stamp is None:
        call.establish(backup_run=None)
        return None
    final = _file_for(call, stamp)
    state, rc, _ = session.connection.run_state(run_id)
    output: list[str] = []
    if state == "running":
        sink(
            "info",
            [f"the dump started earlier (run {run_id}) is still running: re-attaching, not starting another"],
        )
        failure = _follow(
            call,
            run_id,
            final,
            lambda: session.connection.attach(
                run_id, keep_stdout(sink, output), cancel=call.cancel, secrets=session.secrets
            ),
            call.config.database.dump,
            output,
        )
        if failure is not None:
            return failure
    elif state == "unknown":
        # its wrapper is gone without an exit code: the dump itself may still run; a person checks first
        call.establish(backup_run=None)
        return _failed(
            f"the dump started earlier (run {run_id}) is not running and left no exit code (killed, or the "
            f"host rebooted): check on the host that no {call.config.database.dump} is left running, delete "
            f"{final}.part if it exists, then run this phase again for a new backup",
            (("run id", run_id),),
        )
    elif state != "finished" or rc != 0:
        why = f"exited {rc}" if state == "finished" else "never started"
        sink("info", [f"the dump started earlier (run {run_id}) {why}: starting a new backup"])
        call.establish(backup_run=None)
        return None
    else:
        sink("info", [f"the dump started earlier (run {run_id}) finished with exit code 0: verifying it"])
    try:
        server = _server_facts(call)
    except Exception as exc:
        return _failed(f"cannot verify the schema's tables: {session.secrets.redact(str(exc))}")
    facts: Facts = (("server version", server.version), ("run id", run_id))
    return _verify_and_record(call, final, stamp, server.tables, facts, output)


# -- small helpers ----------------------------------------------------------------------------


def _failed(summary: str, facts: Facts = ()) -> PhaseOutcome:
    return PhaseOutcome(PhaseStatus.FAILED, summary, facts)


def _size(n: int) -> str:
    return bc.human_bytes(n)
