"""Any inventory source Ansible accepts (YAML, ``group_vars/``/``host_vars/`` folders, inventory
plugins, scripts), read through ``ansible-inventory -i SRC --list`` when Ansible is installed.

A subprocess, never an import: Ansible's code (GPL) is not loaded into port80. Its JSON (groups,
children, and each host's variables with Ansible's own precedence already applied) is turned into
the INI form port80's reader knows, so the one resolver (``ansible_ini``) and the one mapping to
connection settings (``targets``) apply unchanged, and ``--limit`` patterns work the same.

When: ``ansible-inventory`` is on PATH and the source is not a plain INI file port80 reads itself
(a folder, a ``.yml``/``.yaml``/``.json``/script/plugin source, or an INI file with ``group_vars/``
or ``host_vars/`` beside it, which Ansible would merge). Without Ansible the built-in INI reader
stays the default and a YAML source gets a message saying to install ansible-core.

Vault: port80 never reads vaulted values. ``ansible-inventory`` runs with no vault secret (and no
prompt); a vault-encrypted value (``!vault``) is left out with a warning naming the host and the
variable (give the password with ``PORT80_PASSWORD`` or ``--password-file``); a vault-encrypted
file makes the inventory fail with a message saying so.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

from remote.inventory.ansible_ini import (Inventory, InventoryError, _parse_value, is_secret_var, load_inventory,
                                          parse_inventory)

TOOL = "ansible-inventory"
TIMEOUT = 300
_ANSIBLE_SUFFIXES = {".yml", ".yaml", ".json", ".py", ".sh", ".toml"}
_VAULT_KEY = "__ansible_vault"


def ansible_inventory() -> Optional[str]:
    """``ansible-inventory`` on PATH, or beside this Python (ansible-core in port80's own venv)."""
    found = shutil.which(TOOL)
    if found:
        return found
    beside = Path(sys.executable).parent / TOOL
    return str(beside) if os.access(beside, os.X_OK) else None


def wants_ansible(path: Path) -> bool:
    """Whether ``path`` is a source only Ansible reads as Ansible would (see the module docstring)."""
    p = Path(path)
    if p.is_dir():
        return True
    if p.suffix.lower() in _ANSIBLE_SUFFIXES:
        return True
    if p.is_file() and os.access(p, os.X_OK) and p.suffix.lower() not in (".ini", ".cfg", ""):
        return True
    parent = p.parent
    return (parent / "group_vars").is_dir() or (parent / "host_vars").is_dir()


def load_any(path: "str | Path") -> Inventory:
    """The inventory at ``path``: through ``ansible-inventory`` when that applies, else port80's INI reader."""
    p = Path(path)
    tool = ansible_inventory()
    if tool is not None and wants_ansible(p):
        return load_with_ansible(p, tool)
    try:
        return load_inventory(p)
    except InventoryError as e:
        if tool is None and ("YAML" in str(e) or "is a directory" in str(e)):
            raise InventoryError(f"{e}; install ansible-core (pip install ansible-core) and port80 reads any "
                                 "inventory source Ansible reads, through ansible-inventory", None) from None
        raise


def _run(tool: str, src: Path) -> dict[str, Any]:
    env = dict(os.environ)
    for k in ("ANSIBLE_VAULT_PASSWORD_FILE", "ANSIBLE_VAULT_IDENTITY_LIST"):
        env.pop(k, None)  # no vault secret from the environment: vaulted values stay encrypted
    env["PYTHONWARNINGS"] = "ignore"
    env.setdefault("ANSIBLE_NOCOLOR", "1")
    env.setdefault("ANSIBLE_LOCALHOST_WARNING", "False")
    env.setdefault("ANSIBLE_INVENTORY_UNPARSED_WARNING", "False")
    try:
        p = subprocess.run([tool, "-i", str(src), "--list"], capture_output=True, text=True, env=env,
                           stdin=subprocess.DEVNULL, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InventoryError(f"{TOOL} failed: {e}", str(src)) from None
    err = " ".join((p.stderr or "").split())
    if p.returncode != 0 or not p.stdout.strip():
        if "vault" in err.lower() and ("decrypt" in err.lower() or "secret" in err.lower()):
            raise InventoryError("holds vault-encrypted content: port80 does not read vaulted values; give the "
                                 "password with PORT80_PASSWORD or --password-file, and keep vaulted files out of "
                                 "the inventory port80 reads", str(src))
        raise InventoryError(f"{TOOL} failed (exit {p.returncode}): {_short(err, 300) or 'no output'}", str(src))
    try:
        data: dict[str, Any] = json.loads(p.stdout)
    except ValueError as e:
        raise InventoryError(f"{TOOL} printed no JSON ({e})", str(src)) from None
    if "[WARNING]: Unable to parse" in (p.stderr or "") or "No inventory was parsed" in (p.stderr or ""):
        raise InventoryError(f"{TOOL} could not parse it: {_short(err, 300)}", str(src))
    return data


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _value(v: Any) -> str:
    """A variable value as an INI token that port80's reader turns back into the same value."""
    if isinstance(v, str):
        if not v:
            return "''"
        # a string the reader would take for a literal ("80,443" -> a tuple) keeps its quotes
        return shlex.quote(v) if _parse_value(v) == v else shlex.quote(repr(v))
    if isinstance(v, bool) or v is None or isinstance(v, (int, float)):
        return shlex.quote(repr(v))
    return shlex.quote(repr(v))  # list / dict: a Python literal (ast.literal_eval reads it back)


def to_ini(data: dict[str, Any], warnings: list[str]) -> str:
    """``ansible-inventory --list`` JSON as an INI inventory (vaulted values left out, with a warning)."""
    hostvars: dict[str, dict[str, Any]] = (data.get("_meta") or {}).get("hostvars") or {}
    groups = {k: v for k, v in data.items() if k != "_meta" and isinstance(v, dict)}
    lines: list[str] = ["# generated from ansible-inventory --list by port80"]
    placed: set[str] = set()

    def host_line(name: str) -> str:
        parts = [shlex.quote(name) if any(c.isspace() for c in name) else name]
        for key, val in (hostvars.get(name) or {}).items():
            if not key.isidentifier():
                continue
            if isinstance(val, dict) and _VAULT_KEY in val:
                warnings.append(f"host {name}: {key} is vault-encrypted: not read (port80 never reads vaulted "
                                f"values{'; give the password with PORT80_PASSWORD or --password-file' if is_secret_var(key) else ''})")
                continue
            parts.append(f"{key}={_value(val)}")
        return " ".join(parts)

    # groups in Ansible's order: depth first from all's children (the JSON's keys are sorted)
    order: list[str] = []

    def visit(g: str) -> None:
        if g in order or g == "all" or g not in groups:
            return
        order.append(g)
        for c in groups[g].get("children") or []:
            visit(c)

    for c in (groups.get("all") or {}).get("children") or []:
        visit(c)
    order += [g for g in groups if g not in order and g != "all"]
    for g in order:
        hosts = groups[g].get("hosts") or []
        if not hosts:
            continue
        lines.append(f"[{g}]")
        for h in hosts:
            if h in placed:
                lines.append(h)
            else:
                lines.append(host_line(h))
                placed.add(h)
        lines.append("")
    for h in (groups.get("all") or {}).get("hosts") or []:  # hosts only in 'all'
        if h not in placed:
            lines.append("[ungrouped]")
            lines.append(host_line(h))
            placed.add(h)
    for h in hostvars:
        if h not in placed:
            lines += ["[ungrouped]", host_line(h)]
            placed.add(h)
    for g in order:
        children = [c for c in groups[g].get("children") or [] if c != g]
        if g != "all" and children:
            lines.append(f"[{g}:children]")
            lines.extend(children)
            lines.append("")
    return "\n".join(lines) + "\n"


def load_with_ansible(path: Path, tool: Optional[str] = None) -> Inventory:
    tool = tool or ansible_inventory()
    if tool is None:
        raise InventoryError(f"{TOOL} is not on PATH (pip install ansible-core)", str(path))
    data = _run(tool, Path(path))
    warnings: list[str] = []
    text = to_ini(data, warnings)
    source = f"{path} (via {TOOL})"
    try:
        inv = parse_inventory(text, source)
    except InventoryError as e:  # line numbers of the generated INI mean nothing to the user: drop them
        raise InventoryError(re.sub(r"^.*?\(via [\w-]+\)(:\d+)?:\s*", "", str(e)), source) from None
    inv.warnings = list(warnings) + [re.sub(r"(\(via [\w-]+\)):\d+:", r"\1:", w) for w in inv.warnings]
    return inv
