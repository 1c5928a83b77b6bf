"""port80 command line (thin: parses options, calls the library, maps errors to exit codes)."""
import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


def main() -> None:
    app()
