"""One parser per command, pure functions: text in, typed records (remote.parsers.records) out.

No parser raises, whatever the input: each returns what it could plus warnings.
"""

from typing import Any, Callable

from remote.evidence.kinds import KINDS

from .common import detect_error
from .excludedportrange import parse_excludedportrange
from .iis_apppools import parse_iis_apppools
from .iis_sites import parse_iis_sites
from .getservice import parse_getservice
from .iplisten import parse_iplisten
from .netstat import parse_netstat
from .nettcpconnection import parse_nettcpconnection
from .services import parse_processes_json, parse_services_json, parse_services_table
from .servicestate import parse_servicestate
from .sslcert import parse_sslcert
from .tasklist import parse_tasklist
from .urlacl import parse_urlacl

# kind -> parser, from the evidence-kind registry (remote/evidence/kinds.py)
PARSERS: dict[str, Callable[[str], Any]] = {k.name: k.parse for k in KINDS.values() if k.parser}

__all__ = [
    "PARSERS",
    "detect_error",
    "parse_excludedportrange",
    "parse_iis_apppools",
    "parse_iis_sites",
    "parse_nettcpconnection",
    "parse_sslcert",
    "parse_getservice",
    "parse_iplisten",
    "parse_netstat",
    "parse_processes_json",
    "parse_services_json",
    "parse_services_table",
    "parse_servicestate",
    "parse_tasklist",
    "parse_urlacl",
]
