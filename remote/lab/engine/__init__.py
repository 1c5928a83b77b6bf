"""The lab's Windows emulation: PSRP shell, PowerShell commands, the machine model."""
