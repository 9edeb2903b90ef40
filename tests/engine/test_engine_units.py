"""Pure engine logic: credentials, the flask bootstrap, history parsing and result rendering."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from todobox_deploy.config import AppConfig, DatabaseConfig
from todobox_deploy.core.envfile import EnvFileError, parse_env_file, password_from_value
from todobox_deploy.db.schema import Rows, quote_ident
from todobox_deploy.engine.credentials import CredentialsError, resolve_password
from todobox_deploy.engine.flask_cli import flask_command, parse_history_heads, parse_history_revisions

HISTORY = [
    "c682ef478e45 -> d1f2e3c4b5a6 (head), fix api_token column: ensure api_token",
    "3e5106ee570c -> c682ef478e45, add api_token field to user model",
    "366e5694a9ad -> 3e5106ee570c, add api_token fields to user model",
    "6793349c088c -> 366e5694a9ad, add oauth columns to user model",
    "<base> -> 6793349c088c, increase password_hash column size",
]


def test_env_file_parsing_handles_export_quotes_and_comments() -> None:
    text = "# comment\nexport A=1\nB='two words'\nC=\"x=y\"\nnot a pair\n D = spaced \n"
    assert parse_env_file(text) == {"A": "1", "B": "two words", "C": "x=y", "D": "spaced"}


def test_password_from_url_is_unquoted() -> None:
    assert password_from_value("mysql+pymysql://u:p%40ss%2Fw@h:3306/db") == "p@ss/w"
    assert password_from_value("plain") == "plain"
    with pytest.raises(EnvFileError):
        password_from_value("mysql://u@h/db")


def test_password_sources_in_order() -> None:
    app = AppConfig(path="/srv/app", env_file="/srv/app/.env")
    db = DatabaseConfig(name="d", user="u", password_env="PW", password_env_file_key="DATABASE_URL")
    remote = {"/srv/app/.env": "DATABASE_URL=mysql://u:fromfile@h/d\n"}
    assert (
        resolve_password(db, app, environ={"PW": "fromenv"}, read_remote_file=remote.__getitem__, prompt=None)
        == "fromenv"
    )
    assert (
        resolve_password(db, app, environ={}, read_remote_file=remote.__getitem__, prompt=None) == "fromfile"
    )
    prompted = resolve_password(db, app, environ={}, read_remote_file=lambda p: "", prompt=lambda q: "typed")
    assert prompted == "typed"


def test_no_password_source_says_what_was_tried() -> None:
    app = AppConfig(path="/srv/app")
    db = DatabaseConfig(
        name="d", user="u", password_env="PW", password_env_file_key="K", password_prompt=False
    )
    with pytest.raises(CredentialsError) as info:
        resolve_password(db, app, environ={}, read_remote_file=None, prompt=None)
    assert "PW (not set)" in str(info.value) and "env_file is not" in str(info.value)


def test_history_parsing() -> None:
    assert parse_history_heads(HISTORY) == ["d1f2e3c4b5a6"]
    assert parse_history_revisions(HISTORY)[0] == "d1f2e3c4b5a6"
    assert "6793349c088c" in parse_history_revisions(HISTORY)
    two_heads = ["c682ef478e45 -> aaaa (head), x", "c682ef478e45 -> bbbb (head), y"]
    assert parse_history_heads(two_heads) == ["aaaa", "bbbb"]


def test_flask_bootstrap_loads_env_file_without_exposing_it(tmp_path: Path) -> None:
    """Run the generated command locally with a stub ``flask`` package: the env reaches os.environ only."""
    stub = tmp_path / "stub" / "flask"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("")
    (stub / "cli.py").write_text(
        "import os, sys\n"
        "def main():\n"
        "    environ = open('/proc/self/environ','rb').read().decode()\n"
        "    print(sys.argv[1:], os.environ['DATABASE_URL'], os.environ['FLASK_APP'],"
        " 'SECRET' in environ, os.getcwd())\n"
    )
    env = tmp_path / "app.env"
    env.write_text("DATABASE_URL='mysql://u:SECRET@h/d'\n")
    app = AppConfig(path=str(tmp_path), python=sys.executable, env_file=str(env), flask_app="wsgi.py")
    cmd = flask_command(app, ["db", "history", "--", "$(id)"])
    out = subprocess.run(
        ["bash", "-c", cmd],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(tmp_path / "stub"), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == (
        f"['db', 'history', '--', '$(id)'] mysql://u:SECRET@h/d wsgi.py False {tmp_path}"
    )
    assert "SECRET" not in cmd


def test_rows_render_like_the_mysql_client() -> None:
    rows = Rows(("Field", "Type"), (("id", "int(11)"), ("api_token", "varchar(64)")))
    lines = rows.render()
    assert lines[1] == "| Field     | Type        |"
    assert lines[-1] == "2 rows in set"
    assert rows.dicts()[1] == {"Field": "api_token", "Type": "varchar(64)"}


def test_identifier_quoting() -> None:
    assert quote_ident("user") == "`user`"
    assert quote_ident("we`ird") == "`we``ird`"
    with pytest.raises(ValueError):
        quote_ident("")


def test_captured_output_is_cut_into_lines_as_the_stream_cuts_it() -> None:
    from todobox_deploy.core.streams import lines_of

    assert lines_of("") == [] and lines_of("a\n") == ["a"] and lines_of("a\nb") == ["a", "b"]
    assert lines_of("3 checks FAILED\rALL OK\n") == ["3 checks FAILED\rALL OK"]  # a lone CR is content
    assert lines_of("crlf\r\nnext\r\n") == ["crlf", "next"] and lines_of("\n\n") == ["", ""]
