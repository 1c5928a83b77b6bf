"""Audits over time: scan history (SQLite), drift between two runs, policy as code."""
