"""Remediation: the pure planner, the journal, applying and undoing a plan."""
