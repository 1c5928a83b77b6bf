"""The host's service dependency graph, from its ``Get-Service`` evidence (getservice.json). Pure.

What Windows does, and what the graph answers:

* ``ServicesDependedOn`` lists the services one needs directly (drivers too: WinRM needs ``HTTP``);
  ``DependentServices`` lists the services that need it, indirect ones included. A service can run
  only while what it needs runs.
* ``Stop-Service X`` without ``-Force`` fails while any service in X's ``DependentServices`` is not
  stopped ("Cannot stop service '… (X)' because it has dependent services. It can only be stopped if
  the Force flag is set."); with ``-Force`` it stops them first. port80 never uses ``-Force``: it stops
  the dependents itself, each before what it needs (:func:`stop_order`), and records each.
* Starting a service starts what it needs first; undo starts requirements first (the reverse order).

``dependents_of`` / ``requirements_of`` / ``stop_order`` / ``chain`` are what the planner and
``port80 explain`` ask; names match case-insensitively (the registry spells ``RPCSS``, the service is
``RpcSs``) and come back as the service spells its own name when the host lists it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional

from remote.parsers.getservice import parse_getservice
from remote.parsers.records import GetServiceResult, ServiceNode

# the service that serves the remoting session: what it needs (transitively) is never stopped
REMOTING_ROOT = "WinRM"
_STOPPED = "Stopped"


@dataclass
class ServiceGraph:
    nodes: dict[str, ServiceNode] = field(default_factory=dict)  # lower-case name -> node
    needs: dict[str, set[str]] = field(default_factory=dict)  # lower -> lower names it needs (directly or not)
    spelled: dict[str, str] = field(default_factory=dict)  # lower -> name as printed
    complete: bool = True  # every node showed both of its lists, complete

    def name(self, key: str) -> str:
        return self.spelled.get(key.lower(), key)

    def node(self, name: str) -> Optional[ServiceNode]:
        return self.nodes.get(name.lower())

    def running(self, name: str) -> bool:
        """Not stopped (running, paused, pending); a name the host does not list (a driver) counts as
        running: it is not in port80's hands anyway."""
        n = self.node(name)
        return n is None or (n.status or "") != _STOPPED


def build_graph(result: GetServiceResult) -> Optional[ServiceGraph]:
    """The graph of a parsed Get-Service output; None when it has no service or no dependency lists
    at all (a plain table)."""
    if result.error or not result.services:
        return None
    g = ServiceGraph()
    for s in result.services:
        if s.name_cut:
            g.complete = False
            continue
        key = s.name.lower()
        g.nodes[key] = s
        g.spelled[key] = s.name
    if not any(s.dependents is not None or s.depends_on is not None for s in g.nodes.values()):
        return None
    for key, s in g.nodes.items():
        if s.depends_on is None or s.dependents is None:
            g.complete = False
        for req in s.depends_on or []:
            g.needs.setdefault(key, set()).add(req.lower())
            g.spelled.setdefault(req.lower(), req)
        for dep in s.dependents or []:
            g.needs.setdefault(dep.lower(), set()).add(key)
            g.spelled.setdefault(dep.lower(), dep)
    return g


def graph_from_text(text: Optional[str]) -> Optional[ServiceGraph]:
    """The graph of a getservice.json text (None: missing, unreadable, or without dependency lists)."""
    if text is None:
        return None
    return build_graph(parse_getservice(text))


def requirements_of(g: ServiceGraph, name: str) -> list[str]:
    """Everything ``name`` needs to run, directly or not (breadth first: direct needs first)."""
    seen: list[str] = []
    todo = sorted(g.needs.get(name.lower(), ()))
    while todo:
        k = todo.pop(0)
        if k in seen or k == name.lower():
            continue
        seen.append(k)
        todo.extend(sorted(g.needs.get(k, ())))
    return [g.name(k) for k in seen]


def dependents_of(g: ServiceGraph, name: str, *, running_only: bool = False) -> list[str]:
    """Every service that needs ``name`` (directly or not): what stops with it. In stop order
    (dependents first); ``running_only``: only those not stopped now."""
    key = name.lower()
    found = sorted(k for k in g.needs if k != key and key in _closure(g, k))  # independent ones by name
    if running_only:
        found = [k for k in found if g.running(k)]
    return stop_order(g, [g.name(k) for k in found])


def _closure(g: ServiceGraph, key: str) -> set[str]:
    seen: set[str] = set()
    todo = list(g.needs.get(key, ()))
    while todo:
        k = todo.pop()
        if k not in seen:
            seen.add(k)
            todo.extend(g.needs.get(k, ()))
    return seen


def stop_order(g: ServiceGraph, names: Iterable[str]) -> list[str]:
    """``names`` ordered so that each comes before everything it needs (a dependent stops first);
    otherwise in the order given. Reverse it to start them."""
    order = list(dict.fromkeys(names))
    keys = [n.lower() for n in order]
    closure = {k: _closure(g, k) for k in keys}
    out: list[str] = []
    placed: set[str] = set()
    while len(out) < len(order):
        for n, k in zip(order, keys):
            if k in placed:
                continue
            # k can stop once every other name that needs k has stopped
            if all(o in placed or o == k or k not in closure[o] for o in keys):
                out.append(n)
                placed.add(k)
                break
        else:  # a cycle (Windows refuses to create one): keep the given order for the rest
            out.extend(n for n, k in zip(order, keys) if k not in placed)
            break
    return out


def chain(g: ServiceGraph, src: str, dst: str) -> list[str]:
    """The shortest ``src`` → … → ``dst`` path along "needs" (names as printed); [] when none."""
    start, goal = src.lower(), dst.lower()
    prev: dict[str, Optional[str]] = {start: None}
    todo = [start]
    while todo:
        k = todo.pop(0)
        if k == goal:
            path = []
            cur: Optional[str] = k
            while cur is not None:
                path.append(g.name(cur))
                cur = prev[cur]
            return path[::-1]
        for nxt in sorted(g.needs.get(k, ())):
            if nxt not in prev:
                prev[nxt] = k
                todo.append(nxt)
    return []


def remoting_needs(g: ServiceGraph, root: str = REMOTING_ROOT) -> dict[str, list[str]]:
    """The services the remoting session depends on, found through the graph from WinRM: lower-case
    name -> the chain from WinRM to it (WinRM itself included)."""
    out = {root.lower(): [g.name(root)]}
    for r in requirements_of(g, root):
        out[r.lower()] = chain(g, root, r)
    return out
