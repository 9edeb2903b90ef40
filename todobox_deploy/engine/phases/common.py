"""Small helpers the phases share."""

from __future__ import annotations

from todobox_deploy.core.streams import CommandOutput, OutputSink, Stream, lines_of


def keep_stdout(sink: OutputSink, into: list[str]) -> OutputSink:
    """A sink that passes everything on and also keeps the stdout lines (to parse a command's answer)."""

    def tee(stream: Stream, lines: list[str]) -> None:
        if stream == "stdout":
            into.extend(lines)
        sink(stream, lines)

    return tee


def show_output(sink: OutputSink, result: CommandOutput, title: str | None = None) -> None:
    """A captured command in the log as if it had streamed: ``$ title``, then its lines (cut as the
    streaming path cuts them: a lone ``\\r`` stays in its line)."""
    if title:
        sink("info", [f"$ {title}"])
    if result.stdout:
        sink("stdout", lines_of(result.stdout))
    if result.stderr:
        sink("stderr", lines_of(result.stderr))
