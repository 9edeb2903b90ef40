"""The Alembic revision graph, read from the migration files themselves (never by importing the app).

Each file's ``revision`` / ``down_revision`` give the graph; the schema operations in its ``upgrade()``
(``add_column``, ``drop_column``, ``create_index``, ``drop_index``, ``create_table``, also inside
``batch_alter_table``) say what the revision claims to do. Operations under a condition (``if``,
``for``, ``try``) or raw ``op.execute`` make the revision *conditional*: its effect depends on the live
schema (an idempotent repair such as the seed's d1f2e3c4b5a6), so it is never used as a claim.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Column = tuple[str, str]  # (table, column)
Index = tuple[str, str, tuple[str, ...], bool]  # (table, name, columns, unique)


@dataclass(frozen=True)
class Revision:
    """One migration file: its place in the graph and what its upgrade claims."""

    revision: str
    down_revisions: tuple[str, ...]
    path: str
    adds_columns: tuple[Column, ...] = ()
    drops_columns: tuple[Column, ...] = ()
    adds_indexes: tuple[Index, ...] = ()
    drops_indexes: tuple[tuple[str, str], ...] = ()
    creates_tables: tuple[str, ...] = ()
    conditional: bool = False


class MigrationFileError(ValueError):
    """A migration file that cannot be read as an Alembic revision."""


def _literal(node: ast.expr) -> object:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _string(node: ast.expr | None) -> str | None:
    """A string argument, also through ``op.f('name')`` / ``batch_op.f('name')``."""
    if node is None:
        return None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "f":
        return _string(node.args[0]) if node.args else None
    value = _literal(node)
    return value if isinstance(value, str) else None


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _column_name(node: ast.expr) -> str | None:
    """The name of ``sa.Column('name', ...)``."""
    if isinstance(node, ast.Call) and node.args:
        return _string(node.args[0])
    return None


class _Ops(ast.NodeVisitor):
    """Collect schema operations of an ``upgrade()`` body."""

    def __init__(self) -> None:
        self.adds: list[Column] = []
        self.drops: list[Column] = []
        self.add_ix: list[Index] = []
        self.drop_ix: list[tuple[str, str]] = []
        self.tables: list[str] = []
        self.conditional = False
        self._batch: dict[str, str] = {}  # alias -> table
        self._depth = 0

    def _nested(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_If = visit_For = visit_While = visit_Try = _nested  # noqa: N815 - ast visitor names

    def visit_With(self, node: ast.With) -> None:  # noqa: N802 - ast visitor name
        for item in node.items:
            call = item.context_expr
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "batch_alter_table"
                and isinstance(item.optional_vars, ast.Name)
            ):
                table = _string(call.args[0] if call.args else _kw(call, "table_name"))
                if table:
                    self._batch[item.optional_vars.id] = table
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:  # noqa: N802 - ast visitor name
        self.generic_visit(node)
        if not isinstance(node.func, ast.Attribute) or not isinstance(node.func.value, ast.Name):
            return
        owner, attr = node.func.value.id, node.func.attr
        batch = self._batch.get(owner)
        if owner != "op" and batch is None:
            return
        if attr == "execute" or self._depth:
            self.conditional = True
        args = list(node.args)
        if batch is None and attr in ("add_column", "drop_column", "create_index", "drop_index"):
            # op.add_column(table, Column), op.drop_column(table, name), op.create_index(name, table, cols)
            if attr in ("add_column", "drop_column"):
                table = _string(args.pop(0) if args else _kw(node, "table_name"))
            else:
                table = None
        else:
            table = batch
        if attr == "add_column" and args:
            name = _column_name(args[0])
            if table and name:
                self.adds.append((table, name))
        elif attr == "drop_column" and args:
            name = _string(args[0])
            if table and name:
                self.drops.append((table, name))
        elif attr == "create_index":
            name = _string(args[0] if args else _kw(node, "index_name"))
            if batch is None:
                table = _string(args[1] if len(args) > 1 else _kw(node, "table_name"))
                cols_node = args[2] if len(args) > 2 else _kw(node, "columns")
            else:
                cols_node = args[1] if len(args) > 1 else _kw(node, "columns")
            cols = _literal(cols_node) if cols_node is not None else None
            unique_node = _kw(node, "unique")
            unique = _literal(unique_node) if unique_node is not None else False
            if table and name and isinstance(cols, list | tuple):
                self.add_ix.append((table, name, tuple(str(c) for c in cols), bool(unique)))
        elif attr == "drop_index":
            name = _string(args[0] if args else _kw(node, "index_name"))
            if batch is None:
                table = _string(args[1] if len(args) > 1 else _kw(node, "table_name"))
            if table and name:
                self.drop_ix.append((table, name))
        elif attr == "create_table" and batch is None and args:
            table = _string(args[0])
            if table:
                self.tables.append(table)
                for arg in args[1:]:
                    name = _column_name(arg)
                    func = arg.func if isinstance(arg, ast.Call) else None
                    kind = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                    if name and kind == "Column":
                        self.adds.append((table, name))


def parse_revision(source: str, path: str) -> Revision:
    """Read one migration file's revision, down revision(s) and claimed operations."""
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        raise MigrationFileError(f"{path}: not valid Python ({exc.msg}, line {exc.lineno})") from None
    values: dict[str, object] = {}
    upgrade: ast.FunctionDef | None = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = _literal(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            values[node.target.id] = _literal(node.value)
        elif isinstance(node, ast.FunctionDef) and node.name == "upgrade":
            upgrade = node
    revision = values.get("revision")
    if not isinstance(revision, str) or not revision:
        raise MigrationFileError(f"{path}: no `revision = '...'` at module level")
    down = values.get("down_revision")
    if down is None:
        downs: tuple[str, ...] = ()
    elif isinstance(down, str):
        downs = (down,)
    elif isinstance(down, list | tuple) and all(isinstance(d, str) for d in down):
        downs = tuple(str(d) for d in down)
    else:
        raise MigrationFileError(f"{path}: down_revision is neither None, a string nor a tuple of strings")
    ops = _Ops()
    if upgrade is not None:
        for stmt in upgrade.body:
            ops.visit(stmt)
    return Revision(
        revision,
        downs,
        path,
        tuple(ops.adds),
        tuple(ops.drops),
        tuple(ops.add_ix),
        tuple(ops.drop_ix),
        tuple(ops.tables),
        ops.conditional,
    )


@dataclass(frozen=True)
class RevisionGraph:
    """Every revision by id; problems found while building it (duplicates, dangling down revisions)."""

    revisions: Mapping[str, Revision]
    problems: tuple[str, ...] = field(default=())

    @classmethod
    def from_files(cls, files: Mapping[str, str]) -> RevisionGraph:
        """Build from ``{path: source}`` of a ``versions/`` directory (non-``.py`` files ignored)."""
        revisions: dict[str, Revision] = {}
        problems: list[str] = []
        for path, source in sorted(files.items()):
            if not path.endswith(".py") or path.rsplit("/", 1)[-1].startswith("__"):
                continue
            try:
                rev = parse_revision(source, path)
            except MigrationFileError as exc:
                problems.append(str(exc))
                continue
            if rev.revision in revisions:
                problems.append(
                    f"revision {rev.revision} is defined twice: {revisions[rev.revision].path}, {path}"
                )
            revisions[rev.revision] = rev
        for rev in revisions.values():
            for down in rev.down_revisions:
                if down not in revisions:
                    problems.append(f"{rev.path}: down_revision {down} has no migration file")
        return cls(revisions, tuple(problems))

    def heads(self) -> list[str]:
        """Revisions no other revision builds on."""
        children = {d for r in self.revisions.values() for d in r.down_revisions}
        return sorted(r for r in self.revisions if r not in children)

    def ancestors(self, revision: str) -> set[str]:
        """``revision`` and every revision it builds on."""
        seen: set[str] = set()
        todo = [revision]
        while todo:
            current = todo.pop()
            if current in seen or current not in self.revisions:
                continue
            seen.add(current)
            todo.extend(self.revisions[current].down_revisions)
        return seen

    def path(self, start: str | None, end: str) -> list[Revision] | None:
        """The revisions an upgrade from ``start`` (None: an empty database) to ``end`` applies, oldest
        first; None when ``start`` is not an ancestor of ``end``."""
        if end not in self.revisions:
            return None
        wanted = self.ancestors(end)
        if start is not None:
            if start not in wanted:
                return None
            wanted -= self.ancestors(start)
        return self.ordered(wanted)

    def ordered(self, revs: Iterable[str]) -> list[Revision]:
        """``revs`` oldest first (a revision after every revision it builds on)."""
        pending = set(revs)
        ordered: list[Revision] = []
        while pending:
            ready = sorted(r for r in pending if not set(self.revisions[r].down_revisions) & pending)
            if not ready:  # a cycle: report it as unordered rather than loop
                ordered.extend(self.revisions[r] for r in sorted(pending))
                break
            for r in ready:
                ordered.append(self.revisions[r])
                pending.discard(r)
        return ordered
