"""Runs inside the benchmark container: time commands as child processes, read their CPU time and peak RSS.

    python3 timer.py RUNS '["python3", "-c", "pass"]' '["python3", "probe.py", ...]'

The commands alternate (after one untimed warm-up each) so drift affects both alike. Each child's wall
time is measured around fork/exec/wait; its CPU time (user + system, less sensitive than wall time to
other load on the machine) and peak RSS (kilobytes on Linux) come from os.wait4's rusage.
Prints {"bare": {"wall_ms": [...], "cpu_ms": [...], "maxrss_kb": [...]}, "probe": {...}} as JSON.
Standard library only.
"""

import json
import os
import subprocess
import sys
import time


def timed_run(command):
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed_ms = (time.perf_counter() - started) * 1000
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{command} exited with {child.returncode}")
    return elapsed_ms, (usage.ru_utime + usage.ru_stime) * 1000, usage.ru_maxrss


def main():
    runs = int(sys.argv[1])
    commands = {"bare": json.loads(sys.argv[2]), "probe": json.loads(sys.argv[3])}
    results = {name: {"wall_ms": [], "cpu_ms": [], "maxrss_kb": []} for name in commands}
    for command in commands.values():
        timed_run(command)
    for _ in range(runs):
        for name, command in commands.items():
            wall_ms, cpu_ms, maxrss_kb = timed_run(command)
            results[name]["wall_ms"].append(wall_ms)
            results[name]["cpu_ms"].append(cpu_ms)
            results[name]["maxrss_kb"].append(maxrss_kb)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
