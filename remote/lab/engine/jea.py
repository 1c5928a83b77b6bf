"""A JEA endpoint in the lab: a session configuration made from the files ``port80 jea`` wrote.

The endpoint runs in NoLanguage mode with only the role's visible commands, as Windows does:

* a script (``add_script``) is refused with PowerShell's language-mode error (ParseException
  ``ScriptsNotAllowed``: "The syntax is not supported by this runspace. This can occur if the
  runspace is in no-language mode." — PowerShell's ParserStrings resource; no capture here);
* a command the role does not expose fails as an unknown command does (CommandNotFoundException,
  the same record ``commands.not_found_error`` builds);
* a parameter value outside a ValidateSet, or an argument that does not match a function's
  ValidatePattern, fails parameter binding (ParameterBindingValidationException, with PowerShell's
  wording) before anything runs;
* what passes runs on the emulated host; the wrapper functions (``netsh.exe`` ...) run the tool.

Configuration names are matched case-insensitively, as WinRM does. Used by shell.HostRuntime.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from remote.lab import api

SCRIPTS_NOT_ALLOWED = ("The syntax is not supported by this runspace. This can occur if the runspace is in "
                       "no-language mode.")


def _binding_error(message: str, command: str) -> api.ErrorSpec:
    return api.ErrorSpec(message=message, fully_qualified_error_id=f"ParameterArgumentValidationError,{command}",
                         category=5,  # InvalidData
                         exception_type="System.Management.Automation.ParameterBindingValidationException",
                         command_name=command)


class JeaGate:
    """What a JEA session lets through (``remote.remoting.jea.Endpoint``)."""

    def __init__(self, endpoint: Any) -> None:
        self.endpoint = endpoint
        self.name = endpoint.name

    def refuse(self, statements: list[api.Statement]) -> Optional[api.Execution]:
        """A failed Execution when the pipeline cannot run in this session, else None."""
        from remote.lab.engine.commands import not_found_error

        ep = self.endpoint
        for st in statements:
            for c in st:
                if c.is_script:
                    return api.Execution(failed=True, failure=api.ErrorSpec(
                        message=SCRIPTS_NOT_ALLOWED, fully_qualified_error_id="ScriptsNotAllowed",
                        category=10,  # ParserError
                        exception_type="System.Management.Automation.ParseException"))
                name = c.text.lower()
                if name in ep.cmdlets:
                    for pname, value in c.parameters:
                        allowed = ep.cmdlets[name].get((pname or "").lower())
                        if allowed is None:
                            continue
                        values = value if isinstance(value, (list, tuple)) else [value]
                        for v in values:
                            if str(v).lower() not in {a.lower() for a in allowed}:
                                return api.Execution(failed=True, failure=_binding_error(
                                    f"Cannot validate argument on parameter '{pname}'. The argument \"{v}\" does not "
                                    f"belong to the set \"{','.join(allowed)}\" specified by the ValidateSet attribute. "
                                    "Supply an argument that is in the set and then try the command again.",
                                    ep.display[name]))
                    continue
                if name in ep.functions:
                    positions = ep.functions[name]
                    args = [v for n, v in c.parameters if n is None]
                    if any(n is not None for n, _ in c.parameters) or len(args) > len(positions):
                        return api.Execution(failed=True, failure=_binding_error(
                            "A positional parameter cannot be found that accepts argument "
                            f"'{args[len(positions)] if len(args) > len(positions) else c.parameters[0][0]}'.",
                            ep.display[name]))
                    for i, (regex, required) in enumerate(positions):
                        if i >= len(args):
                            if required:
                                return api.Execution(failed=True, failure=_binding_error(
                                    f"Cannot process command because of one or more missing mandatory parameters: "
                                    f"Arg{i}.", ep.display[name]))
                            continue
                        if not re.search(regex, str(args[i]), re.I):
                            return api.Execution(failed=True, failure=_binding_error(
                                f"Cannot validate argument on parameter 'Arg{i}'. The argument \"{args[i]}\" does not "
                                f"match the \"{regex}\" pattern. Supply an argument that matches \"{regex}\" and try "
                                "the command again.", ep.display[name]))
                    continue
                return api.Execution(failed=True, failure=not_found_error(c.text))
        return None
