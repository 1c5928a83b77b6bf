"""The fleet runner: per-host tasks, deadlines, streaming results, failure classes."""
