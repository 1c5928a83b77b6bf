"""The lab: emulated Windows hosts speaking real WinRM/PSRP on loopback, serving evidence bundles."""
