"""Remoting: the only code that talks to hosts (pypsrp), and port80's tuning of the pypsrp client."""
