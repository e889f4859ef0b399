"""``kgrec neighbors --index-dir DIR``: wall time of the first call (builds and saves the
retriever) and of the calls after it (load the saved retriever), before and after issue 17.

Each call is a fresh process (``python -c 'kgrec.cli.main()' neighbors SPEC --item 50
--index-dir DIR``), timed from outside, so start-up and imports count. "before" runs the code of
``--before-src`` (a ``git archive`` of the commit before the change) through ``PYTHONPATH``;
"after" this checkout. Runs alternate (before, after, before, ...) so both see the same load;
the 1-minute load average is recorded beside each time. Writes
``bench/results/neighbors_load.json``.

    git archive 29420e2 | tar -x -C /tmp/kgrec-before
    OMP_WAIT_POLICY=PASSIVE nice -n 5 python bench/neighbors_load.py --before-src /tmp/kgrec-before
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LAUNCH = "import sys; from kgrec.cli import main; sys.exit(main(sys.argv[1:]))"


def call(src: Path, args: list[str], cwd: Path) -> tuple[float, float, str]:
    """(wall s, CPU s (user + system of the child), stdout) of one fresh ``kgrec`` process."""
    import resource

    env = {**os.environ, "PYTHONPATH": str(src), "OMP_WAIT_POLICY": "PASSIVE"}
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", LAUNCH, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu, out.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before-src", required=True, type=Path)
    ap.add_argument("--spec", default=str(REPO / "graphs" / "movielens-100k.toml"))
    ap.add_argument("--item", default="50")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kgrec-nb-"))
    spec = str(Path(args.spec).resolve())
    srcs = {"before": args.before_src.resolve(), "after": REPO}
    res: dict = {
        k: {"first_s": None, "later_s": [], "later_cpu_s": [], "loadavg_1min": []} for k in srcs
    }
    outputs = {}
    try:
        for label, src in srcs.items():  # first calls: build + save
            idx = work / label
            cmd = ["neighbors", spec, "--item", args.item, "--index-dir", str(idx), "-k", "10"]
            t, c, out = call(src, cmd, work)
            res[label]["first_s"] = round(t, 2)
            res[label]["first_cpu_s"] = round(c, 2)
            res[label]["first_loadavg_1min"] = round(os.getloadavg()[0], 2)
            outputs[label] = out
        for _ in range(args.repeats):  # later calls, alternating
            for label, src in srcs.items():
                idx = work / label
                cmd = ["neighbors", spec, "--item", args.item, "--index-dir", str(idx), "-k", "10"]
                t, c, out = call(src, cmd, work)
                res[label]["later_s"].append(round(t, 2))
                res[label]["later_cpu_s"].append(round(c, 2))
                res[label]["loadavg_1min"].append(round(os.getloadavg()[0], 2))
                assert out == outputs[label], "a loaded retriever answered differently"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for r in res.values():
        r["later_median_s"] = sorted(r["later_s"])[len(r["later_s"]) // 2]
        r["later_median_cpu_s"] = sorted(r["later_cpu_s"])[len(r["later_cpu_s"]) // 2]
    result = {
        "name": "neighbors_load",
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "what": f"kgrec neighbors {Path(args.spec).name} --item {args.item} --index-dir DIR -k 10 "
        "(model 'content'), one fresh process per call, wall time from outside",
        "machine": f"{os.cpu_count()} CPUs, shared with other jobs (load averages recorded)",
        "note": "wall times depend on the machine's load (other jobs ran here); cpu_s (user + "
        "system time of the process) is what one call costs and is about its wall time on an "
        "idle machine: the process is single-threaded apart from start-up",
        "same_answers_before_after": outputs["before"] == outputs["after"],
        "results": res,
        "answer": outputs["after"].splitlines()[:4],
    }
    out_path = HERE / "results" / "neighbors_load.json"
    out_path.write_text(json.dumps(result, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
