"""Open-file limits for many hosts in flight (remote/runner/limits.py) and --forks above them."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap

from remote.runner.limits import fit_forks, needed_fds, raise_nofile


def test_raise_nofile_reaches_the_hard_limit_and_fit_forks_accepts_what_fits():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    got = raise_nofile()
    assert got >= soft and (hard == resource.RLIM_INFINITY or got == hard)
    if hard != resource.RLIM_INFINITY:
        assert fit_forks(hard - needed_fds(0)) == hard


def test_forks_above_the_hard_limit_is_one_clear_line():
    # in a child whose hard limit is low, so this process keeps its own
    code = textwrap.dedent("""
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 512))
        from remote.runner.limits import ForksTooHigh, fit_forks
        assert fit_forks(400) == 512
        try:
            fit_forks(5000)
        except ForksTooHigh as e:
            print(e)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert "\n" not in line
    assert line.startswith("--forks 5000 needs about 5064 open files, and this system allows 512")
    assert "--forks 448 or less" in line


def test_the_cli_says_it_in_one_line(tmp_path):
    inv = tmp_path / "inv.ini"
    inv.write_text("[w]\nh1 ansible_host=127.0.0.1\n")
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 512))
        sys.argv = ["port80", "scan", "-i", {str(inv)!r}, "--forks", "5000", "--evidence-dir", {str(tmp_path / 'ev')!r}]
        from remote.cli.app import main
        main()
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"PORT80_PASSWORD": "x", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("port80: error: --forks 5000 needs about 5064 open files")
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "ev").exists()


def test_a_fleet_hands_the_gil_over_every_50_ms_while_it_runs_and_restores_the_interval():
    """Hundreds of threads waking at once otherwise spend more system CPU on the hand-off than on the
    work (remote/runner/limits.py has the measurements)."""
    import sys

    from remote.runner.fleet import FleetRunner, Job

    seen: list[float] = []
    before = sys.getswitchinterval()
    runner = FleetRunner(lambda item, ctx: seen.append(sys.getswitchinterval()) or item, lambda r: "ok", forks=4,
                         timeout=30)
    runner.run(Job(str(i), i) for i in range(8))
    assert seen and all(abs(s - 0.05) < 1e-6 for s in seen) and sys.getswitchinterval() == before


def test_fleet_freezes_what_exists_before_it_and_collects_less_often_with_more_forks(monkeypatch):
    """A full collection with 1,000 hosts in flight costs ~250 ms: the objects that existed before the
    fleet (modules) are frozen out of it while the fleet runs, unfrozen after; full collections come
    every max(GC_EVERY, forks // 4) finished hosts while hosts are still to start; the gen-0 threshold
    is restored."""
    import gc

    from remote.runner import fleet as fleet_mod
    from remote.runner.fleet import FleetRunner, Job

    frozen: list[int] = []
    collections: list[int] = []
    after: list[int] = []  # objects frozen right after each periodic collection
    real_collect, real_freeze = gc.collect, gc.freeze
    monkeypatch.setattr(fleet_mod.gc, "collect", lambda *a: collections.append(1) or real_collect(*a))

    def freeze():
        real_freeze()
        after.append(gc.get_freeze_count())

    monkeypatch.setattr(fleet_mod.gc, "freeze", freeze)
    threshold = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    runner = FleetRunner(lambda item, ctx: frozen.append(gc.get_freeze_count()) or item, lambda r: "ok", forks=40,
                         timeout=30, gc_every=2)
    runner.run(Job(str(i), i) for i in range(100))
    assert frozen and min(frozen) > 0  # frozen while hosts ran
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == threshold
    # forks 40 -> every max(2, 10) = 10 finished hosts, only while some of the 100 are still to start
    assert 1 <= len(collections) <= 6, len(collections)
    # the start, then what survived each periodic collection (the finished hosts' results): frozen
    assert len(after) == 1 + len(collections) and min(after) > 0  # (the count falls as frozen objects die)
