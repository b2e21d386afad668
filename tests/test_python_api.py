"""The README's Python API: train, evaluate and predict without the command line."""

from transformers import TrainingArguments

import vidcls


def test_train_evaluate_predict_from_python(motion_data, micro_config, tmp_path):
    output_dir = tmp_path / "out"
    defaults = {**vidcls.guide_training_defaults(), "dataloader_num_workers": 0, "dataloader_persistent_workers": False}
    training_args = TrainingArguments(output_dir=str(output_dir), **{**defaults, "max_steps": 2})
    metrics = vidcls.train(
        vidcls.DataArguments(data_dir=str(motion_data), sample_rate=2),
        vidcls.ModelArguments(config_name=str(micro_config)),
        training_args,
    )
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0
    report = vidcls.evaluate(output_dir, motion_data, "test", num_workers=0, views=vidcls.EvalViews(clips=4, crops=3))
    assert report["num_videos"] == 16 and report["views"] == "4x3"
    video = sorted((motion_data / "test").rglob("*.avi"))[0]
    top = vidcls.Predictor.from_pretrained(output_dir).predict(video, top_k=3)
    assert len(top) == 3 and top[0]["label"] in vidcls.Predictor.from_pretrained(output_dir).id2label.values()
