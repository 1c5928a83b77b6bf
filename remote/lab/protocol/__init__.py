"""The lab's protocol side: HTTP, WSMan, authentication, TLS, faults."""
