"""Report format names (a module of its own so the CLI can check ``--format`` before it loads the
report and analysis code: a scan starts its hosts first)."""

FORMATS = ("table", "csv", "json", "jsonl", "markdown", "html")
