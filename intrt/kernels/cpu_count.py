"""The CPUs this process may use (its affinity mask and its cgroup CPU quota) and the default thread count of
:mod:`intrt.kernels.cpu`: read once at import, plain Python (no speed to gain from compiling it).

Example
-------
>>> from intrt.kernels import cpu_count
>>> 1 <= cpu_count.default_num_threads()
True
"""
import math
import os
import warnings

#: the default thread count never exceeds this (mobile CNN layers are too small to feed more cores)
MAX_DEFAULT_THREADS = 8


def _cgroup_cpu_limit(root="/sys/fs/cgroup"):
    """CPUs allowed by the cgroup CPU quota (ceil(quota / period)), or None when unlimited or unknown.

    cgroup v2: ``cpu.max`` ("max 100000" or "200000 100000") of this process's cgroup; v1: cpu.cfs_quota_us
    and cpu.cfs_period_us."""
    paths = []
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                parts = line.strip().split(":", 2)
                if len(parts) == 3 and parts[0] == "0":                      # v2
                    paths.append(os.path.join(root, parts[2].lstrip("/"), "cpu.max"))
                elif len(parts) == 3 and "cpu" in parts[1].split(","):       # v1
                    paths.append(os.path.join(root, parts[1], parts[2].lstrip("/")))
    except OSError:
        pass
    paths += [os.path.join(root, "cpu.max"), os.path.join(root, "cpu")]
    for p in paths:
        try:
            if p.endswith("cpu.max"):
                with open(p) as f:
                    quota, period = f.read().split()[:2]
                if quota == "max":
                    return None
                quota, period = int(quota), int(period)
            else:
                with open(os.path.join(p, "cpu.cfs_quota_us")) as f:
                    quota = int(f.read())
                with open(os.path.join(p, "cpu.cfs_period_us")) as f:
                    period = int(f.read())
                if quota < 0:
                    return None
        except (OSError, ValueError):
            continue
        if quota > 0 and period > 0:
            return max(1, math.ceil(quota / period))
    return None


def available_cpus():
    """CPUs this process may use: its affinity mask, limited by its cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_cpu_limit()
    return max(1, min(n, quota) if quota else n)


def default_num_threads():
    """``INTRT_NUM_THREADS`` if set (a positive integer), else ``min(available_cpus(), MAX_DEFAULT_THREADS)``."""
    env = os.environ.get("INTRT_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n >= 1:
            return n
        warnings.warn(f"INTRT_NUM_THREADS={env!r} is not a positive integer; using the available CPUs")
    return max(1, min(available_cpus(), MAX_DEFAULT_THREADS))
