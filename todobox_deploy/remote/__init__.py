"""Remote execution over SSH (paramiko): one verified connection per deploy, streaming commands,
detached runs that survive link drops, secrets kept out of argv/env/output, PyMySQL over SSH.

Import submodules directly (``remote.connection``); this package imports nothing heavy.
"""
