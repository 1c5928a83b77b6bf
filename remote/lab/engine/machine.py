"""The emulated host's state (services, processes, HTTP.sys queues, IP listen list) and the evidence
texts re-rendered from it. See remote/lab/engine/host.py's docstring for the model."""

from __future__ import annotations

import copy
import re
from collections import OrderedDict
from typing import Any, Optional

from remote.evidence.kinds import FILES as EVIDENCE_FILES
from remote.lab.engine import formats as cmd
from remote.lab.engine.httpsys import (Queue, _content, _eol, _jkey, _load_json_records, parse_iplisten,
                                       is_session_view, parse_queues, render_iplisten, render_requestq,
                                       render_session, split_keep)

# evidence kind → bundle file the machine reads and re-renders (a new kind the lab serves is a new row)
# kind -> bundle file: the evidence-kind registry's, plus the session view of servicestate a bundle may carry
FILES = {**EVIDENCE_FILES, "servicestate_session": "servicestate_session.txt"}


# svchost group and account of common services (Win32_Service.PathName / StartName; not in the evidence)
_SVC_INFO: dict[str, tuple[Optional[str], str]] = {
    "WinRM": ("NetworkService", "NT AUTHORITY\\NetworkService"),
    "Dnscache": ("NetworkService", "NT AUTHORITY\\NetworkService"),
    "CryptSvc": ("NetworkService", "NT AUTHORITY\\NetworkService"),
    "LanmanWorkstation": ("NetworkService", "NT AUTHORITY\\NetworkService"),
    "NlaSvc": ("NetworkService", "NT AUTHORITY\\NetworkService"),
    "TermService": ("termsvcs", "NT Authority\\NetworkService"),
    "PolicyAgent": ("NetworkServiceNetworkRestricted", "NT Authority\\NetworkService"),
    "DoSvc": ("NetworkService", "NT Authority\\NetworkService"),
    "PeerDistSvc": ("PeerDist", "NT AUTHORITY\\NetworkService"),
    "Dhcp": ("LocalServiceNetworkRestricted", "NT Authority\\LocalService"),
    "EventLog": ("LocalServiceNetworkRestricted", "NT AUTHORITY\\LocalService"),
    "lmhosts": ("LocalServiceNetworkRestricted", "NT AUTHORITY\\LocalService"),
    "W32Time": ("LocalService", "NT AUTHORITY\\LocalService"),
    "TimeBrokerSvc": ("LocalServiceNetworkRestricted", "NT AUTHORITY\\LocalService"),
    "netprofm": ("LocalService", "NT AUTHORITY\\LocalService"),
    "nsi": ("LocalService", "NT Authority\\LocalService"),
    "FontCache": ("LocalService", "NT AUTHORITY\\LocalService"),
    "EventSystem": ("LocalService", "NT AUTHORITY\\LocalService"),
    "BFE": ("LocalServiceNoNetworkFirewall", "NT AUTHORITY\\LocalService"),
    "mpssvc": ("LocalServiceNoNetworkFirewall", "NT Authority\\LocalService"),
    "DPS": ("LocalServiceNoNetwork", "NT AUTHORITY\\LocalService"),
    "WinHttpAutoProxySvc": ("LocalServiceNetworkRestricted", "NT AUTHORITY\\LocalService"),
    "CDPSvc": ("LocalService", "NT AUTHORITY\\LocalService"),
    "SSDPSRV": ("LocalServiceAndNoImpersonation", "NT AUTHORITY\\LocalService"),
    "upnphost": ("LocalServiceAndNoImpersonation", "NT AUTHORITY\\LocalService"),
    "fdPHost": ("LocalService", "NT AUTHORITY\\LocalService"),
    "FDResPub": ("LocalServiceAndNoImpersonation", "NT AUTHORITY\\LocalService"),
    "RpcSs": ("rpcss", "NT AUTHORITY\\NetworkService"),
    "RpcEptMapper": ("RPCSS", "NT AUTHORITY\\NetworkService"),
    "DcomLaunch": ("DcomLaunch", "LocalSystem"),
    "PlugPlay": ("DcomLaunch", "LocalSystem"),
    "Power": ("DcomLaunch", "LocalSystem"),
    "BrokerInfrastructure": ("DcomLaunch", "LocalSystem"),
    "SystemEventsBroker": ("DcomLaunch", "LocalSystem"),
    "LSM": ("DcomLaunch", "LocalSystem"),
    "W3SVC": ("iissvcs", "LocalSystem"),
    "WAS": ("iissvcs", "LocalSystem"),
    "AppHostSvc": ("apphost", "localSystem"),
    "SamSs": (None, "LocalSystem"),
    "KeyIso": (None, "LocalSystem"),
    "VaultSvc": (None, "LocalSystem"),
    "Netlogon": (None, "LocalSystem"),
}
_INTERACTIVE = {"explorer", "sihost", "taskhostw", "runtimebroker", "shellexperiencehost", "searchui", "ctfmon",
                "rdpclip", "startmenuexperiencehost", "textinputhost", "searchapp", "dwm", "winlogon"}




# --- the machine ------------------------------------------------------------------------------------------


class Machine:
    """The emulated host's state: services, processes, HTTP.sys queues, IP listen list — and the
    evidence texts re-rendered from it."""

    def __init__(self, texts: dict[str, Optional[str]], meta: dict, name: str = "HOST"):
        self.orig = dict(texts)
        self.meta = meta
        lab = meta.get("lab") if isinstance(meta.get("lab"), dict) else {}
        self.lab = lab
        self.hostname = str(meta.get("hostname") or meta.get("host") or name)
        version = str(meta.get("os_version") or "10.0.17763")
        build = version.split(".")[2] if version.count(".") >= 2 else "17763"
        self.os = {"caption": str(meta.get("os_caption") or meta.get("os_name") or _caption_for(build)),
                   "version": ".".join(version.split(".")[:3]), "build": build,
                   "language": int(meta.get("os_language") or 1033)}
        self.elevated = True
        self.user = str(lab.get("user") or f"{self.hostname.lower()}\\administrator")

        # services
        recs = _load_json_records(texts.get("services"))
        self.services_records_orig = recs
        self._svc: "OrderedDict[str, dict]" = OrderedDict()
        if recs is not None:
            for r in recs:
                if r.get("Name") is None:
                    continue
                d = dict(r)
                d["ProcessId"] = int(d.get("ProcessId") or 0)
                self._svc[str(d["Name"]).lower()] = d
        task_entries = cmd.parse_tasklist_svc(texts["tasklist"]) if texts.get("tasklist") else []
        if recs is None:
            for e in task_entries:
                for s in e["services"]:
                    self._svc.setdefault(s.lower(), {"Name": s, "DisplayName": s, "State": "Running",
                                                     "StartMode": "Auto", "ProcessId": e["pid"]})
        self._svc_orig = {k: (v.get("State"), v.get("ProcessId"), v.get("StartMode")) for k, v in self._svc.items()}

        # the dependency graph: the bundle's Get-Service evidence (DependentServices, ServicesDependedOn);
        # a bundle without it has services without dependencies
        self.getservice_records_orig = _load_json_records(texts.get("getservice"))
        self._needs: dict[str, set[str]] = {}
        for r in self.getservice_records_orig or []:
            key = str(r.get("Name") or "").lower()
            for d in _names(r.get("ServicesDependedOn")):
                self._needs.setdefault(key, set()).add(d.lower())
            for d in _names(r.get("DependentServices")):
                self._needs.setdefault(d.lower(), set()).add(key)

        # processes
        precs = _load_json_records(texts.get("processes"))
        self.process_records_orig = precs
        self._proc: "OrderedDict[int, dict]" = OrderedDict()
        for e in task_entries:
            self._proc[e["pid"]] = {"Id": e["pid"], "image": e["image"], "ProcessName": _proc_name(e["image"]),
                                    "Path": None}
        if precs is not None:
            for r in precs:
                try:
                    pid = int(r.get("Id"))
                except (TypeError, ValueError):
                    continue
                p = self._proc.setdefault(pid, {"Id": pid, "image": None, "ProcessName": None, "Path": None})
                p["ProcessName"] = str(r.get("ProcessName") or p["ProcessName"] or "")
                p["Path"] = r.get("Path")
                if not p["image"] or (len(p["image"]) == 25 and p["Path"]):
                    p["image"] = _image_of(p["ProcessName"], p["Path"])
                p["record"] = r
        for s in self._svc.values():
            pid = s.get("ProcessId") or 0
            if pid and pid not in self._proc:
                self._proc[pid] = {"Id": pid, "image": "svchost.exe", "ProcessName": "svchost",
                                   "Path": "C:\\Windows\\system32\\svchost.exe"}
        for p in self._proc.values():
            p["SessionId"] = 1 if (p["ProcessName"] or "").lower() in _INTERACTIVE and p["Id"] > 800 else 0
        self._task_order = [e["pid"] for e in task_entries] or sorted(self._proc)
        self._orig_services_of: dict[int, list[str]] = {}
        for s in self._svc.values():
            if s.get("State") == "Running" and s.get("ProcessId"):
                self._orig_services_of.setdefault(int(s["ProcessId"]), []).append(str(s["Name"]).lower())
        self._new_pids: dict[str, int] = {}
        self._orig_keys: dict[str, str] = {}

        # HTTP.sys
        self.queues = parse_queues(texts["servicestate"]) if texts.get("servicestate") else []
        owners = lab.get("owners") if isinstance(lab.get("owners"), dict) else {}
        for q in self.queues:
            q.owners = self._queue_owners(q, owners)
        self.managed_ports: set[int] = set()
        for q in self.queues:
            self.managed_ports |= q.ports()
        il = parse_iplisten(texts.get("iplisten"))
        self.iplisten_known = il is not None
        self._iplisten_orig = list(il or [])
        self._iplisten = list(il or [])

    def clone(self) -> "Machine":
        """A machine in this one's state whose changes are its own. What no command changes (the bundle's
        texts and records, the HTTP.sys queues, the dependency graph) is shared with this one."""
        m = copy.copy(self)
        m._svc = OrderedDict((k, dict(v)) for k, v in self._svc.items())
        m._proc = OrderedDict((k, dict(v)) for k, v in self._proc.items())
        m._task_order = list(self._task_order)
        m._new_pids = dict(self._new_pids)
        m._orig_keys = dict(self._orig_keys)
        m._iplisten = list(self._iplisten)
        return m

    # ---- service model

    def _queue_owners(self, q: Queue, owners: dict) -> list[str]:
        for key, names in owners.items():
            k = str(key).upper()
            if (q.name and q.name.upper() == k) or any(u.upper() == k for u in q.urls):
                return [str(n).lower() for n in (names if isinstance(names, list) else [names])]
        if q.controller is not None:
            ctl = self._orig_services_of.get(q.controller, [])
            if "w3svc" in ctl:
                return ["w3svc"]
        out: list[str] = []
        for pid in q.pids + ([q.controller] if q.controller is not None else []):
            for s in self._orig_services_of.get(pid, []):
                if s not in out:
                    out.append(s)
        return out

    def has_service(self, name: str) -> bool:
        return name.lower() in self._svc

    def service(self, name: str) -> dict:
        return self._svc.get(name.lower(), {})

    def services(self) -> list[dict]:
        return list(self._svc.values())

    def original_state(self, name: str) -> Optional[str]:
        o = self._svc_orig.get(name.lower())
        return o[0] if o else None

    def original_start_mode(self, name: str, default: str) -> str:
        o = self._svc_orig.get(name.lower())
        mode = o[2] if o else None
        return mode if mode and mode != "Disabled" else default

    def _needs_closure(self, key: str) -> set[str]:
        seen: set[str] = set()
        todo = list(self._needs.get(key, ()))
        while todo:
            k = todo.pop()
            if k not in seen:
                seen.add(k)
                todo.extend(self._needs.get(k, ()))
        return seen

    def dependents(self, name: str) -> list[str]:
        """DependentServices: every listed service that needs ``name``, directly or not (from the bundle)."""
        key = name.lower()
        return [str(v["Name"]) for k, v in self._svc.items() if k != key and key in self._needs_closure(k)]

    def requirements(self, name: str) -> list[str]:
        """ServicesDependedOn that the host lists as services (drivers such as HTTP are not in its list)."""
        return [str(self._svc[k]["Name"]) for k in sorted(self._needs.get(name.lower(), ())) if k in self._svc]

    def depends_on_names(self, name: str) -> list[str]:
        """ServicesDependedOn as the bundle spells it (drivers included)."""
        for r in self.getservice_records_orig or []:
            if str(r.get("Name") or "").lower() == name.lower():
                return _names(r.get("ServicesDependedOn"))
        return []

    def dependent_names(self, name: str) -> list[str]:
        """DependentServices in the bundle's order (last-started first), else computed."""
        for r in self.getservice_records_orig or []:
            if str(r.get("Name") or "").lower() == name.lower():
                return _names(r.get("DependentServices"))
        return self.dependents(name)

    def _canon(self, name: str) -> str:
        s = self.service(name)
        return str(s.get("Name", name))

    def set_service_running(self, name: str, running: bool) -> bool:
        s = self._svc.get(name.lower())
        if not s:
            return False
        if running == (s.get("State") == "Running"):
            return False
        if running:
            pid = self._svc_orig[name.lower()][1] or 0
            if not pid:
                pid = self._new_pids.get(name.lower()) or self._allocate_pid(name)
            s["State"], s["ProcessId"] = "Running", pid
        else:
            s["State"], s["ProcessId"] = "Stopped", 0
        return True

    def _allocate_pid(self, name: str) -> int:
        top = max([p for p in self._proc] + list(self._new_pids.values()) + [1000])
        pid = (top // 4 + 1) * 4 + 4 * len(self._new_pids)
        self._new_pids[name.lower()] = pid
        exe = self.service_details(self.service(name))["Image"]
        self._proc.setdefault(pid, {"Id": pid, "image": exe.rsplit("\\", 1)[-1], "ProcessName":
                                    _proc_name(exe.rsplit("\\", 1)[-1]), "Path": exe, "SessionId": 0, "new": True})
        self._task_order.append(pid)
        return pid

    def set_start_mode(self, name: str, mode: str) -> bool:
        s = self._svc.get(name.lower())
        if not s or s.get("StartMode") == mode:
            return False
        s["StartMode"] = mode
        return True

    def service_details(self, s: dict) -> dict:
        name = str(s.get("Name"))
        orig_pid = self._svc_orig.get(name.lower(), (None, 0, None))[1] or s.get("ProcessId") or 0
        proc = self._proc.get(orig_pid) if orig_pid else None
        group, account = _SVC_INFO.get(name, (None, "LocalSystem"))
        path = (proc or {}).get("Path")
        image = (proc or {}).get("image") or ""
        shared = image.lower() == "svchost.exe" or (proc is None and group is not None)
        if shared:
            exe = "C:\\Windows\\system32\\svchost.exe"
            pathname = f"{exe} -k {group or 'netsvcs'} -p"
        elif path:
            exe = path
            pathname = f'"{path}"' if " " in path else path
        elif image:
            exe = f"C:\\Windows\\system32\\{image}"
            pathname = exe
        else:
            exe = "C:\\Windows\\system32\\svchost.exe"
            pathname = f"{exe} -k netsvcs -p"
        stopped = s.get("State") != "Running"
        exit_code = 1077 if stopped and self._svc_orig.get(name.lower(), ("Stopped",))[0] != "Running" and \
            s.get("StartMode") != "Auto" else 0
        return {"PathName": pathname, "Image": exe, "ServiceType": "Share Process" if shared else "Own Process",
                "StartName": account, "ExitCode": exit_code, "Description": None, "DelayedAutoStart": False}

    # ---- processes

    def _queue_alive(self, q: Queue) -> bool:
        if not q.owners:
            return True
        return any(self._svc.get(o, {}).get("State") == "Running" for o in q.owners)

    def _proc_alive(self, pid: int) -> bool:
        if pid in (0, 4):
            return True
        p = self._proc.get(pid)
        if p is not None and p.get("new"):
            return any(s.get("ProcessId") == pid and s.get("State") == "Running" for s in self._svc.values())
        orig = self._orig_services_of.get(pid)
        if orig:
            return any(self._svc.get(o, {}).get("State") == "Running" and self._svc.get(o, {}).get("ProcessId") == pid
                       for o in orig)
        for q in self.queues:
            if pid in q.pids and not self._queue_alive(q):
                return False
        return True

    def processes(self) -> list[dict]:
        return [p for pid, p in self._proc.items() if self._proc_alive(pid)]

    def process(self, pid: int) -> Optional[dict]:
        p = self._proc.get(pid)
        return p if p is not None and self._proc_alive(pid) else None

    def processes_in_task_order(self) -> list[dict]:
        order = self._task_order + [p for p in self._proc if p not in self._task_order]
        return [self._proc[p] for p in order if p in self._proc and self._proc_alive(p)]

    def running_services_of(self, pid: int) -> list[str]:
        return [str(s["Name"]) for s in self._svc.values() if s.get("State") == "Running" and s.get("ProcessId") == pid]

    # ---- IP listen list

    def iplisten(self) -> list[str]:
        return list(self._iplisten)

    def set_iplisten(self, addrs: list[str]) -> None:
        self._iplisten = list(addrs)

    # ---- state and texts

    def changed(self) -> bool:
        cur = {k: (v.get("State"), v.get("ProcessId"), v.get("StartMode")) for k, v in self._svc.items()}
        return cur != self._svc_orig or self._iplisten != self._iplisten_orig

    def text(self, kind: str) -> Optional[str]:
        if kind == "servicestate_session" and self.orig.get(kind) is None:
            kind = "servicestate"
        if kind == "iplisten" and self.orig.get("iplisten") is None:
            return render_iplisten(self._iplisten)
        if kind == "tasklist" and self.orig.get("tasklist") is None:
            return None
        orig = self.orig.get(kind)
        if orig is None or not self.changed():
            return orig
        render = getattr(self, "_render_" + kind, None)
        return render(orig) if render else orig

    def snapshot(self) -> dict[str, str]:
        out = {}
        for kind, fname in FILES.items():
            if self.orig.get(kind) is not None:
                t = self.text(kind)
                if t is not None:
                    out[fname] = t
        return out

    def _dead(self) -> tuple[list[bool], set[str], list[tuple], set[int]]:
        dead = [not self._queue_alive(q) for q in self.queues]
        dead_urls = {u.upper() for q, d in zip(self.queues, dead) if d for u in q.urls}
        live_ports: set[int] = set()
        for q, d in zip(self.queues, dead):
            if not d:
                live_ports |= q.ports()
        return dead, dead_urls, [q.signature() for q, d in zip(self.queues, dead) if d], live_ports

    def _render_servicestate(self, orig: str) -> str:
        """servicestate.txt in whichever view it was captured (a session-view capture is re-rendered as one)."""
        if is_session_view(orig):
            return self._render_servicestate_session(orig)
        dead, *_ = self._dead()
        return render_requestq(orig, dead) if any(dead) else orig

    def _render_servicestate_session(self, orig: str) -> str:
        dead, dead_urls, sigs, _ = self._dead()
        return render_session(orig, dead_urls, sigs) if any(dead) else orig

    def _render_iplisten(self, orig: str) -> str:
        if not self.iplisten_known or self._iplisten == self._iplisten_orig:
            return orig
        return render_iplisten(self._iplisten, _eol(orig))

    def _render_services(self, orig: str) -> str:
        recs = self.current_service_records()
        if recs is None or _jkey(recs) == _jkey(self.services_records_orig):
            return orig
        return cmd.json_pretty(cmd.json_compact(recs if len(recs) != 1 or orig.lstrip().startswith("[")
                                                else recs[0], depth=99))

    def _render_getservice(self, orig: str) -> str:
        recs = self.current_getservice_records()
        if recs is None or _jkey(recs) == _jkey(self.getservice_records_orig):
            return orig
        return cmd.json_pretty(cmd.json_compact(recs if len(recs) != 1 or orig.lstrip().startswith("[")
                                                else recs[0], depth=99))

    def current_getservice_records(self) -> Optional[list]:
        """The Get-Service records with each service's Status and StartType as they are now."""
        if self.getservice_records_orig is None:
            return None
        out = []
        for r in self.getservice_records_orig:
            rec = OrderedDict(r)
            s = self._svc.get(str(r.get("Name")).lower())
            if s:
                if "Status" in rec:
                    rec["Status"] = _GS_STATUS.get(str(s.get("State")), str(s.get("State")))
                if "StartType" in rec:
                    rec["StartType"] = _GS_START.get(str(s.get("StartMode")), str(s.get("StartMode")))
            out.append(rec)
        return out

    def getservice_text(self) -> str:
        """What port80's Get-Service pipeline prints now: the bundle's getservice.json (re-rendered after a
        change); without one, the listed services with no dependency lists."""
        t = self.text("getservice")
        if t is not None:
            return t
        recs = [OrderedDict([("Name", s.get("Name")), ("DisplayName", s.get("DisplayName")),
                             ("Status", _GS_STATUS.get(str(s.get("State")), str(s.get("State")))),
                             ("StartType", _GS_START.get(str(s.get("StartMode")), str(s.get("StartMode")))),
                             ("DependentServices", None), ("ServicesDependedOn", None)])
                for s in sorted(self._svc.values(), key=lambda s: str(s.get("Name")).lower())]
        return cmd.json_pretty(cmd.json_compact(recs if len(recs) != 1 else recs[0], depth=99))

    def current_service_records(self) -> Optional[list]:
        if self.services_records_orig is None:
            return None
        out = []
        for r in self.services_records_orig:
            s = self._svc.get(str(r.get("Name")).lower())
            rec = OrderedDict(r)
            if s:
                for k in rec:
                    if k in ("State", "ProcessId", "StartMode"):
                        rec[k] = s[k]
            out.append(rec)
        return out

    def current_process_records(self) -> Optional[list]:
        if self.process_records_orig is None:
            return None
        alive = {p["Id"] for p in self.processes()}
        keys = list(self.process_records_orig[0].keys()) if self.process_records_orig else ["Id", "ProcessName", "Path"]
        out = [r for r in self.process_records_orig if _int(r.get("Id")) in alive]
        for pid, p in self._proc.items():
            if p.get("new") and pid in alive:
                rec = OrderedDict((k, {"Id": pid, "ProcessName": p["ProcessName"], "Path": p["Path"]}.get(k))
                                  for k in keys)
                out.append(rec)
        def skey(r: dict) -> tuple:
            return (str(r.get("ProcessName") or "").lower(), _int(r.get("Id")))
        if [skey(r) for r in self.process_records_orig] == sorted(skey(r) for r in self.process_records_orig):
            out.sort(key=skey)
        return out

    def _render_processes(self, orig: str) -> str:
        recs = self.current_process_records()
        if recs is None or _jkey(recs) == _jkey(self.process_records_orig):
            return orig
        return cmd.json_pretty(cmd.json_compact(recs, depth=99))

    def passthrough_json(self, items: list) -> Optional[str]:
        """The bundle's services.json / processes.json text when ConvertTo-Json gets exactly its objects."""
        if not items or not isinstance(items[0], dict):
            return None
        n = len(items)
        key = None
        changed = self.changed()
        for kind, orig in (("services", self.services_records_orig), ("processes", self.process_records_orig)):
            if orig is None or (not changed and len(orig) != n) or list(items[0]) != list(orig[0]):
                continue
            if key is None:
                key = _jkey(items)
            if not changed:
                if kind not in self._orig_keys:
                    self._orig_keys[kind] = _jkey(orig)
                if key == self._orig_keys[kind]:
                    return self.orig[kind]
                continue
            recs = self.current_service_records() if kind == "services" else self.current_process_records()
            if recs is not None and key == _jkey(recs):
                return self.text(kind)
        return None

    def _render_tasklist(self, orig: str) -> str:
        lines = split_keep(orig)
        eol = _eol(orig)
        entries = cmd.parse_tasklist_svc(orig)
        first_idx: dict[int, dict] = {}
        k = 0
        for e in entries:  # map entries back to line positions
            while k < len(lines) and _content(lines[k]) != e["lines"][0]:
                k += 1
            first_idx[k] = e
            k += len(e["lines"])
        out: list[str] = []
        k = 0
        seen: set[int] = set()
        while k < len(lines):
            e = first_idx.get(k)
            if e is None:
                out.append(lines[k])
                k += 1
                continue
            n = len(e["lines"])
            pid = e["pid"]
            seen.add(pid)
            if self._proc_alive(pid):
                svcs = self.running_services_of(pid)
                if sorted(s.lower() for s in svcs) == sorted(s.lower() for s in e["services"]):
                    out.extend(lines[k:k + n])
                else:
                    out.extend(ln + eol for ln in cmd.tasklist_svc_entry(e["image"], pid, svcs))
            k += n
        extra = [p for p in self.processes_in_task_order() if p["Id"] not in seen]
        for p in extra:
            out.extend(ln + eol for ln in cmd.tasklist_svc_entry(p["image"], p["Id"], self.running_services_of(p["Id"])))
        return "".join(out)

    def _render_netstat(self, orig: str) -> str:
        lines = split_keep(orig)
        eol = _eol(orig)
        _, _, _, live_ports = self._dead()
        rebind = self._iplisten != self._iplisten_orig
        rows: list[tuple[cmd.NetRow, list[str]]] = []
        first = end = None
        for k, ln in enumerate(lines):
            c = _content(ln)
            r = cmd.parse_netstat_row(c)
            if r is not None:
                if first is None:
                    first = k
                rows.append((r, [ln]))
                end = k + 1
            elif rows and end == k and c.startswith(" ") and c.strip():
                rows[-1][1].append(ln)  # -b owner lines belong to their row
                end = k + 1
        if first is None or end is None:
            return orig
        prefix, middle, suffix = lines[:first], lines[first:end], lines[end:]
        if sum(len(b) for _, b in rows) != len(middle):
            return orig  # rows interleaved with other text: leave it alone
        kept: list[tuple[cmd.NetRow, list[str]]] = []
        for r, block in rows:
            if not self._proc_alive(r.pid):
                continue
            if r.pid == 4 and r.proto == "TCP" and r.local_port in self.managed_ports:
                if r.local_port not in live_ports:
                    continue
                if rebind and r.state == "LISTENING":
                    continue
            kept.append((r, block))
        if rebind:
            addrs = self._iplisten or ["0.0.0.0", "::"]
            for port in sorted(live_ports & self.managed_ports):
                for a in addrs:
                    v6 = ":" in a
                    local = (f"[{a}]" if v6 else a) + f":{port}"
                    foreign = "[::]:0" if v6 else "0.0.0.0:0"
                    line = cmd.netstat_row("TCP", local, foreign, "LISTENING", 4)
                    kept.append((cmd.NetRow("TCP", local, foreign, "LISTENING", 4, line), [line + eol]))
            kept.sort(key=lambda rb: cmd.netstat_sort_key(rb[0]))
        return "".join(prefix + [ln for _, b in kept for ln in b] + suffix)


# Win32_Service words -> ServiceController's ([string] of ServiceControllerStatus / ServiceStartMode)
_GS_STATUS = {"Running": "Running", "Stopped": "Stopped", "Paused": "Paused", "Start Pending": "StartPending",
              "Stop Pending": "StopPending"}
_GS_START = {"Auto": "Automatic", "Manual": "Manual", "Disabled": "Disabled", "Boot": "Boot", "System": "System"}


def _names(v: Any) -> list[str]:
    """A name list of getservice.json (null, a string, an array of strings)."""
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return [str(x.get("Name")) if isinstance(x, dict) else str(x) for x in v]
    if isinstance(v, dict) and isinstance(v.get("value"), list):
        return _names(v["value"])
    return []


def _int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return -1


def _proc_name(image: str) -> str:
    if image == "System Idle Process":
        return "Idle"
    return image[:-4] if image.lower().endswith(".exe") else image


def _image_of(name: Optional[str], path: Optional[str]) -> str:
    if path:
        base = re.split(r"[\\/]", str(path))[-1]
        if name and base.lower() == (name + ".exe").lower():
            return name + ".exe"  # tasklist shows the process's own spelling (WmiPrvSE.exe, not wmiprvse.exe)
        return base
    if not name:
        return "?"
    if name in ("Idle",):
        return "System Idle Process"
    if name in ("System", "Registry", "Memory Compression", "Secure System", "vmmem"):
        return name
    return name + ".exe"


def _caption_for(build: str) -> str:
    return {"14393": "Microsoft Windows Server 2016 Standard", "17763": "Microsoft Windows Server 2019 Standard",
            "20348": "Microsoft Windows Server 2022 Standard", "26100": "Microsoft Windows Server 2025 Standard",
            "19045": "Microsoft Windows 10 Enterprise", "9600": "Microsoft Windows Server 2012 R2 Standard"}.get(
        build, "Microsoft Windows Server 2019 Standard")


def default_psversion(os_version: str) -> dict:
    """Windows PowerShell's $PSVersionTable for an OS version (5.1 from Server 2016 / Windows 10 on;
    4.0 on Windows Server 2012 R2 without WMF 5.1)."""
    parts = (os_version or "10.0.17763").split(".")
    build = parts[2] if len(parts) > 2 else "17763"
    rev = parts[3] if len(parts) > 3 else "1"
    if parts[0] == "10":
        ps = f"5.1.{build}.{rev}"
        return {"PSVersion": ps, "PSEdition": "Desktop",
                "PSCompatibleVersions": ["1.0", "2.0", "3.0", "4.0", "5.0", ps],
                "BuildVersion": f"10.0.{build}.{rev}", "CLRVersion": "4.0.30319.42000", "WSManStackVersion": "3.0",
                "PSRemotingProtocolVersion": "2.3", "SerializationVersion": "1.1.0.1"}
    return {"PSVersion": "4.0", "PSCompatibleVersions": ["1.0", "2.0", "3.0", "4.0"],
            "BuildVersion": f"{parts[0]}.{parts[1] if len(parts) > 1 else '3'}.{build}.{rev if rev != '1' else '17000'}",
            "CLRVersion": "4.0.30319.42000", "WSManStackVersion": "3.0", "PSRemotingProtocolVersion": "2.2",
            "SerializationVersion": "1.1.0.1"}

