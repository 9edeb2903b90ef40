"""The backup phase's pure parts: names, dump flags, the dump script, the space check, the checks, pruning.

Nothing here talks to a host or a database; ``engine/phases/backup.py`` does, with these.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from todobox_deploy.config import Compression, DatabaseConfig
from todobox_deploy.remote import quoting

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
GZIP_LEVEL = "-1"  # ~2x the throughput of the default -6 on SQL text for a ~3% larger file
SPACE_MARGIN = 16 * 1024 * 1024  # kept free beyond the estimate
TRAILER = "-- Dump completed"

# exit codes of the dump script (the phase names the failed stage from these, never from host text)
DUMP_FAILED, COMPRESS_FAILED, BOTH_FAILED = 81, 82, 83
FLUSH_FAILED, RENAME_FAILED, TARGET_EXISTS, CHECKS_FAILED, INTERRUPTED = 84, 85, 86, 87, 143


def stamp_of(when: datetime) -> str:
    """``YYYYmmddTHHMMSSZ`` of a UTC time."""
    return when.strftime(STAMP_FORMAT)


def backup_name(database: str, stamp: str, compression: Compression) -> str:
    """``<db>-<stamp>.sql.gz`` (``.sql`` without compression)."""
    if not database or "/" in database or database.startswith((".", "-")) or "\x00" in database:
        raise ValueError(f"database name {database!r} cannot be part of a backup file name")
    return f"{database}-{stamp}.sql" + (".gz" if compression == "gzip" else "")


def backup_pattern(database: str) -> re.Pattern[str]:
    """What this tool names a backup of ``database`` (both compressions); group 1 is the stamp."""
    return re.compile(re.escape(database) + r"-(\d{8}T\d{6}Z)\.sql(?:\.gz)?")


def run_id_of(stamp: str, token: str) -> str:
    return f"backup-{stamp}-{token}"


def stamp_of_run(run_id: str) -> str | None:
    """The stamp a run id carries (its file has the same one), or None for a foreign id."""
    m = re.fullmatch(r"backup-(\d{8}T\d{6}Z)-[0-9a-f]+", run_id)
    return m.group(1) if m else None


def created_at_of(stamp: str) -> str:
    """The stamp as an ISO time (``2024-05-01T12:00:00Z``)."""
    return datetime.strptime(stamp, STAMP_FORMAT).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the dump program -------------------------------------------------------------------------


@dataclass(frozen=True)
class DumpClient:
    """A dump program found on the host: how it was asked for, its path and its ``--version`` line."""

    name: str
    path: str
    version: str

    @property
    def is_mariadb(self) -> bool:
        return "mariadb" in self.version.lower()

    @property
    def major(self) -> int | None:
        """MySQL's release (``Distrib 5.7.44`` or ``Ver 8.0.35``); None when it cannot be read."""
        m = re.search(r"Distrib (\d+)\.", self.version) or re.search(r"Ver (\d+)\.", self.version)
        return int(m.group(1)) if m else None


def parse_detected(lines: Iterable[str]) -> dict[str, DumpClient]:
    found: dict[str, DumpClient] = {}
    for line in lines:
        parts = line.split("\t", 3)
        if len(parts) == 4 and parts[0] == "P" and parts[2].startswith("/"):
            found[parts[1]] = DumpClient(parts[1], parts[2], parts[3].strip())
    return found


def choose_client(
    configured: str, found: Mapping[str, DumpClient], server_is_mariadb: bool
) -> DumpClient | None:
    """The configured program; for the default ``mysqldump``, ``mariadb-dump`` when it is the better match
    (a MariaDB server, or ``mysqldump`` is MariaDB's deprecated alias or missing)."""
    if configured != "mysqldump":
        return found.get(configured)
    mariadb, mysql = found.get("mariadb-dump"), found.get("mysqldump")
    if mariadb is not None and (server_is_mariadb or mysql is None or mysql.is_mariadb):
        return mariadb
    return mysql


def dump_flags(
    db: DatabaseConfig, client: DumpClient, *, server_is_mariadb: bool, gtid_mode: str | None
) -> list[str]:
    """The options after ``--defaults-extra-file`` (which ``mysql_command`` puts first)."""
    flags = [
        "--single-transaction",
        "--quick",
        "--routines",
        "--triggers",
        "--events",
        "--hex-blob",
        "--no-tablespaces",
        "--default-character-set=utf8mb4",
        f"--host={db.host}",
        f"--port={int(db.port)}",
        f"--user={db.user}",
    ]
    if not client.is_mariadb:  # MariaDB's client knows neither option (exit 7)
        if server_is_mariadb:
            if (client.major or 0) >= 8:
                flags.append("--column-statistics=0")  # MySQL 8's client asks for a table MariaDB lacks
        elif gtid_mode is None or gtid_mode.upper().startswith("ON"):
            flags.append("--set-gtid-purged=OFF")  # no GTID_PURGED / SQL_LOG_BIN=0 in the dump
    return flags


def dump_script(dump_argv: Sequence[str], compression: Compression, final: str, mark: str) -> str:
    """Bash text: dump [| gzip] > FINAL.part, check every stage, flush, rename; on failure remove the part.

    The bytes are checked as they are written, on the host's other cores: ``tee`` hands the SQL to the
    scan (every ``CREATE TABLE``, the last line) and the compressed bytes to ``gzip -d`` (CRC and length)
    and ``sha256sum``. After the rename the file on disk is hashed again: equal to the written stream's
    hash, it is those very bytes. The results are printed last, each line prefixed with ``mark``, in the
    read-back's format (see :func:`verify_script`, :func:`parse_verify`) plus ``W <the stream's sha256>``.

    The dump reads its option file on stdin (the detached run's stdin), so nothing before it reads stdin.
    Exit codes: see the constants above; the stage statuses are printed either way.
    """
    quoting.operand(final, "backup file")
    if not re.fullmatch(r"[A-Za-z0-9_]+", mark):
        raise ValueError(f"mark {mark!r} must be letters, digits or _")
    dump = quoting.join(dump_argv)
    name = dump_argv[0].rsplit("/", 1)[-1]
    awk = "LC_ALL=C awk " + shlex.quote(_SCAN_AWK)
    head = [
        "set -o pipefail",
        "umask 077",
        f"final={shlex.quote(final)}; part={shlex.quote(final + '.part')}",
        f'trap \'rm -f -- "$part"; echo "backup interrupted: the partial file was removed" >&2; '
        f"exit {INTERRUPTED}' TERM INT HUP",
        'if [ -e "$final" ] || [ -e "$part" ]; then',
        f'  echo "backup refused: $final or $part already exists" >&2; exit {TARGET_EXISTS}',
        "fi",
        f'c=$(mktemp -d) || {{ echo "no temporary directory for the checks" >&2; exit {CHECKS_FAILED}; }}',
        "trap 'rm -rf -- \"$c\"' EXIT",
    ]
    # each checker writes its exit status last; tee -p goes on writing the file if a checker dies
    scan = f'>({awk} > "$c/scan"; echo $? 2> /dev/null > "$c/scan.rc")'
    sha = '>(sha256sum > "$c/sha"; echo $? 2> /dev/null > "$c/sha.rc")'
    if compression == "gzip":
        unzip = '>(gzip -dc > /dev/null 2> "$c/gz.err"; echo $? 2> /dev/null > "$c/gz.rc")'
        run = [
            f'{dump} | tee -p {scan} | gzip {GZIP_LEVEL} -c | tee -p {unzip} {sha} > "$part"',
            'st=("${PIPESTATUS[@]}")',
            f'echo "stage exit statuses: {name} ${{st[0]}}, gzip ${{st[2]}}, '
            'tee to the checks ${st[1]} ${st[3]}"',
            'bad=0; [ "${st[0]}" = 0 ] || bad=$((bad | 1))',
            '[ "${st[2]}" = 0 ] && [ "${st[3]}" = 0 ] || bad=$((bad | 2))',
        ]
    else:
        run = [
            f'{dump} | tee -p {scan} {sha} > "$part"',
            'st=("${PIPESTATUS[@]}"); echo 0 > "$c/gz.rc"',
            f'echo "stage exit statuses: {name} ${{st[0]}}, write ${{st[1]}}"',
            'bad=0; [ "${st[0]}" = 0 ] || bad=$((bad | 1)); [ "${st[1]}" = 0 ] || bad=$((bad | 2))',
        ]
    # the checkers end within moments of the pipeline (a pipe buffer is left at most): await their status
    wait_checks = (
        "for _ in $(seq 6000); do\n"
        '  [ -s "$c/scan.rc" ] && [ -s "$c/gz.rc" ] && [ -s "$c/sha.rc" ] && break; sleep 0.01\n'
        "done"
    )
    tail = [
        wait_checks,
        'if [ "$bad" != 0 ]; then rm -f -- "$part"; exit $((80 + bad)); fi',
        f'chmod 600 -- "$part" && sync -- "$part" || {{ rm -f -- "$part"; exit {FLUSH_FAILED}; }}',
        f'mv -T -- "$part" "$final" || {{ rm -f -- "$part"; exit {RENAME_FAILED}; }}',
        'echo "backup written: $final"',
        "{",
        '  echo "Z $(stat -c %s -- "$final")"',
        '  cat -- "$c/scan" 2> /dev/null',
        '  rc() { cat -- "$c/$1.rc" 2> /dev/null || echo 255; }',
        '  echo "S $(rc gz) $(rc scan)"',
        '  echo "W $(cat -- "$c/sha" 2> /dev/null)"',
        "  printf 'H '; sha256sum -- \"$final\"",
        _list_files(posixpath.dirname(final)),
        f"}} | sed 's/^/{mark} /'",
    ]
    return "\n".join(head + run + tail) + "\n"


def checked_lines(lines: Iterable[str], mark: str) -> list[str]:
    """The check results a :func:`dump_script` run printed (``mark`` removed), or [] when it printed none."""
    prefix = mark + " "
    return [line[len(prefix) :] for line in lines if line.startswith(prefix)]


def describe_failure(rc: int, program: str, compression: Compression) -> str:
    """Which stage of the dump script failed, from its exit code."""
    dump = f"the dump stage ({program})"
    compressor = "the compressor stage (gzip)" if compression == "gzip" else "the write"
    known = {
        DUMP_FAILED: f"{dump} failed",
        COMPRESS_FAILED: f"{compressor} failed",
        BOTH_FAILED: f"{dump} and {compressor} failed",
        FLUSH_FAILED: "chmod/sync of the written file failed (stage flush)",
        RENAME_FAILED: "renaming the .part file to the backup name failed (stage rename)",
        TARGET_EXISTS: "the backup file (or its .part) already existed; nothing was dumped",
        CHECKS_FAILED: "no temporary directory on the host for the checks; nothing was dumped",
        INTERRUPTED: "the dump was interrupted (SIGTERM/SIGINT/SIGHUP)",
    }
    return known.get(rc, f"the dump script exited {rc}")


# -- space ------------------------------------------------------------------------------------


def space_needed(estimate: int, compression: Compression) -> int:
    """Bytes to require: the schema's data+index bounds a gzip'd dump; plain SQL can be ~2x the data."""
    return estimate * (1 if compression == "gzip" else 2) + SPACE_MARGIN


def parse_df(lines: Sequence[str]) -> int | None:
    """Available bytes from ``df -P -B1 DIR`` (the 4th column of the line after the header), or None."""
    heads = [i for i, ln in enumerate(lines) if ln.startswith("Filesystem")]
    if len(heads) != 1 or heads[0] + 1 >= len(lines):
        return None
    cols = lines[heads[0] + 1].split()
    if len(cols) < 6 or not cols[3].isdigit():
        return None
    return int(cols[3])


def prepare_script(directory: str, programs: Iterable[str]) -> str:
    """Create the backup directory (0700) when missing, check it is writable, ``df`` it, then look for the
    dump programs: ``P<TAB>name<TAB>path<TAB>--version line`` for each one found.

    Exit 3: not a directory, 4: cannot create it, 5: df failed, 6: not writable."""
    quoting.operand(directory, "backup directory")
    names = " ".join(shlex.quote(quoting.operand(n, "dump program")) for n in programs)
    return (
        f"d={shlex.quote(directory)}\n"
        'if [ ! -d "$d" ]; then\n'
        '  if [ -e "$d" ] || [ -L "$d" ]; then echo "$d exists and is not a directory" >&2; exit 3; fi\n'
        '  mkdir -p -m 0700 -- "$d" || exit 4\n'
        '  echo "created $d (mode 0700)"\n'
        "fi\n"
        '[ -w "$d" ] || { echo "$d is not writable" >&2; exit 6; }\n'
        'df -P -B1 -- "$d" || exit 5\n'
        f"for p in {names}; do\n"
        '  if c=$(command -v -- "$p"); then\n'
        '    printf \'P\\t%s\\t%s\\t%s\\n\' "$p" "$c" "$("$c" --version 2>&1 | head -n 1)"\n'
        "  fi\n"
        "done\n"
    )


DIR_PROBLEMS = {3: "exists and is not a directory", 4: "cannot be created", 6: "is not writable"}


# -- checks -----------------------------------------------------------------------------------

_SCAN_AWK = '/^CREATE TABLE `/ { print "T " $0 } { last = $0 } END { print "L " substr(last, 1, 200) }'


def verify_script(path: str, compression: Compression) -> str:
    """Read the file back once: ``Z <size>``; ``T <CREATE TABLE line>`` per table; ``L <last line>``;
    ``S <decompress status> <scan status>`` (gzip -d checks CRC and length: what ``gzip -t`` does);
    ``H <sha256sum's line>``; then ``F <name>`` for each regular file beside it (for pruning), quoted
    with bash's ``%q`` so a name can never span lines (a name that needs quoting never matches ours).
    Bash only (process substitution)."""
    q = shlex.quote(quoting.operand(path, "backup file"))
    awk = "LC_ALL=C awk " + shlex.quote(_SCAN_AWK)
    if compression == "gzip":
        scan = f'gzip -dc -- {q} | {awk}\nst=("${{PIPESTATUS[@]}}"); echo "S ${{st[0]}} ${{st[1]}}"\n'
    else:
        scan = f'{awk} {q}\necho "S 0 $?"\n'
    # sha256sum reads the file beside the scan (a second core); its answer is collected after it
    return (
        f"stat -c 'Z %s' -- {q} || exit 1\n"
        f"exec 3< <(sha256sum -- {q})\n"
        f"{scan}"
        "printf 'H '; cat <&3\n"
        f"{_list_files(posixpath.dirname(path))}\n"
    )


def _list_files(directory: str) -> str:
    """Bash: ``F <name>`` per regular file (not a symlink) in ``directory``, quoted with ``%q`` so that a
    name can never span lines."""
    d = shlex.quote(directory or ".")
    return (
        f"for f in {d}/*; do\n"
        '  if [ -f "$f" ] && [ ! -L "$f" ]; then printf \'F %q\\n\' "${f##*/}"; fi\n'
        "done"
    )


@dataclass(frozen=True)
class ReadBack:
    """What reading the backup file back on the host showed (None: no answer)."""

    size: int | None
    tables: tuple[str, ...]
    last_line: str | None
    decompress_status: int | None
    scan_status: int | None
    sha256: str | None
    files: tuple[str, ...] = ()  # regular files in the backup directory (names as bash %q prints them)
    written_sha256: str | None = None  # checked as written: the sha256 of the bytes the dump wrote


_CREATE = re.compile(r"CREATE TABLE `((?:[^`]|``)+)`")


def parse_verify(lines: Iterable[str]) -> ReadBack:
    size: int | None = None
    tables: list[str] = []
    last: str | None = None
    status: tuple[int | None, int | None] = (None, None)
    sha: str | None = None
    written: str | None = None
    files: list[str] = []
    for line in lines:
        tag, _, rest = line.partition(" ")
        if tag == "Z" and rest.isdigit() and size is None:
            size = int(rest)
        elif tag == "T" and (m := _CREATE.match(rest)):
            tables.append(m.group(1).replace("``", "`"))
        elif tag == "L":
            last = rest
        elif tag == "S":
            parts = rest.split()
            if len(parts) == 2 and all(p.isdigit() for p in parts):
                status = (int(parts[0]), int(parts[1]))
        elif tag == "H":
            sha = parse_sha256(rest)
        elif tag == "W":
            written = parse_sha256(rest)
        elif tag == "F" and rest:
            files.append(rest)
    return ReadBack(size, tuple(tables), last, *status, sha, tuple(files), written)


def trailer_ok(last_line: str | None) -> bool:
    """The dump's last line is its ``-- Dump completed`` trailer (a dump cut short has none)."""
    return last_line is not None and last_line.startswith(TRAILER)


def missing_tables(expected: Iterable[str], found: Iterable[str]) -> list[str]:
    present = set(found)
    return [t for t in expected if t not in present]


def parse_sha256(text: str) -> str | None:
    m = re.match(r"([0-9a-f]{64})\s", text)
    return m.group(1) if m else None


# -- pruning ----------------------------------------------------------------------------------


def prune_selection(names: Iterable[str], database: str, new_name: str, keep: int) -> list[str]:
    """The backups of ``database`` to delete so that ``keep`` remain, the new one always among them.

    Only names this tool writes are considered (newest by the stamp in the name); anything else in the
    directory is never selected, nor is ``new_name``.
    """
    pattern = backup_pattern(database)
    ours = sorted(
        ((m.group(1), n) for n in set(names) if n != new_name and (m := pattern.fullmatch(n))),
        reverse=True,
    )
    return [n for _, n in ours[max(keep - 1, 0) :]]


def human_bytes(n: int) -> str:
    """``12.3 MiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
