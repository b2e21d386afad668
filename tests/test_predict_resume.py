"""Resumable prediction files (--engine ray): records appended as they come; after a crash at any byte, a rerun
keeps every whole record, drops what was cut short, and appending the rest gives the file a clean run writes."""

import pytest

from vidcls.engine.predict_output import append_records, resume_output
from vidcls.errors import ConfigError

RECORDS = [
    {"video": "a.mp4", "predictions": [{"label": "up", "score": 0.5}, {"label": "left", "score": 0.25}]},
    {"video": "broken.mp4", "error": "broken.mp4: cannot open as a video,\nsaid FFmpeg"},  # quoted over two lines
    {"video": "b, c.mp4", "predictions": [{"label": "left", "score": 0.75}, {"label": "up", "score": 0.125}]},
]


@pytest.mark.parametrize("name", ["preds.jsonl", "preds.csv"])
def test_a_crash_anywhere_loses_only_the_record_being_written(tmp_path, name):
    path = tmp_path / name
    assert append_records(RECORDS, path) == 1
    whole = path.read_bytes()
    assert resume_output(path, rows_per_record=2) == {r["video"] for r in RECORDS}
    assert path.read_bytes() == whole  # a finished file is left as it is
    for cut in range(len(whole)):
        path.write_bytes(whole[:cut])
        kept = resume_output(path, rows_per_record=2)
        assert whole.startswith(path.read_bytes())
        append_records([r for r in RECORDS if r["video"] not in kept], path)
        assert path.read_bytes() == whole, f"cut at byte {cut}"


def test_a_missing_file_holds_nothing_and_a_foreign_one_is_refused(tmp_path):
    assert resume_output(tmp_path / "new.jsonl", rows_per_record=5) == set()
    foreign = tmp_path / "notes.jsonl"
    foreign.write_text('{"video": "a.mp4", "predictions": []}\nnot json\n')
    with pytest.raises(ConfigError, match=r"notes.jsonl: line 2 is not a prediction record; move the file away"):
        resume_output(foreign, rows_per_record=5)
