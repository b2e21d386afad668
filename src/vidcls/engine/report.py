"""What a training run leaves for people: training_curves.png and a model card (README.md)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def plot_training_curves(log_history: list[dict], path: str | Path) -> Path:
    """Loss, learning rate and validation accuracy (per video and per clip) from the Trainer's log history."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    train = [e for e in log_history if "loss" in e and "step" in e]
    evals = [e for e in log_history if "eval_accuracy" in e]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot([e["step"] for e in train], [e["loss"] for e in train], label="training loss")
    if evals and "eval_loss" in evals[0]:
        axes[0].plot([e["step"] for e in evals], [e["eval_loss"] for e in evals], "o-", label="validation loss")
    axes[1].plot(
        [e["step"] for e in train if "learning_rate" in e], [e["learning_rate"] for e in train if "learning_rate" in e]
    )
    axes[2].plot([e["epoch"] for e in evals], [e["eval_accuracy"] for e in evals], "o-", label="per video")
    axes[2].plot([e["epoch"] for e in evals], [e["eval_clip_accuracy"] for e in evals], "s--", label="per clip")
    for ax, title, xlabel in zip(
        axes, ("loss", "learning rate", "validation accuracy"), ("step", "step", "epoch"), strict=True
    ):
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].legend()
    axes[2].legend()
    axes[2].set_ylim(0, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def write_model_card(
    output_dir: str | Path,
    *,
    data_dir: str,
    labels: list[str],
    counts: dict[str, int],
    base_model: str,
    settings: dict,
    metrics: dict,
) -> Path:
    """README.md for the output folder: dataset, labels, recipe, metrics and the command that made it."""
    metric_rows = "\n".join(
        f"| {name.removeprefix('eval_')} | {value:.4f} |"
        for name, value in metrics.items()
        if name.startswith("eval_") and "accuracy" in name
    )
    setting_rows = "\n".join(f"| `{name}` | `{value}` |" for name, value in settings.items())
    from_cli = Path(sys.argv[0]).name in ("vidcls", "__main__.py")
    command = shlex.join(["vidcls", *sys.argv[1:]]) if from_cli else "(trained from Python)"
    text = f"""---
library_name: transformers
pipeline_tag: video-classification
tags: [vidcls, video-classification]
---

# Video classifier trained with vidcls

Base model: `{base_model}`. Dataset: `{data_dir}` ({", ".join(f"{n} {split}" for split, n in counts.items())} videos).

Labels ({len(labels)}): {", ".join(labels)}

## Validation metrics (best epoch)

Per-video accuracy averages clip scores over evenly spaced clips; per-clip accuracy scores each clip alone.

| metric | value |
|---|---|
{metric_rows}

## Recipe

| setting | value |
|---|---|
{setting_rows}

## Reproduce

```bash
{command}
```

## Use

```python
from vidcls import Predictor
Predictor.from_pretrained("{Path(output_dir).name}").predict("video.mp4")
# or: transformers.pipeline("video-classification", model="{Path(output_dir).name}")
```
"""
    path = Path(output_dir) / "README.md"
    path.write_text(text)
    return path
