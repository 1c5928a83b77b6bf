"""`port80 explain`: one host and port in plain sentences."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from remote.cli.app import app, fail, port_list


@app.command()
def explain(
    host: str = typer.Argument(..., help="The host to explain (inventory name, hostname or bundle folder name)."),
    paths: Optional[List[Path]] = typer.Argument(None, help="Scan folders or evidence bundles (default: .)."),
    port: int = typer.Option(80, "--port", "-p", help="The port to explain."),
) -> None:
    """One host and port in plain sentences: who holds it, the evidence lines, why, and how to free it."""
    from remote.analysis.verdicts import analyze_bundle
    from remote.evidence.bundle import BundleError, find_bundles, read_bundle
    from remote.report.explain import explain as explain_text

    port = port_list([port])[0]  # 1-65535, the same one-line error as every --port
    dirs = []
    for path in paths or [Path(".")]:
        try:
            dirs += find_bundles([path])
        except BundleError as e:  # a demo's --out folder holds the scan folder one level down
            deeper = [c for c in sorted(Path(path).iterdir()) if c.is_dir()] if Path(path).is_dir() else []
            found_deeper = []
            for c in deeper:
                try:
                    found_deeper += find_bundles([c])
                except BundleError:
                    continue
            if not found_deeper:
                raise fail(str(e))
            dirs += found_deeper
    want = host.casefold()
    found = []
    for d in dirs:
        b = read_bundle(d)
        names = {str(x).casefold() for x in (b.host, b.meta.get("host"), b.meta.get("hostname"), d.name) if x}
        if want in names:
            found.append(b)
    if not found:
        raise fail(f"{host}: no evidence bundle for this host in {', '.join(str(p) for p in paths or [Path('.')])}")
    if len(found) > 1:
        raise fail(f"{host}: {len(found)} bundles match ({', '.join(str(b.path) for b in found)}); name one folder")
    b = found[0]
    report = analyze_bundle(b, [port])
    from remote.report.sanitize import terminal_text

    typer.echo(terminal_text(explain_text(report, port, b.texts)), nl=False)
