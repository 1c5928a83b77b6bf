"""Evidence: the evidence-kind table, bundles on disk, Windows text encodings."""
