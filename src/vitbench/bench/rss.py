"""Peak memory of a command and of every process it starts (DataLoader workers, DDP ranks).

    python -m vitbench.bench.rss -- vitbench-train data=imagefolder data.source.root=/tmp/photos data.storage=stream ...

Samples the process tree every ``--every`` seconds and prints, as one JSON line, the peak resident
set of the main process and the peak of the whole tree counted by PSS (proportional set size:
pages shared between a process and the workers it forked count once in all, not once a worker).
The main process's own high-water mark (VmHWM, what results.json's ``peak_memory_mb`` reports)
sees neither its workers nor memory between samples; this sees both, up to the sampling interval.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import psutil


def tree_memory(root: psutil.Process) -> tuple[float, float, int]:
    """(main RSS MB, tree PSS MB, processes) now."""
    main = root.memory_info().rss / 2**20
    pss, count = 0.0, 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            pss += proc.memory_full_info().pss / 2**20
            count += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # a worker that just ended
    return main, pss, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    start = time.perf_counter()
    proc = subprocess.Popen(command)
    root = psutil.Process(proc.pid)
    peak_main = peak_tree = 0.0
    most = 0
    while proc.poll() is None:
        try:
            main_mb, tree_mb, count = tree_memory(root)
        except psutil.NoSuchProcess:
            break
        peak_main, peak_tree, most = max(peak_main, main_mb), max(peak_tree, tree_mb), max(most, count)
        time.sleep(args.every)
    record = {
        "command": " ".join(command), "returncode": proc.wait(), "seconds": round(time.perf_counter() - start, 1),
        "peak_main_rss_mb": round(peak_main), "peak_tree_pss_mb": round(peak_tree), "most_processes": most,
    }  # fmt: skip
    print(json.dumps(record))
    return record["returncode"]


if __name__ == "__main__":
    sys.exit(main())
