"""A small PowerShell-pipeline engine: what a Windows host answers, written from how Windows behaves.

The lab's protocol server hands us ``api.Statement``s (decoded from PSRP CREATE_PIPELINE); we run
them against an emulated machine (``host.Machine``: the evidence bundle plus its mutable state) and
return an ``api.Execution``. This module knows PowerShell and the Windows tools (netstat, netsh http,
tasklist, whoami, hostname, iisreset, the service cmdlets, CIM/WMI); ``host.py`` knows the machine.
It is independent of port80's own collector and parsers on purpose: the lab must not share the
tool's assumptions.

Semantics (each decision below is what Windows PowerShell 5.1 does; sources in the comments):

* A pipeline added as commands (``add_cmdlet``) whose command cannot be found fails at pipeline
  construction, before any command of that statement runs: ``CommandNotFoundException`` is the
  pipeline's terminating error (state Failed).
* Several statements (``AddStatement``): the server runs them as a *batch* (PowerShell.cs
  ``BeginBatchInvoke`` → ``BatchInvocationCallback``/``DoRemainingBatchCommands``, one statement
  after the other). ``ServerPowerShellDriver.HandlePowerShellInvocationStateChanged`` returns early
  only for an intermediate *Completed* state ("If completed successfully then allow extra commands
  to run"); on *Failed* it sends the remaining data and the Failed state to the client ("For failed
  or stopped state, extra commands cannot run and we allow this command invocation to finish") and
  unregisters its stream handlers. So the client sees the output of the statements before the
  failing one, then the pipeline Failed with that error; nothing of the later statements reaches
  it. The local batch itself continues with ``$ErrorActionPreference`` Continue
  (``BatchInvocationCallback`` appends the exception and calls ``DoRemainingBatchCommands``), so
  later statements still run on the host: their side effects (a service stopped…) happen, their
  output is lost. We do the same. Sources: github.com/PowerShell/PowerShell
  src/System.Management.Automation/engine/hostifaces/PowerShell.cs and
  engine/remoting/server/ServerPowerShellDriver.cs.
* Inside a *script* (``add_script`` / ``Invoke-Expression``) an unknown command is a
  statement-terminating error: the error record is written, the script goes on with its next
  statement and the pipeline ends Completed (``PowerShell.Create().AddScript("oops").Invoke()``
  does not throw, it sets HadErrors: github.com/PowerShell/PowerShell/issues/20079; pypsrp's
  ``test_psrp_error_failed`` needs ``$ErrorActionPreference = 'Stop'`` to make a script fail).
* Non-terminating errors (service not found, access denied…) go to the error stream; the pipeline
  continues and ends Completed.
* A native command's stdout arrives as one string per line; ``| Out-String`` joins them with CRLF
  and ends with CRLF; ``Out-String -Stream`` gives one string per line.
"""


# The engine lives in four modules split along its seams (this module keeps the names importable):
#   formats.py  - Windows output formats (messages, JSON, tasklist, netstat, objects, Out-String)
#   script.py   - tokenizer, binding, command table, runner
#   natives.py  - native commands;  cmdlets.py, pipeline_cmdlets.py - cmdlets
#   language.py - the PowerShell parser; interp.py - its evaluator (scripts, Invoke-Expression)
# A new lab command is a new ``@native``/``@cmdlet`` function in natives.py/cmdlets.py (or a module
# of its own imported below).

from remote.lab.engine.formats import *  # noqa: F401,F403
from remote.lab.engine.script import *  # noqa: F401,F403
from remote.lab.engine import natives as _natives  # noqa: F401  (registers the native commands)
from remote.lab.engine import cmdlets as _cmdlets  # noqa: F401  (registers the cmdlets)
from remote.lab.engine import pipeline_cmdlets as _pipeline_cmdlets  # noqa: F401  (Sort-Object, Format-*, …)
