"""port80: who holds port 80 (and friends) on your Windows fleet, and why.

Exit codes: 0 every host scanned; 1 some hosts failed; 2 bad usage or input; 3 with --fail-if-held
when a requested port is held on a scanned host.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from remote import __version__

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False)

EXIT_OK, EXIT_FAILED_HOSTS, EXIT_USAGE, EXIT_HELD = 0, 1, 2, 3

PortOpt = typer.Option(None, "--port", "-p", help="Port to audit (repeatable). Default: 80.")
FormatOpt = typer.Option("table", "--format", "-f", help="table | csv | json | jsonl | markdown")
OutputOpt = typer.Option(None, "--output", "-o", help="Write the report to this file instead of stdout.")


def fail(message: str, code: int = EXIT_USAGE) -> "typer.Exit":
    typer.echo(f"port80: error: {message}", err=True)
    return typer.Exit(code)


def _ports(port: Optional[List[int]]) -> list[int]:
    ports = list(dict.fromkeys(port or [80]))
    for p in ports:
        if not 0 < p < 65536:
            raise fail(f"--port {p}: not a TCP port (1-65535)")
    return ports


def _emit(text: str, output: Optional[Path]) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8", newline="")
    except OSError as e:
        raise fail(f"{output}: cannot write ({e.strerror or e})")


def _format(fmt: str) -> str:
    from remote.report import FORMATS

    if fmt not in FORMATS:
        raise fail(f"--format {fmt}: choose from {', '.join(FORMATS)}")
    return fmt


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"port80 {__version__}")


@app.command("parse")
def parse_cmd(
    kind: str = typer.Argument(..., help="netstat | servicestate | urlacl | iplisten | tasklist | services | processes"),
    file: Path = typer.Argument(..., help="A file holding that command's output (any Windows encoding)."),
) -> None:
    """Parse one command's output and print the records as JSON."""
    from remote.parsers import PARSERS
    from remote.records import to_dict
    from remote.textio import decode_text

    if kind not in PARSERS:
        raise fail(f"unknown kind {kind!r} (choose from {', '.join(PARSERS)})")
    try:
        data = file.read_bytes()
    except OSError as e:
        raise fail(f"{file}: cannot read ({e.strerror or e})")
    result = to_dict(PARSERS[kind](decode_text(data)))
    if kind == "servicestate":
        result = {"view": result.pop("view"), "request_queues": result.pop("request_queues"),
                  "url_groups": result.pop("url_groups"), **result}
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False))


@app.command()
def analyze(
    paths: List[Path] = typer.Argument(..., help="Evidence bundle folders, or folders of bundle folders."),
    port: Optional[List[int]] = PortOpt,
    fmt: str = FormatOpt,
    output: Optional[Path] = OutputOpt,
    fail_if_held: bool = typer.Option(False, "--fail-if-held", help="Exit 3 when a requested port is held."),
) -> None:
    """Re-analyse evidence bundles offline and print the fleet report."""
    from remote.analysis import analyze_bundle
    from remote.bundle import BundleError, find_bundles, read_bundle
    from remote.report import render

    ports = _ports(port)
    fmt = _format(fmt)
    try:
        dirs = find_bundles(paths)
    except BundleError as e:
        raise fail(str(e))
    reports = [analyze_bundle(read_bundle(d), ports) for d in dirs]
    _emit(render(reports, fmt, ports), output)
    raise typer.Exit(_exit_code(reports, fail_if_held))


def _exit_code(reports, fail_if_held: bool) -> int:
    from remote.analysis import FAILED_STATUSES

    if fail_if_held and any(
        r.status not in FAILED_STATUSES and any(p.holder not in ("free", "unknown") for p in r.ports) for r in reports
    ):
        return EXIT_HELD
    if any(r.status in FAILED_STATUSES for r in reports):
        return EXIT_FAILED_HOSTS
    return EXIT_OK


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("port80: interrupted", err=True)
        sys.exit(130)
