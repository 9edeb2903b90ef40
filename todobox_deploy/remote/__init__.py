"""Remote execution over SSH (paramiko): one verified connection per deploy, streaming commands,
detached runs that survive link drops, secrets kept out of argv/env/output, PyMySQL over SSH.

No Textual here, and this package imports nothing heavy: import the submodules directly.

- ``connection``: ``SshConnection`` (connect/run/capture/run_detached/attach/run_state/cancel_detached/
  open_mysql/close), ``HostKeyInfo``, ``CommandResult``
- ``errors``: ``RemoteError`` and its subclasses (host keys, auth, link, run state, unsafe arguments)
- ``secrets``: ``Secrets`` (+ URL-encoded forms); ``lines`` redacts streams line by line, chunk-safe
- ``mysql``: ``mysql_command`` / ``mysql_script_with_input`` (credentials as an option file on stdin)
- ``quoting``: ``join``, ``operand``, ``bash``, ``pipeline`` (every stage's status checked)
- ``local``: ``run_local`` (git and local checks through ``sh``, same sink shape)
- ``hostkeys`` / ``sshconfig``: read-only known_hosts parser and pin file; ~/.ssh/config resolution
- ``detached`` / ``stream`` / ``lines``: the mechanics behind the above
"""
