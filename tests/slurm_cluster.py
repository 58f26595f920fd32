"""A throwaway single-node Slurm cluster on this machine (for tests and for trying `--executor slurm`).

Needs root and the Debian packages ``slurm-wlm`` and ``munge``
(``apt-get install slurm-wlm munge``). Everything the cluster writes (config, state,
spool, logs, pid files) lives under one directory; the daemons listen on free ports chosen
at start, so it does not clash with a real cluster's configuration (``/etc/slurm`` is not
read: the client commands find the config through ``SLURM_CONF``).

- ``munged`` runs as user ``munge`` with the packaged key ``/etc/munge/munge.key`` (an
  already running munged is reused and left running);
- ``slurmctld`` and ``slurmd`` run in the foreground (``-D``) as child processes; one node
  ``localhost`` with ``CPUs=2``, one partition ``debug``; ``ProctrackType=proctrack/linuxproc``,
  ``TaskPlugin=task/none`` (no cgroups), no accounting.

From Python (pytest fixture in ``tests/test_refine_slurm.py``)::

    with SlurmCluster(tmp_path / "slurm") as cluster:
        subprocess.run(["sbatch", ...], env={**os.environ, **cluster.env})

From a shell (keeps the cluster up until Ctrl-C)::

    python tests/slurm_cluster.py /tmp/slurm
    # in another shell: export SLURM_CONF=/tmp/slurm/slurm.conf; sinfo; prox refine ... --executor slurm --slurm-partition debug
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PARTITION = "debug"
NODE = "localhost"
MUNGE_DIR = Path("/run/munge")
MUNGE_LOG_DIR = Path("/var/log/munge")
REQUIRED_BINARIES = ("munged", "munge", "unmunge", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo", "srun")
START_TIMEOUT_S = 60.0


def missing_requirements() -> str | None:
    """Why a cluster cannot be started here (None when it can)."""
    sbin = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    missing = [b for b in REQUIRED_BINARIES if shutil.which(b, path=sbin) is None]
    if missing:
        return f"slurm/munge binaries not found: {', '.join(missing)} (apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "a local Slurm cluster needs root (slurmd starts jobs as their user; munged runs as user munge)"
    return None


def _which(name: str) -> str:
    path = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if path is None:
        raise FileNotFoundError(name)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 4096


def munge_works() -> bool:
    try:
        token = subprocess.run([_which("munge"), "-n"], capture_output=True, timeout=10)
        if token.returncode != 0:
            return False
        check = subprocess.run([_which("unmunge")], input=token.stdout, capture_output=True, timeout=10)
        return check.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class SlurmCluster:
    """Start munged (if none answers), slurmctld and slurmd; ``env`` points clients at the cluster."""

    def __init__(self, root: str | Path, *, cpus: int = 2, memory_mb: int | None = None) -> None:
        self.root = Path(root).resolve()
        self.cpus = cpus
        # what jobs may request in total; slurmd drains a node that claims more than the machine has
        self.memory_mb = memory_mb or min(8192, int(_memory_mb() * 0.8))
        self.conf = self.root / "slurm.conf"
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def write_config(self) -> None:
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        r = self.root
        self.conf.write_text(f"""\
# written by tests/slurm_cluster.py
ClusterName=proxtest
SlurmctldHost={NODE}
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
ReturnToService=2
MpiDefault=none
KillWait=5
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
""")

    def _start_munge(self) -> None:
        if munge_works():
            return  # a munged is already answering on the default socket: share it
        MUNGE_DIR.mkdir(parents=True, exist_ok=True)
        MUNGE_LOG_DIR.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_DIR, "munge", "munge")
        shutil.chown(MUNGE_LOG_DIR, "munge", "munge")
        self.processes["munged"] = subprocess.Popen(
            [_which("munged"), "--foreground"], user="munge", group="munge", extra_groups=[],
            stdout=subprocess.DEVNULL, stderr=open(self.root / "log" / "munged.stderr", "wb"))
        self._wait(munge_works, "munged")

    def start(self) -> "SlurmCluster":
        problem = missing_requirements()
        if problem:
            raise RuntimeError(problem)
        self.root.mkdir(parents=True, exist_ok=True)
        self.write_config()
        try:
            self._start_munge()
            for name, args in (("slurmctld", ["-D", "-f", str(self.conf)]),
                               ("slurmd", ["-D", "-f", str(self.conf), "-N", NODE])):
                self.processes[name] = subprocess.Popen(
                    [_which(name), *args], stdout=subprocess.DEVNULL,
                    stderr=open(self.root / "log" / f"{name}.stderr", "wb"), env={**os.environ, **self.env})
            self._wait(lambda: self.node_state() == "idle", "slurmctld/slurmd (node idle)")
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.root / 'log'}")
            if ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{what} not ready after {START_TIMEOUT_S:.0f} s; see {self.root / 'log'}")

    def run(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """A Slurm client command against this cluster (``sinfo``, ``squeue``, ``scancel``, ...)."""
        return subprocess.run([_which(args[0]), *args[1:]], capture_output=True, text=True, check=check,
                              timeout=timeout, env={**os.environ, **self.env})

    def node_state(self) -> str:
        try:
            out = self.run("sinfo", "-h", "-N", "-o", "%t", check=False, timeout=10)
        except subprocess.TimeoutExpired:
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    def jobs(self, name: str | None = None) -> list[dict[str, str]]:
        """Jobs in the queue (pending or running): id, name, state, reason."""
        args = ["squeue", "-h", "-r", "-o", "%i|%j|%T|%r"] + (["-n", name] if name else [])
        out = self.run(*args)
        return [dict(zip(("id", "name", "state", "reason"), line.split("|"))) for line in out.stdout.splitlines() if line]

    def wait_idle(self, timeout: float = 120, names: tuple[str, ...] = ()) -> None:
        """Until no job (of ``names``, or none at all) is left in the queue."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not [j for j in self.jobs() if not names or j["name"] in names]:
                return
            time.sleep(0.5)
        raise TimeoutError(f"jobs still queued after {timeout:.0f} s: {self.jobs()}")

    def stop(self) -> None:
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            try:  # let running jobs end before slurmd goes (their slurmstepd would outlive it)
                if self.jobs():
                    self.run("scancel", *[j["id"] for j in self.jobs()], check=False)
                    self.wait_idle(timeout=30)
            except (subprocess.SubprocessError, TimeoutError, OSError):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.processes.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/slurm_cluster.py DIR   (starts a one-node cluster; Ctrl-C or SIGTERM stops it)", file=sys.stderr)
        return 2
    problem = missing_requirements()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    # Ctrl-C or `kill PID` stops the cluster (also when started in the background, where SIGINT is ignored)
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    with SlurmCluster(argv[0]) as cluster:
        print(f"cluster up: export SLURM_CONF={cluster.conf}   (partition {PARTITION!r}; Ctrl-C stops it)", flush=True)
        try:
            while all(p.poll() is None for p in cluster.processes.values()):
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
