"""port80: who holds port 80 (and friends) on a Windows fleet, and why."""

from remote.remoting.xmlns import install as _threadsafe_xml_namespaces

__version__ = "0.1.0"

_threadsafe_xml_namespaces()  # pypsrp's WSMan() edits a process-wide dict per host (remote/remoting/xmlns.py)
