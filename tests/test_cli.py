"""One flag vocabulary: both spellings of every flag, no prefix matching, 'did you mean', --version."""

import json

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
        (["check", "DATA", "--outptu", "r.json"], "unknown flag --outptu; did you mean --output?"),
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


def test_old_flag_names_still_work_and_name_the_new_one(motion_data, tmp_path, capsys):
    report = tmp_path / "check.json"
    assert main(["check", str(motion_data), "--num_workers", "0", "--json_report", str(report)]) == 0
    assert "--json_report is deprecated; use --output" in capsys.readouterr().err
    assert json.loads(report.read_text())["passed"]


def test_settings_file_with_flags_overriding_it(motion_data, tmp_path, capsys):
    settings = tmp_path / "check.yaml"
    settings.write_text(f"data_dir: {motion_data}\nnum_workers: 0\noutput: {tmp_path / 'from_file.json'}\n")
    assert main(["check", str(settings)]) == 0
    assert json.loads((tmp_path / "from_file.json").read_text())["passed"]
    assert main(["check", str(settings), "--output", str(tmp_path / "from_flag.json")]) == 0
    assert (tmp_path / "from_flag.json").is_file()
    as_json = tmp_path / "check.json"
    as_json.write_text(json.dumps({"data_dir": str(motion_data), "num_workers": 0, "strict": True}))
    assert main(["check", str(as_json)]) == 1  # --strict from the file: the data's one warning fails it
    assert "(--strict)" in capsys.readouterr().out


def test_an_old_name_in_a_settings_file_is_read_as_the_new_one(motion_data, tmp_path, capsys):
    settings = tmp_path / "check.yaml"
    settings.write_text(f"data_dir: {motion_data}\nnum_workers: 0\neval_clips: 2\noutput: {tmp_path / 'r.json'}\n")
    assert main(["check", str(settings)]) == 0
    assert "eval_clips is deprecated; use clips" in capsys.readouterr().err
    assert json.loads((tmp_path / "r.json").read_text())["clip_spec"]["eval_clips"] == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [("num_wrokers: 0\n", "unknown setting 'num_wrokers'; did you mean num_workers?"), ("- a\n- b\n", "name: value")],
)
def test_bad_settings_files_are_one_line_errors(tmp_path, text, message, capsys):
    settings = tmp_path / "bad.yaml"
    settings.write_text(text)
    assert main(["check", str(settings)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(("device", "message"), [("cuda:63", "no such CUDA GPU"), ("tpu9", "not a device")])
def test_a_device_that_is_not_here_is_a_one_line_error_before_any_work(tmp_path, device, message, capsys):
    # The data folder does not exist: the device is refused first, before the data is looked at.
    argv = ["evaluate", "--model_dir", str(tmp_path), "--data_dir", str(tmp_path / "none"), "--device", device]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert f"--device {device}: {message}" in err and len(err.splitlines()) == 1


def test_a_switch_before_a_positional_leaves_the_positional_alone(motion_data, tmp_path, capsys):
    # --strict takes an optional true/false: the data folder after it is still the data folder.
    assert main(["check", "--num_workers", "0", "--strict", str(motion_data)]) == 1  # one warning: fails strictly
    assert "(--strict)" in capsys.readouterr().out
    assert main(["check", "--num_workers", "0", "--strict", "false", str(motion_data)]) == 0
