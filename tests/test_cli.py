"""One flag vocabulary: both spellings of every flag, no prefix matching, 'did you mean', --version."""

import pytest

from vidcls.cli import main


def test_unknown_command_suggests_the_closest(capsys):
    assert main(["trian"]) == 2
    assert "unknown command 'trian'; did you mean train?" in capsys.readouterr().err


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("vidcls ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "DATA", "--jsn_report", "r.json"], "unknown flag --jsn_report; did you mean --json_report?"),
        # A prefix of a longer flag is not that flag: --split never quietly means --split_seed or --split_ratios.
        (["check", "DATA", "--split", "0.5"], "unknown flag --split"),
        (["check", "DATA", "--num_work", "0"], "unknown flag --num_work; did you mean --num_workers?"),
    ],
)
def test_unknown_and_abbreviated_flags_are_refused_by_name(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_dashes_and_underscores_are_the_same_flag(tmp_path, capsys):
    missing = tmp_path / "missing"
    for flag in ("--model_dir", "--model-dir"):
        assert main(["evaluate", flag, str(missing), "--data-dir", str(tmp_path), "--num-workers=0"]) == 2
        err = capsys.readouterr().err
        assert f"--model_dir {missing}" in err and "unknown flag" not in err  # the flag was read, the folder is bad


def test_values_after_a_double_dash_are_left_alone(tmp_path, capsys):
    assert main(["check", "--num-workers", "0", "--", "--not-a-flag"]) == 2
    assert "--not-a-flag" in capsys.readouterr().err  # taken as the DATA path, not as a flag
