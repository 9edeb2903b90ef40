"""The production deploy checklist (seed: DEPLOYMENT_CHECKLIST.md) as a tree with stable dotted ids.

Bodies keep the seed's commands and text; code fences are normalised (the seed closes ```bash blocks with
```sql/```python/```yaml). Ids are part of the journal format: never rename one.
"""

from __future__ import annotations

from todobox_deploy.checklist.model import ChecklistNode, NodeKind, check_ids

__all__ = ["CHECKLIST", "PHASES", "build_checklist"]


def _code(text: str, lang: str = "bash") -> str:
    return f"```{lang}\n{text.strip(chr(10))}\n```"


def _section(node_id: str, title: str, *children: ChecklistNode, body: str = "") -> ChecklistNode:
    return ChecklistNode(node_id, title, NodeKind.SECTION, body, tuple(children))


def _phase(node_id: str, title: str, phase: str, body: str, *children: ChecklistNode) -> ChecklistNode:
    return ChecklistNode(node_id, title, NodeKind.AUTOMATED, body, tuple(children), phase=phase)


def _manual(node_id: str, title: str, body: str = "") -> ChecklistNode:
    return ChecklistNode(node_id, title, NodeKind.MANUAL, body)


def _ref(node_id: str, title: str, body: str = "") -> ChecklistNode:
    return ChecklistNode(node_id, title, NodeKind.REFERENCE, body)


_PYTHON_QUERY_TEST = """
python3 << 'EOF'
from app import app, db
from app.models import User

with app.app_context():
    try:
        # This query uses api_token column
        users = db.session.execute(
            db.select(User).limit(1)
        ).scalars().first()

        if users:
            print(f"✅ User query successful")
            print(f"   ID: {users.id}")
            print(f"   Username: {users.username}")
            print(f"   API Token: {users.api_token}")
        else:
            print("✅ Database query works (no users yet)")
    except Exception as e:
        print(f"❌ Error: {e}")
        exit(1)
EOF
"""

_PYTHON_TOKEN_TEST = """
python3 << 'EOF'
from app import app, db
from app.models import User

with app.app_context():
    try:
        user = db.session.execute(
            db.select(User).limit(1)
        ).scalars().first()

        if user:
            # Generate a new token
            token = user.generate_api_token()
            print(f"✅ API token generated: {token[:10]}...")
        else:
            print("⚠️  No users in database")
    except Exception as e:
        print(f"❌ Error: {e}")
        exit(1)
EOF
"""


def _predeploy() -> ChecklistNode:
    return _section(
        "predeploy",
        "Pre-Deployment (Before you deploy the fix)",
        _manual("predeploy.read_summary", "Read MIGRATION_FIX_SUMMARY.md"),
        _manual("predeploy.read_analysis", "Read MIGRATION_ANALYSIS.md to understand the issue"),
        _phase(
            "predeploy.backup",
            "Backup production database",
            "backup",
            _code(
                "mysqldump -u username -p database_name > backup_$(date +%Y%m%d_%H%M%S).sql\n"
                "# Store this backup safely!"
            ),
        ),
        _phase(
            "predeploy.preflight",
            "Pre-flight checks (before the stop)",
            "preflight",
            "Runs before the app is stopped: `git fetch` (nothing checked out), the revision graph read "
            "from the fetched commit's migration files (the app is not imported), the entry point the "
            "process manager loads, the database's state against what its revisions claim, open "
            "transactions that would block the ALTER, and the migrated table's checksum.",
        ),
        _phase(
            "predeploy.staging_test",
            "Test migrations on a development/staging copy of production database",
            "rehearsal",
            "Restores the verified backup into a scratch schema on the same server, checks its checksum "
            "against production, runs the migration there by the path the real run takes (the app is not "
            "imported), records what it did, and drops the scratch schema.",
        ),
        _phase(
            "predeploy.notify_team",
            "Notify team about scheduled deployment",
            "notify",
            "Shows the message, then sends it to `[notify] command` (on your machine, message on stdin) or "
            "`[notify] webhook_url`. Without either, notify the team yourself and confirm.",
        ),
    )


def _deploy_steps() -> tuple[ChecklistNode, ...]:
    stop = _code(
        """
# If using systemd
systemctl stop todobox

# If using supervisor
supervisorctl stop todobox

# If using gunicorn manually
# gracefully stop the process
"""
    )
    code = _code(
        """
cd /path/to/todobox

# Pull latest changes
git pull origin master

# Or if using manual deployment:
# Copy the new migration file:
# migrations/versions/d1f2e3c4b5a6_fix_api_token_column_ensure_api_token.py
"""
    )
    files = _code(
        """
# Check all migration files are in place
ls -la migrations/versions/

# Should see:
# ✅ 6793349c088c_increase_password_hash_column_size_to_.py
# ✅ 366e5694a9ad_add_oauth_columns_to_user_model.py
# ✅ 3e5106ee570c_add_api_token_fields_to_user_model.py
# ✅ c682ef478e45_add_api_token_field_to_user_model.py
# ✅ d1f2e3c4b5a6_fix_api_token_column_ensure_api_token.py  ← NEW
"""
    )
    db_check = _code(
        """
# Connect to production database
mysql -u username -p database_name

# Check current schema
DESCRIBE user;

# Check if api_token exists
SELECT COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS
WHERE TABLE_NAME='user' AND COLUMN_NAME='api_token';

# Check migration history
# (From Flask):
# flask db history
"""
    )
    migrate = _code(
        """
# Activate virtual environment
source venv/bin/activate

# Set production environment
export FLASK_ENV=production
export DATABASE_URL=mysql://user:pass@host/dbname

# Run migrations
flask db upgrade

# Expected output:
# INFO [alembic.runtime.migration] Context impl MySQLImpl.
# INFO [alembic.runtime.migration] Will assume non-transactional DDL.
# INFO [alembic.migration] Running upgrade 6793349c088c -> 366e5694a9ad
# INFO [alembic.migration] Running upgrade 366e5694a9ad -> 3e5106ee570c
# INFO [alembic.migration] Running upgrade 3e5106ee570c -> c682ef478e45
# INFO [alembic.migration] Running upgrade c682ef478e45 -> d1f2e3c4b5a6  ← NEW
"""
    )
    verify = _code(
        """
# Check current migration status
flask db current
# Should show: d1f2e3c4b5a6

# Verify column exists
mysql -u username -p database_name \\
  -e "DESCRIBE user WHERE Field='api_token';"

# Verify index exists
mysql -u username -p database_name \\
  -e "SHOW INDEX FROM user WHERE Column_name='api_token';"
"""
    )
    start = _code(
        """
# Start the service
systemctl start todobox

# Or supervisor
supervisorctl start todobox

# Or manually (for testing)
flask run --host=0.0.0.0 --port=5000
"""
    )
    p = "deploy.post_verify"
    post = _phase(
        p,
        "8. Post-Deployment Verification",
        "post_verify",
        "Runs tests 1, 2, 4 and 5 on the host; test 3 (login) is confirmed by the operator.",
        _ref(
            f"{p}.http", "Test 1: Check application starts without errors", _code("curl http://your-domain/")
        ),
        _ref(f"{p}.logs", "Test 2: Check logs for errors", _code("tail -f /var/log/todobox/app.log")),
        _manual(
            f"{p}.login",
            "Test 3: Test login (api_token column should work)",
            "Use your application's login feature.",
        ),
        _ref(f"{p}.db_query", "Test 4: Database query test", _code(_PYTHON_QUERY_TEST)),
        _ref(f"{p}.api_token", "Test 5: Check API token functionality", _code(_PYTHON_TOKEN_TEST)),
    )
    return (
        _phase("deploy.stop", "1. Stop Application (If Needed)", "stop_app", stop),
        _phase("deploy.code", "2. Deploy New Code", "deploy_code", code),
        _phase("deploy.verify_files", "3. Verify Migration Files", "verify_files", files),
        _phase("deploy.db_check", "4. Check Database Before Migration", "db_check", db_check),
        _phase("deploy.migrate", "5. Run Database Migrations", "migrate", migrate),
        _phase("deploy.verify_migration", "6. Verify Migration Completed", "verify_migration", verify),
        _phase("deploy.start", "7. Start Application", "start_app", start),
        post,
    )


def _monitoring() -> ChecklistNode:
    logs = _code(
        """
# Application logs
tail -f /var/log/todobox/app.log

# MySQL error log
tail -f /var/log/mysql/error.log

# System logs
journalctl -u todobox -f
"""
    )
    i = "monitoring.issues"
    issues = _section(
        i,
        "Common Issues & Solutions",
        _ref(
            f"{i}.unknown_column",
            '"Unknown column" error persists',
            "Run `flask db upgrade` again, verify migration status with `flask db current`",
        ),
        _ref(f"{i}.wont_start", "Application won't start", "Check logs: `tail -f /var/log/todobox/app.log`"),
        _ref(
            f"{i}.slow_db",
            "Slow database response",
            "Migration is running, wait for completion (can take minutes on large tables)",
        ),
        _ref(
            f"{i}.connection_refused",
            "Connection refused",
            "Ensure database is accessible: `mysql -u user -p -h host database`",
        ),
    )
    r = "monitoring.rollback"
    rollback = _section(
        r,
        "Rollback Procedure (If needed)",
        _ref(f"{r}.stop", "1. Stop the application", _code("systemctl stop todobox")),
        _ref(
            f"{r}.restore_db",
            "2. Restore database from backup",
            _code("mysql -u username -p database_name < backup_YYYYMMDD_HHMMSS.sql"),
        ),
        _ref(f"{r}.downgrade", "3. Rollback migrations", _code("flask db downgrade -1")),
        _ref(f"{r}.previous_code", "4. Deploy previous version of code", _code("git checkout HEAD~1")),
        _ref(f"{r}.start", "5. Start application", _code("systemctl start todobox")),
        _ref(f"{r}.verify", "6. Verify it works", _code("curl http://your-domain/")),
        body="Only if needed: these steps undo the deploy, in this order.",
    )
    return _section(
        "monitoring",
        "Monitoring Post-Deployment",
        _ref("monitoring.logs", "Logs to Watch", logs),
        issues,
        rollback,
    )


def _postdeploy() -> ChecklistNode:
    items = (
        ("app_starts", "Application starts without errors"),
        ("login", "Can login to application"),
        ("no_unknown_column", 'No "Unknown column" errors in logs'),
        ("db_queries", "Database queries work normally"),
        ("api_token", "API token features work (if used)"),
        ("user_features", "All user features functional"),
        ("team_notified", "Team notified of successful deployment"),
    )
    return _section(
        "postdeploy",
        "Post-Deployment Checklist",
        *(_manual(f"postdeploy.{key}", title) for key, title in items),
    )


def _quick_reference() -> ChecklistNode:
    q = "reference"
    commands = (
        ("migration_status", "Check migration status", "flask db current"),
        ("history", "View all migrations", "flask db history"),
        ("branches", "View migration branches", "flask db branches"),
        ("column", "Verify column exists", 'mysql -u user -p db -e "DESCRIBE user;" | grep api_token'),
        ("index", "Verify index exists", 'mysql -u user -p db -e "SHOW INDEX FROM user;" | grep api_token'),
        (
            "alembic_version",
            "Check for any SQL errors",
            'mysql -u user -p db -e "SELECT * FROM alembic_version;"',
        ),
    )
    return _section(
        q,
        "Verification Commands Quick Reference",
        *(_ref(f"{q}.{key}", title, _code(cmd)) for key, title, cmd in commands),
    )


def _support() -> ChecklistNode:
    s = "support"
    return _section(
        s,
        "Support Contact",
        _ref(f"{s}.check_logs", "Check logs first", "`tail -f /var/log/todobox/app.log`"),
        _ref(f"{s}.troubleshooting", "Read troubleshooting section", "In `MIGRATION_FIX_GUIDE.md`."),
        _ref(f"{s}.restore", "Restore from backup", "If critical."),
        _ref(f"{s}.contact", "Contact support", "With error details and logs."),
        body="If you encounter issues:",
    )


def _success() -> ChecklistNode:
    items = (
        ("migration", "Migration completed without errors"),
        ("app_starts", "Application starts normally"),
        ("no_unknown_column", 'No "Unknown column" errors'),
        ("db_queries", "Database queries work"),
        ("features", "All features functional"),
    )
    return _section(
        "success", "Success Criteria", *(_manual(f"success.{key}", title) for key, title in items)
    )


def build_checklist() -> ChecklistNode:
    """Build (and check) the whole checklist tree."""
    root = _section(
        "checklist",
        "Production Deployment Checklist - API Token Migration Fix",
        _predeploy(),
        _section("deploy", "Deployment Steps (Execute in order)", *_deploy_steps()),
        _monitoring(),
        _postdeploy(),
        _quick_reference(),
        _support(),
        _success(),
    )
    check_ids(root)
    return root


CHECKLIST: ChecklistNode = build_checklist()

DOCS: dict[str, str] = {
    "predeploy.read_summary": "MIGRATION_FIX_SUMMARY.md",
    "predeploy.read_analysis": "MIGRATION_ANALYSIS.md",
}
"""Checklist item id -> the document it asks the operator to read (a path in the app's repository): the
cockpit shows it as it is in the commit being deployed (engine/docs.py)."""
PHASES: tuple[str, ...] = CHECKLIST.phases()
