"""Small helpers the phases share."""

from __future__ import annotations

from todobox_deploy.core.streams import OutputSink, Stream


def keep_stdout(sink: OutputSink, into: list[str]) -> OutputSink:
    """A sink that passes everything on and also keeps the stdout lines (to parse a command's answer)."""

    def tee(stream: Stream, lines: list[str]) -> None:
        if stream == "stdout":
            into.extend(lines)
        sink(stream, lines)

    return tee
