"""Remediation: the pure planner (plan), the journal and undo plans (journal), their text (render),
applying and undoing a plan over remoting (apply)."""
