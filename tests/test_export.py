"""vidcls export: every family to ONNX, checked and verified on real frames; predict --backend onnx; int8; errors."""

import json
from collections import Counter

import numpy as np
import onnx
import pytest
import torch

from vidcls.cli import main
from vidcls.config import ClipSpec
from vidcls.data.synthetic import DIRECTIONS
from vidcls.engine.predict import ClipReader, Predictor
from vidcls.export import REPORT_FILE
from vidcls.models.factory import create_model, resolve_clip_spec
from vidcls.models.families import family_of
from vidcls.models.onnx import INT8_FILE, ONNX_FILE, OnnxClassifier, load_onnx

LABELS = {"left": 0, "right": 1, "up": 2}


def save_model(config, output_dir, labels=LABELS):
    """A random tiny model saved as vidcls train saves it (weights, config, vidcls.json)."""
    torch.manual_seed(0)
    output_dir.mkdir(parents=True)
    config.to_json_file(output_dir.parent / "source-config.json")
    model = create_model(None, str(output_dir.parent / "source-config.json"), labels)
    resolve_clip_spec(model, sample_rate=2).save(output_dir)
    model.save_pretrained(output_dir)
    return output_dir


def input_dtype(path) -> int:
    """The element type (``onnx.TensorProto``) of an ONNX graph's first input."""
    return onnx.load(path, load_external_data=False).graph.input[0].type.tensor_type.elem_type


@pytest.fixture(scope="module")
def real_clip(real_videos):
    """The real video each export is verified on: the first AVI."""
    return next((v for v in real_videos if v.suffix == ".avi"), real_videos[0])


@pytest.fixture(scope="module")
def exported(model_type, tiny_configs, real_clip, tmp_path_factory):
    """A tiny model of each family exported with a dynamic batch and verified on a real clip: (model dir, exit code)."""
    model_dir = save_model(tiny_configs[model_type], tmp_path_factory.mktemp(model_type) / "model")
    code = main(["export", "--model_dir", str(model_dir), "--dynamic_batch", "--verify_video", str(real_clip)])
    return model_dir, code


@pytest.fixture(scope="module")
def real_clips(real_videos):
    """Evaluation clips of every real video, decoded once per clip spec: spec -> {video: clips or error}."""
    cache = {}

    def clips_for(spec: ClipSpec) -> dict:
        if spec not in cache:
            reader, cache[spec] = ClipReader(spec), {}
            for video in real_videos:
                cache[spec][video] = reader.from_file(video)
        return cache[spec]

    return clips_for


def test_every_family_exports_a_checked_model_within_1e4_of_pytorch(exported, real_clip):
    model_dir, code = exported
    assert code == 0
    export_dir = model_dir / "onnx"
    onnx.checker.check_model(str(export_dir / ONNX_FILE), full_check=True)
    report = json.loads((export_dir / REPORT_FILE).read_text())
    assert report["verify_video"] == str(real_clip) and report["opset"] == 18
    # uint8 pixels in, the normalisation folded into the graph's first layer: no pass over the pixels before it.
    assert input_dtype(export_dir / ONNX_FILE) == onnx.TensorProto.UINT8 and report["normalization_folded"]
    assert report["max_abs_diff"] <= 1e-4 and report["frames"] == report["clips"] * 4 > 0
    # The folder carries the labels and clip settings on its own.
    assert ClipSpec.load(export_dir) == ClipSpec.load(model_dir)
    assert json.loads((export_dir / "config.json").read_text())["label2id"] == LABELS

    # Parity measured here, not taken from the report: the clips of a real video through both backends.
    torch_side = Predictor.from_pretrained(model_dir, device="cpu")
    onnx_side = Predictor.from_pretrained(export_dir, backend="onnx")
    clips = torch_side.clips_from_file(real_clip)
    assert (torch_side.logits(clips) - onnx_side.logits(clips)).abs().max() <= 1e-4


def test_dynamic_batch_takes_batches_of_1_and_3_without_building_the_torch_model(exported, real_clip, monkeypatch):
    model_dir, _ = exported
    torch_side = Predictor.from_pretrained(model_dir, device="cpu")
    clips = torch_side.clips_from_file(real_clip)[:3]
    expected = torch_side.logits(clips)

    def no_torch_model(*args, **kwargs):
        raise AssertionError("the onnx backend built the torch model")

    monkeypatch.setattr("transformers.AutoModelForVideoClassification.from_pretrained", no_torch_model)
    classifier, spec = load_onnx(model_dir)
    assert classifier.fixed_batch is None
    name = family_of(classifier.config).input_name
    for count in (1, 3):
        (logits,) = classifier.session.run(None, {name: clips[:count].numpy()})  # one call of `count` uint8 clips
        assert logits.shape == (count, len(LABELS))
        assert np.abs(logits - expected[:count].numpy()).max() <= 1e-4


def test_onnx_backend_gives_the_torch_labels_on_every_real_video(exported, real_clips):
    model_dir, _ = exported
    torch_side = Predictor.from_pretrained(model_dir, device="cpu")
    onnx_side = Predictor.from_pretrained(model_dir, backend="onnx")  # the model folder: its onnx/ is used
    for video, clips in real_clips(torch_side.spec).items():
        expected, actual = torch_side.top_k(torch_side.scores(clips), 3), onnx_side.top_k(onnx_side.scores(clips), 3)
        assert [p["label"] for p in actual] == [p["label"] for p in expected], video.name
        assert np.allclose([p["score"] for p in actual], [p["score"] for p in expected], atol=1e-5), video.name


@pytest.fixture(scope="module")
def int8_export(tmp_path_factory, motion_data, micro_config):
    """A micro VideoMAE for the motion classes, exported with the defaults (batch 1, generated video) + --quantize."""
    from transformers import VideoMAEConfig

    model_dir = save_model(VideoMAEConfig.from_json_file(micro_config), tmp_path_factory.mktemp("int8") / "model",
                           {name: i for i, name in enumerate(DIRECTIONS)})  # fmt: skip
    args = ["export", "--model_dir", str(model_dir), "--quantize", "--eval_data", str(motion_data / "test")]
    return model_dir, main([*args, "--num_workers", "0"])


def test_quantize_writes_int8_and_reports_the_accuracy_change(int8_export, motion_data, tmp_path):
    model_dir, code = int8_export
    assert code == 0
    export_dir = model_dir / "onnx"
    ops = {file: {node.op_type for node in onnx.load(export_dir / file).graph.node} for file in (ONNX_FILE, INT8_FILE)}
    assert "MatMulInteger" in ops[INT8_FILE] and "MatMulInteger" not in ops[ONNX_FILE]
    assert input_dtype(export_dir / INT8_FILE) == onnx.TensorProto.UINT8  # quantisation keeps the uint8 input
    report = json.loads((export_dir / REPORT_FILE).read_text())
    assert report["verify_video"] == "generated" and not report["dynamic_batch"]
    result = report["int8"]
    assert result["mode"] == "dynamic"  # a bare --quantize, as before static existed
    assert (result["videos"], result["skipped"]) == (16, 0)  # 8 classes x 2 test videos

    # The reported accuracies are what each model does on those videos, video by video.
    videos = sorted(motion_data.glob("test/*/*.avi"))
    sides = {
        "torch": Predictor.from_pretrained(model_dir, device="cpu"),
        "int8": Predictor.from_pretrained(model_dir, backend="onnx", int8=True),
    }
    for name, side in sides.items():
        hits = [side.predict(video, top_k=1)[0]["label"] == video.parent.name for video in videos]
        assert result[f"{name}_accuracy"] == pytest.approx(np.mean(hits))
    assert result["accuracy_change"] == pytest.approx(result["int8_accuracy"] - result["torch_accuracy"])

    args = ["predict", str(videos[0]), "--model_dir", str(model_dir), "--num_workers", "0"]
    assert main([*args, "--backend", "onnx", "--int8", "--output", str(tmp_path / "p.jsonl")]) == 0


@pytest.fixture(scope="module")
def static_export(tmp_path_factory, motion_data, micro_config):
    """The micro VideoMAE of int8_export, quantised static: calibrated on 8 clips of the motion test videos."""
    from transformers import VideoMAEConfig

    model_dir = save_model(VideoMAEConfig.from_json_file(micro_config), tmp_path_factory.mktemp("static") / "model",
                           {name: i for i, name in enumerate(DIRECTIONS)})  # fmt: skip
    args = ["export", "--model_dir", str(model_dir), "--quantize", "static", "--eval_data", str(motion_data / "test")]
    return model_dir, main([*args, "--calibration_clips", "8", "--num_workers", "0"])


def test_static_quantize_writes_a_qdq_graph_with_per_channel_weights(static_export):
    model_dir, code = static_export
    assert code == 0
    export_dir = model_dir / "onnx"
    graph = onnx.load(export_dir / INT8_FILE).graph
    ops = Counter(node.op_type for node in graph.node)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0 and "MatMulInteger" not in ops
    # Weights are stored int8 with one scale per output channel; activations get a single uint8 scale.
    weights = {init.name: init for init in graph.initializer if init.data_type == onnx.TensorProto.INT8}
    scales = {init.name: onnx.numpy_helper.to_array(init) for init in graph.initializer}
    per_channel = [node for node in graph.node if node.op_type == "DequantizeLinear" and node.input[0] in weights]
    assert len(per_channel) == 2 * 6 + 1  # 6 linear layers in each of 2 blocks, and the classifier
    for node in per_channel:
        (axis,) = [attribute.i for attribute in node.attribute if attribute.name == "axis"]
        assert scales[node.input[1]].size == weights[node.input[0]].dims[axis] > 1, node.input[0]
    quantized = [node for node in graph.node if node.op_type == "QuantizeLinear"]
    assert all(scales[node.input[2]].dtype == np.uint8 for node in quantized)
    # The patch embedding reads the pixels in float: one int8 scale for a whole clip's pixels costs accuracy.
    conv = next(node for node in graph.node if node.op_type == "Conv")
    assert all(name not in weights for name in conv.input)

    result = json.loads((export_dir / REPORT_FILE).read_text())["int8"]
    assert (result["mode"], result["calibration_clips"], result["videos"]) == ("static", 8, 16)
    assert result["accuracy_change"] == pytest.approx(result["int8_accuracy"] - result["torch_accuracy"])


def test_static_int8_logits_stay_close_to_fp32_on_calibration_like_clips(static_export, motion_data):
    model_dir, _ = static_export
    fp32 = Predictor.from_pretrained(model_dir, backend="onnx")
    int8 = Predictor.from_pretrained(model_dir, backend="onnx", int8=True)
    for video in sorted(motion_data.glob("test/*/*.avi"))[::4]:
        clips = fp32.clips_from_file(video)
        expected, actual = fp32.logits(clips), int8.logits(clips)
        # Within a tenth of how far the classes' logits lie apart: the ranking, hence the label, holds.
        spread = (expected - expected.mean(dim=1, keepdim=True)).abs().max()
        assert (actual - expected).abs().max() <= 0.1 * spread, video.name
        assert torch.equal(actual.argmax(dim=1), expected.argmax(dim=1)), video.name


def test_calibration_feeds_clips_as_the_graph_input_declares(motion_data):
    from vidcls.data.transforms import normalize
    from vidcls.export.calibration import ClipFeed, calibration_clips

    spec = ClipSpec(num_frames=4, sample_rate=2, image_size=16)
    clips = calibration_clips(spec, motion_data / "test", 20)
    # 16 videos of 8 classes for 20 clips: 2 views of each, until the budget runs out.
    assert len(clips) == 20 and clips[0].shape == (4, 3, 16, 16) and clips[0].dtype == torch.uint8
    uint8 = ClipFeed(clips, "pixels", True, spec)
    assert [uint8.get_next()["pixels"].dtype for _ in range(20)] == [np.uint8] * 20 and uint8.get_next() is None
    floats = ClipFeed(clips, "pixels", False, spec).get_next()["pixels"]
    assert floats.shape == (1, 4, 3, 16, 16) and np.array_equal(floats, normalize(clips[0][None], spec.mean, spec.std))


def test_static_without_usable_videos_is_one_line_naming_the_flag(static_export, tmp_path, capsys):
    model_dir, _ = static_export
    (tmp_path / "empty").mkdir()
    broken = tmp_path / "broken" / "left"
    broken.mkdir(parents=True)
    (broken / "clip.avi").write_bytes(b"not a video")
    export = ["export", "--model_dir", str(model_dir), "--quantize", "static"]
    cases = [
        (export, "--eval_data DIR"),
        ([*export, "--eval_data", str(tmp_path / "empty")], f"--eval_data {tmp_path / 'empty'}: no class folders"),
        ([*export, "--eval_data", str(tmp_path / "missing")], f"--eval_data {tmp_path / 'missing'}: no such folder"),
        ([*export, "--calibration_data", str(tmp_path / "broken")], "--calibration_data"),
        ([*export, "--eval_data", str(tmp_path), "--calibration_clips", "0"], "--calibration_clips"),
        (["export", "--model_dir", str(model_dir), "--quantize", "fastest"], "--quantize fastest"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2, argv
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.startswith("vidcls export: error: ") and expected in last, last


def test_quantize_keeps_its_boolean_spellings():
    from vidcls.cli.export import ExportArguments, build_parser
    from vidcls.cli.flags import split_namespace

    parser = build_parser()
    table = [
        ([], None),
        (["--quantize"], "dynamic"),
        (["--quantize", "true"], "dynamic"),
        (["--quantize", "False"], None),
        (["--quantize", "static", "--eval_data", "d"], "static"),
    ]
    for flags, expected in table:
        (parsed,) = split_namespace(parser.parse_args(["--model_dir", "m", *flags]), ExportArguments)
        assert parsed.quantize == expected, flags


def test_cli_predict_onnx_writes_the_torch_records_for_real_and_broken_files(
    int8_export, real_videos, bad_videos, tmp_path
):
    model_dir, _ = int8_export
    assert load_onnx(model_dir)[0].fixed_batch == 1  # the default export: clips go through one at a time
    videos = [*map(str, real_videos), *map(str, bad_videos[:2])]
    records, codes = {}, {}
    for backend in ("torch", "onnx"):
        output = tmp_path / f"{backend}.jsonl"
        args = ["predict", *videos, "--model_dir", str(model_dir), "--backend", backend, "--top_k", "3"]
        codes[backend] = main([*args, "--num_workers", "0", "--output", str(output), "--no-progress"])
        records[backend] = [json.loads(line) for line in output.read_text().splitlines()]
    assert codes["onnx"] == codes["torch"] == (1 if bad_videos else 0)
    assert [r["video"] for r in records["onnx"]] == videos
    for ours, theirs in zip(records["onnx"], records["torch"], strict=True):
        assert ours.get("error") == theirs.get("error")
        labels = [[p["label"] for p in r.get("predictions", [])] for r in (ours, theirs)]
        assert labels[0] == labels[1], ours["video"]
    assert sum("predictions" in r for r in records["onnx"]) == len(real_videos)


def test_unusable_inputs_fail_with_one_line_naming_the_flag(int8_export, tmp_path, capsys):
    model_dir, _ = int8_export
    cases = [
        (["export", "--model_dir", str(tmp_path / "missing")], "--model_dir"),
        (["export", "--model_dir", str(model_dir), "--opset", "13"], "--opset 13"),
        (["export", "--model_dir", str(model_dir), "--eval_data", str(tmp_path)], "--quantize"),
        (["predict", "x.mp4", "--model_dir", str(tmp_path / "missing"), "--backend", "onnx"], "no such folder"),
        (["predict", "x.mp4", "--model_dir", str(model_dir), "--backend", "torch", "--int8"], "--backend onnx"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2, argv
        last = capsys.readouterr().err.strip().splitlines()[-1]  # lines above: transformers' progress bars
        assert last.startswith(f"vidcls {argv[0]}: error: ") and expected in last, last
    # argparse refuses an unknown format before anything runs, listing the valid ones.
    assert main(["export", "--model_dir", str(model_dir), "--format", "tflite"]) == 2
    assert "argument --format: invalid choice: 'tflite'" in capsys.readouterr().err


def test_a_model_without_its_onnx_file_says_how_to_export_it(tiny_configs, tmp_path, capsys):
    model_dir = save_model(tiny_configs["videomae"], tmp_path / "model")
    assert main(["predict", "x.mp4", "--model_dir", str(model_dir), "--backend", "onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"no {ONNX_FILE}" in err and f"vidcls export --model_dir {model_dir}" in err


def test_unsupported_models_and_failed_exports_say_why_and_leave_no_model(tiny_configs, tmp_path, capsys, monkeypatch):
    from transformers import BertConfig

    bert = tmp_path / "bert"
    bert.mkdir()
    BertConfig().save_pretrained(bert)
    ClipSpec().save(bert)
    assert main(["export", "--model_dir", str(bert)]) == 2
    assert "'bert' is not supported" in capsys.readouterr().err

    model_dir = save_model(tiny_configs["vivit"], tmp_path / "vivit")

    def unsupported(*args, **kwargs):
        raise RuntimeError("Could not guard on data-dependent expression\n\n(a long trace follows)")

    with monkeypatch.context() as patch:
        patch.setattr(torch.onnx, "export", unsupported)
        assert main(["export", "--model_dir", str(model_dir)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("vidcls export: error: vivit cannot be exported to ONNX: Could not guard on data-dependent")
    assert list((model_dir / "onnx").iterdir()) == []


def test_an_export_that_disagrees_with_pytorch_is_refused(tiny_configs, tmp_path, capsys, monkeypatch):
    from vidcls.export import verify

    class Drifting(verify.OnnxClassifier):
        def __call__(self, **inputs):
            out = super().__call__(**inputs)
            out.logits += 1e-3  # as an export whose attention or normalisation was translated slightly wrong
            return out

    monkeypatch.setattr(verify, "OnnxClassifier", Drifting)
    model_dir = save_model(tiny_configs["videomae"], tmp_path / "model")
    assert main(["export", "--model_dir", str(model_dir)]) == 2
    err = capsys.readouterr().err
    assert "logits up to 0.001 away from PyTorch's" in err and "tolerance 0.0001" in err
    assert list((model_dir / "onnx").iterdir()) == []


def test_a_model_whose_fold_is_refused_exports_a_uint8_graph_that_normalises(tiny_configs, real_clip, tmp_path):
    from vidcls.export.onnx_export import export_graph
    from vidcls.models.folding import fold_normalization, patch_embedding

    tiny_configs["videomae"].to_json_file(tmp_path / "config.json")
    torch.manual_seed(0)
    model = create_model(None, str(tmp_path / "config.json"), LABELS)
    spec = resolve_clip_spec(model, sample_rate=2, mean=(0.3, 0.5, 0.7), std=(0.15, 0.25, 0.35))
    patch_embedding(model).padding = (0, 1, 1)  # a first layer the fold would not be exact for
    assert not fold_normalization(model, spec.mean, spec.std)
    export_graph(model, spec, tmp_path / ONNX_FILE, dynamic_batch=True)
    assert input_dtype(tmp_path / ONNX_FILE) == onnx.TensorProto.UINT8
    torch_side = Predictor(model, spec, device="cpu")
    onnx_side = Predictor(OnnxClassifier(tmp_path / ONNX_FILE, model.config), spec, device="cpu")
    clips = torch_side.clips_from_file(real_clip)
    assert (torch_side.logits(clips) - onnx_side.logits(clips)).abs().max() <= 1e-4


def test_a_graph_of_an_earlier_export_taking_normalised_floats_still_predicts(tiny_configs, real_clip, tmp_path):
    from vidcls.models.factory import load_trained
    from vidcls.models.families import class_logits

    class FloatLogits(torch.nn.Module):  # what vidcls export wrote before it folded the normalisation
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, pixels):
            return class_logits(self.model(pixel_values=pixels).logits)

    model, spec = load_trained(save_model(tiny_configs["videomae"], tmp_path / "model"))
    example = torch.randn(1, spec.num_frames, 3, spec.image_size, spec.image_size)
    torch.onnx.export(FloatLogits(model).eval(), (example,), input_names=["pixel_values"], dynamo=True).save(
        tmp_path / ONNX_FILE
    )
    onnx_side = Predictor(OnnxClassifier(tmp_path / ONNX_FILE, model.config), spec, device="cpu")
    assert not onnx_side.model.takes_uint8  # so the Predictor normalises the clips before the graph
    torch_side = Predictor.from_pretrained(tmp_path / "model", device="cpu")
    clips = torch_side.clips_from_file(real_clip)
    assert (torch_side.logits(clips) - onnx_side.logits(clips)).abs().max() <= 1e-4
