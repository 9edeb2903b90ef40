"""The domain, engine and I/O layers never import Textual (only ``todobox_deploy.tui`` and the CLI may)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import importlib, pkgutil, sys
    import todobox_deploy

    SKIP = ("todobox_deploy.tui", "todobox_deploy.cli", "todobox_deploy.sandbox.todobox_app")
    imported = []
    for info in pkgutil.walk_packages(todobox_deploy.__path__, "todobox_deploy."):
        name = info.name
        if name.endswith(".__main__") or any(name == s or name.startswith(s + ".") for s in SKIP):
            continue
        importlib.import_module(name)
        imported.append(name)
    leaked = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
    print(len(imported), "modules")
    if leaked:
        print("textual imported:", leaked[:5])
        sys.exit(1)
    """
)


def test_no_textual_outside_tui() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert int(result.stdout.split()[0]) >= 5  # the walk really found modules


def test_checklist_alone_is_textual_free() -> None:
    code = (
        "import sys, todobox_deploy.checklist as c; c.DeployProgress(c.CHECKLIST); "
        "print('textual' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr
