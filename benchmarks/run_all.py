"""Every CPU benchmark in one go, and one table of their headline rows: ratio to each baseline, target met or not.

Each script runs in its own process with ``--json RESULTS/<name>.json`` (``--quick`` too with ``--quick``), its
output going to ``RESULTS/<name>.log``; the rows it writes (``results.py``: ``Result``) are read back and printed
as one Markdown table, also saved as ``RESULTS/table.md``. A script that fails, times out or writes no rows is a
row saying so, the table still prints, and the exit code is 1. A target not met is a "no" in the table, not an
error. ``pretrain`` (about 25 minutes) runs only with ``--with_pretrain``.

    .venv/bin/python benchmarks/run_all.py                     # every benchmark (over an hour on 2 cores)
    .venv/bin/python benchmarks/run_all.py --quick             # every --quick smoke mode (a few minutes)
    .venv/bin/python benchmarks/run_all.py --only train serve  # some of them
    .venv/bin/python benchmarks/run_all.py --table_only        # the table of the last run's results again
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from results import Result, read

HERE = Path(__file__).resolve().parent
SCRIPTS = ("loader", "predict", "clips", "workers", "train", "serve", "export", "fold", "scale")
SLOW_SCRIPTS = ("pretrain",)  # only with --with_pretrain
COLUMNS = ("benchmark", "row", "value", "unit", "baseline", "ratio", "target", "met", "note")


def failed(benchmark: str, reason: str) -> Result:
    """The row of a script that gave no results: no value, and "failed" where "met" goes."""
    return Result(benchmark, "FAILED", math.nan, "", note=reason)


def met_cell(result: Result) -> str:
    if result.row == "FAILED":
        return "failed"
    return {True: "yes", False: "no", None: "—"}[result.met]


def number(value: float | None, suffix: str = "") -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:.3g}{suffix}" if abs(value) < 1000 else f"{value:.0f}{suffix}"


def table(results: list[Result]) -> str:
    """The rows as one Markdown table, in the order given."""
    numeric = ("value", "ratio", "target")
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---:" if c in numeric else "---" for c in COLUMNS) + "|",
    ]
    for r in results:
        cells = [r.benchmark, r.row, number(r.value), r.unit, r.baseline or "—", number(r.ratio, "x"),
                 number(r.target, "x"), met_cell(r), r.note]  # fmt: skip
        lines.append("| " + " | ".join(str(cell).replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines)


def run_script(script: Path, out: Path, quick: bool, timeout: float) -> list[Result]:
    """Run one benchmark script; its rows, or one ``failed`` row saying why."""
    name, json_path, log = script.stem, out / f"{script.stem}.json", out / f"{script.stem}.log"
    json_path.unlink(missing_ok=True)  # rows left by an earlier run must not pass for this one's
    command = [sys.executable, str(script), "--json", str(json_path), *(["--quick"] if quick else [])]
    # This checkout's src first, so a worktree benchmarks its own code; no hub downloads (random-init models).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1"}  # fmt: skip
    with log.open("w") as output:
        try:
            code = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, env=env, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            return [failed(name, f"timed out after {timeout:.0f} s; log: {log}")]
    if code != 0:
        return [failed(name, f"exit {code}; log: {log}")]
    try:
        rows = read(json_path)
    except (OSError, ValueError, TypeError) as err:  # missing, not JSON, or not Result rows
        return [failed(name, f"no Result rows in {json_path} ({type(err).__name__}); log: {log}")]
    return rows or [failed(name, f"{json_path} holds no rows; log: {log}")]


def run_all(scripts: list[Path], out: Path, quick: bool, timeout: float) -> list[Result]:
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for script in scripts:
        print(f"running {script.name}{' --quick' if quick else ''} (log: {out / script.stem}.log) ...", flush=True)
        started = time.perf_counter()
        rows = run_script(script, out, quick, timeout)
        status = "FAILED" if rows[0].row == "FAILED" else f"{len(rows)} rows"
        print(f"  {script.stem}: {status} in {time.perf_counter() - started:.0f} s", flush=True)
        results += rows
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Each script's --quick smoke mode.")
    parser.add_argument("--with_pretrain", action="store_true", help="Also benchmarks/pretrain.py (~25 min).")
    parser.add_argument("--only", nargs="+", choices=SCRIPTS + SLOW_SCRIPTS, help="These benchmarks only.")
    parser.add_argument("--out", type=Path, help="Results folder (default: .data/results[-quick] beside this file).")
    parser.add_argument("--timeout", type=float, default=3600, help="Seconds one script may run before it fails.")
    parser.add_argument("--table_only", action="store_true", help="Print the table of the results already in --out.")
    args = parser.parse_args(argv)
    names = args.only or [*SCRIPTS, *(SLOW_SCRIPTS if args.with_pretrain else ())]
    out = args.out or HERE / ".data" / ("results-quick" if args.quick else "results")
    if args.table_only:
        results = [row for name in names if (out / f"{name}.json").exists() for row in read(out / f"{name}.json")]
    else:
        results = run_all([HERE / f"{name}.py" for name in names], out, args.quick, args.timeout)
    text = table(results)
    print(text)
    if not args.table_only:
        (out / "table.md").write_text(text + "\n")
    return 1 if any(r.row == "FAILED" for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
