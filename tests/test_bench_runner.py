"""`make bench`'s runner (benchmarks/run_all.py): one table of every script's rows, a failed script a row, exit 1.

No benchmark runs here: the scripts are two-line stand-ins that write rows (or fail) at once.
"""

import json
from dataclasses import asdict
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def run_all(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # run_all imports its sibling results.py, as when run as a script
    import run_all

    return run_all


def rows_of(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()[2:]]


def test_table_says_whether_each_target_is_met(run_all):
    from results import Result

    results = [
        Result("train", "vidcls, 224 px", 3.2, "samples/s", "guide Trainer", 1.6, 1.5),
        Result("predict", "per clip, 224 px", 5.0, "clips/s", "pipeline", 0.9, 1.2),
        Result("fold", "torch folded", 80.0, "ms per clip", "torch normalise", 1.1, None, "no target"),
        Result("train", "vidcls, 32 px", 40.0, "samples/s", note="loader-bound: 32 px model"),
        run_all.failed("serve", "exit 1; log: serve.log"),
    ]
    table = rows_of(run_all.table(results))
    met = {(row[0], row[1]): row[run_all.COLUMNS.index("met")] for row in table}
    assert met == {
        ("train", "vidcls, 224 px"): "yes",
        ("predict", "per clip, 224 px"): "no",
        ("fold", "torch folded"): "—",
        ("train", "vidcls, 32 px"): "—",
        ("serve", "FAILED"): "failed",
    }
    assert table[0][run_all.COLUMNS.index("ratio")] == "1.6x"
    assert "loader-bound" in table[3][-1] and "serve.log" in table[4][-1]


def test_a_failing_script_is_a_row_and_the_exit_code(run_all, tmp_path, monkeypatch):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    row = {"benchmark": "good", "row": "r", "value": 2.0, "unit": "x/s", "baseline": "b", "ratio": 2.0,
           "target": 1.5, "note": ""}  # fmt: skip
    # Stand-ins for benchmark scripts: one writes its rows to --json, one fails, one exits 0 with no rows.
    (scripts / "good.py").write_text(
        f"import sys, json; open(sys.argv[sys.argv.index('--json') + 1], 'w').write(json.dumps([{row!r}]))"
    )
    (scripts / "bad.py").write_text("raise SystemExit('boom')")
    (scripts / "silent.py").write_text("")
    out = tmp_path / "results"
    results = run_all.run_all([scripts / f"{n}.py" for n in ("good", "bad", "silent")], out, quick=True, timeout=60)
    assert [asdict(r) for r in results[:1]] == [row]
    assert [(r.benchmark, r.row) for r in results[1:]] == [("bad", "FAILED"), ("silent", "FAILED")]
    assert "exit 1" in results[1].note and "boom" in (out / "bad.log").read_text()

    monkeypatch.setattr(run_all, "HERE", scripts)
    monkeypatch.setattr(run_all, "SCRIPTS", ("good", "bad"))
    assert run_all.main(["--out", str(out)]) == 1
    assert run_all.main(["--out", str(out), "--only", "good"]) == 0
    assert json.loads((out / "good.json").read_text()) == [row]
    assert "| good | r |" in (out / "table.md").read_text()


def test_every_benchmark_with_json_rows_is_run(run_all):
    """A new benchmark script that writes Result rows (--json) is in make bench's list, or its figures never show."""
    helpers = {"run_all", "results"}
    writers = {p.stem for p in BENCHMARKS.glob("*.py") if p.stem not in helpers and '"--json"' in p.read_text()}
    assert writers <= set(run_all.SCRIPTS + run_all.SLOW_SCRIPTS)
