"""Inventory: Ansible INI/YAML sources, credentials, and the one mapping from inventory settings to connection specs."""
