"""The Hugging Face video classification guide's data loading, as written there, timed; prints JSON rows.

Runs in the benchmark-only venv ``benchmarks/.guide-venv`` (PyTorchVideo 0.1.5, built by ``loader.py``), never
in vidcls's. Settings are the guide's for VideoMAE-base: 16 frames every 4th, 224 px, ImageNet mean/std and its
hard-coded 30 fps for the clip duration. https://huggingface.co/docs/transformers/tasks/video_classification

    benchmarks/.guide-venv/bin/python benchmarks/guide_loader.py --data benchmarks/.data --workers 0 2
"""

from __future__ import annotations

import argparse
import json
import os

import pytorchvideo.data
import torch
from pytorchvideo.transforms import ApplyTransformToKey, Normalize, RandomShortSideScale, UniformTemporalSubsample
from timing import measure
from torchvision.transforms import Compose, Lambda, RandomCrop, RandomHorizontalFlip, Resize

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
RESIZE_TO = (224, 224)
NUM_FRAMES_TO_SAMPLE = 16
SAMPLE_RATE = 4
FPS = 30  # the guide's constant, whatever the videos' own rate (UCF101's is 25)
CLIP_DURATION = NUM_FRAMES_TO_SAMPLE * SAMPLE_RATE / FPS
BATCH_SIZE = 8


def guide_dataset(dataset_root_path: str, train: bool, size: int = RESIZE_TO[0]):
    """The guide's ``train_dataset`` or ``val_dataset``, unchanged at 224 px; other sizes keep its ratios."""
    if train:
        steps = [
            UniformTemporalSubsample(NUM_FRAMES_TO_SAMPLE),
            Lambda(lambda x: x / 255.0),
            Normalize(MEAN, STD),
            RandomShortSideScale(min_size=round(size * 256 / 224), max_size=round(size * 320 / 224)),
            RandomCrop((size, size)),
            RandomHorizontalFlip(p=0.5),
        ]
    else:
        steps = [
            UniformTemporalSubsample(NUM_FRAMES_TO_SAMPLE),
            Lambda(lambda x: x / 255.0),
            Normalize(MEAN, STD),
            Resize((size, size)),
        ]
    return pytorchvideo.data.Ucf101(
        data_path=os.path.join(dataset_root_path, "train" if train else "val"),
        clip_sampler=pytorchvideo.data.make_clip_sampler("random" if train else "uniform", CLIP_DURATION),
        decode_audio=False,
        transform=Compose([ApplyTransformToKey(key="video", transform=Compose(steps))]),
    )


def collate_fn(examples):
    """The guide's collate function: (C, T, H, W) clips -> (B, T, C, H, W)."""
    pixel_values = torch.stack([example["video"].permute(1, 0, 2, 3) for example in examples])
    labels = torch.tensor([example["label"] for example in examples])
    return {"pixel_values": pixel_values, "labels": labels}


def run(data: str, modes: list[str], workers: list[int], clips: int) -> list[dict]:
    rows = []
    for mode in modes:
        for num_workers in workers:
            loader = torch.utils.data.DataLoader(
                guide_dataset(data, train=mode == "train"),
                batch_size=BATCH_SIZE,
                num_workers=num_workers,
                collate_fn=collate_fn,
                persistent_workers=num_workers > 0,  # steady state: no worker start-up at each small epoch
            )
            rows.append({"mode": mode, "workers": num_workers, **measure(loader, clips)})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", required=True, help="folder holding train/<Class>/ and val/<Class>/")
    parser.add_argument("--modes", nargs="+", choices=["train", "eval"], default=["train", "eval"])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--clips", type=int, default=64, help="clips timed per row")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.data, args.modes, args.workers, args.clips)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
