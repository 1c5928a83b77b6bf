"""One parser per command, pure functions: text in, typed records (remote.records) out.

No parser raises, whatever the input: each returns what it could plus warnings.
"""
