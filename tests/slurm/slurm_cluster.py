"""A throw-away one-node SLURM cluster for the integration test: munged, slurmctld and slurmd.

Everything lives in one directory (config, key, sockets, state, logs); the daemons run in the
foreground as children of this process and are stopped by PID. Nothing under /etc is changed.

The node is declared with the resources the project's SLURM profile asks for (CPUs, memory and two
GPUs as a count-only generic resource, no device files), with ``SlurmdParameters=config_overrides``
so that slurmd accepts a declaration larger than the machine. Memory is not a consumable resource
(``CR_Core``), so memory requests are checked against the node but do not limit concurrency.
Without ``slurmdbd`` there is no accounting: ``sacct`` does not work, job states come from ``squeue``,
and ``MinJobAge`` keeps finished jobs visible there for an hour.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

PACKAGES = ["slurm-wlm", "munge"]
DAEMONS = ["munged", "slurmctld", "slurmd"]
PARTITIONS = ["cpu", "gpu"]  # the partition names profiles/slurm uses


class ClusterUnavailable(RuntimeError):
    """The cluster cannot be set up here; the message says why (the test skips with it)."""


def _which_all() -> dict[str, str | None]:
    found = {name: shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin") for name in DAEMONS}
    for client in ("sbatch", "srun", "squeue", "scontrol", "sinfo"):
        found[client] = shutil.which(client) or shutil.which(client, path="/usr/sbin:/sbin")
    return found


def install_packages(timeout: int = 900) -> None:
    """Install Debian's slurm-wlm and munge with apt-get when a binary is missing (root only)."""
    if all(_which_all().values()):
        return
    if os.geteuid() != 0:
        raise ClusterUnavailable("slurm-wlm/munge are not installed and installing them needs root")
    if shutil.which("apt-get") is None:
        raise ClusterUnavailable("slurm-wlm/munge are not installed and there is no apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:  # a clean machine may have no package lists yet
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True, timeout=timeout)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise ClusterUnavailable(f"apt-get install {' '.join(PACKAGES)} failed:\n{proc.stderr[-2000:]}")
    missing = [name for name, path in _which_all().items() if path is None]
    if missing:
        raise ClusterUnavailable(f"after installing {PACKAGES}, still missing: {missing}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """``with Cluster(root) as c:`` starts the daemons; ``c.env`` is the environment for clients."""

    def __init__(self, root: Path, cpus: int | None = None, real_memory_mb: int = 262144, gpus: int = 2):
        self.root = Path(root)
        self.host = socket.gethostname().split(".")[0]
        self.cpus = cpus or max(os.cpu_count() or 1, 2)
        self.real_memory_mb = real_memory_mb
        self.gpus = gpus
        self.procs: dict[str, subprocess.Popen] = {}
        self.conf = self.root / "etc" / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf),
                    "PATH": f"{self.root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}

    # ----------------------------------------------------------------- configuration
    def write_config(self) -> None:
        r = self.root
        for sub in ("etc", "munge", "state", "spool", "log"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(r / "munge", 0o700)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o600)
        ctld_port, d_port = _free_port(), _free_port()
        partitions = "\n".join(
            f"PartitionName={p} Nodes={self.host} Default={'YES' if i == 0 else 'NO'} MaxTime=INFINITE State=UP"
            for i, p in enumerate(PARTITIONS)
        )
        self.conf.write_text(f"""\
# one-node test cluster written by tests/slurm/cluster.py
ClusterName=negdiff-test
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=3600
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
GresTypes=gpu
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.real_memory_mb} Gres=gpu:{self.gpus} State=UNKNOWN
{partitions}
""")
        # slurmd counts a GPU per device file: character devices like /dev/null stand in for /dev/nvidiaN
        # (plain files where mknod is not allowed; slurmd then logs an error but still counts them)
        (r / "dev").mkdir(exist_ok=True)
        for i in range(self.gpus):
            dev = r / "dev" / f"fakegpu{i}"
            try:
                os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            except OSError:
                dev.touch()
        files = f"{r}/dev/fakegpu[0-{self.gpus - 1}]" if self.gpus > 1 else f"{r}/dev/fakegpu0"
        (self.conf.parent / "gres.conf").write_text(f"NodeName={self.host} Name=gpu File={files}\n")
        # an empty cgroup.conf keeps slurmd from looking for a system one
        (self.conf.parent / "cgroup.conf").write_text("")
        # Clients find this slurm.conf through SLURM_CONF, which sbatch passes on to the jobs. But
        # snakemake-executor-plugin-slurm-jobstep removes every SLURM_* variable but a few from the
        # environment of the `srun` it runs inside each job, so that srun would look for
        # /etc/slurm/slurm.conf. A real cluster has that file (or configless DNS records); here an
        # `srun` earlier on PATH puts SLURM_CONF back.
        (r / "bin").mkdir(exist_ok=True)
        real_srun = shutil.which("srun", path=os.environ.get("PATH", "") + ":/usr/bin") or "/usr/bin/srun"
        shim = r / "bin" / "srun"
        shim.write_text(f'#!/bin/sh\nexport SLURM_CONF="{self.conf}"\nexec {real_srun} "$@"\n')
        shim.chmod(0o755)

    # ----------------------------------------------------------------- daemons
    def _start(self, name: str, cmd: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "wb")
        self.procs[name] = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        log.close()

    def _wait(self, what: str, ok, timeout: float) -> None:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise ClusterUnavailable(f"{name} exited ({proc.returncode}) while waiting for {what}:\n{self.logs()}")
            if ok():
                return
            time.sleep(0.5)
        raise ClusterUnavailable(f"timed out waiting for {what}:\n{self.logs()}")

    def start(self, timeout: float = 30) -> None:
        tools = _which_all()
        self.write_config()
        r = self.root
        self._start("munged", [tools["munged"], "--foreground", "--force", f"--socket={self.munge_socket}",
                               f"--key-file={r}/munge/munge.key", f"--pid-file={r}/munge/munged.pid",
                               f"--log-file={r}/log/munged.log", f"--seed-file={r}/munge/munged.seed"])
        self._wait("munged", self.munge_socket.exists, timeout)
        self._start("slurmctld", [tools["slurmctld"], "-D", "-i", "-f", str(self.conf)])
        self._wait("slurmctld", lambda: self._run("scontrol", "ping").returncode == 0
                   and "UP" in self._run("scontrol", "ping").stdout, timeout)
        self._start("slurmd", [tools["slurmd"], "-D", "-f", str(self.conf)])
        self._wait("an idle node", self._node_idle, timeout)

    def _run(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, timeout=30)

    def _node_idle(self) -> bool:
        out = self._run("sinfo", "--noheader", "--Node", "--format=%t").stdout.split()
        return bool(out) and all(state == "idle" for state in out)

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still knows (queued, running, or finished within MinJobAge), as the
        ``Key=Value`` fields of ``scontrol show job --oneliner`` (JobId, JobName, JobState, Partition,
        MinMemoryNode, NumCPUs, TresPerJob, Comment, StdOut, ...)."""
        out = self._run("scontrol", "show", "job", "--oneliner").stdout
        return [dict(re.findall(r"(\S+?)=(\S*)", line)) for line in out.splitlines() if line.startswith("JobId=")]

    def logs(self) -> str:
        parts = []
        for f in sorted((self.root / "log").glob("*")):
            text = f.read_text(errors="replace")[-3000:]
            parts.append(f"--- {f.name}\n{text}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop the daemons this object started, by PID, slurmd first."""
        for name in reversed(DAEMONS):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.procs.clear()

    def __enter__(self) -> "Cluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
