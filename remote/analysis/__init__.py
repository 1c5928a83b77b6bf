"""Analysis: who holds each port and why (pure), with the knowledge base of known URL registrations."""
