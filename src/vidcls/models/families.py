"""Supported model families and their quirks, in one table, so no model-specific ``if`` leaks elsewhere."""

from __future__ import annotations

from dataclasses import dataclass

from vidcls.errors import ConfigError


@dataclass(frozen=True)
class ModelFamily:
    model_type: str  # transformers' config.model_type
    input_name: str  # the forward() argument that takes (B, T, C, H, W) pixels
    frames_attr: str  # config attribute holding the number of input frames
    size_attr: str  # config attribute holding the input height and width
    fixed_frames: bool  # True when position embeddings fix the frame count the model takes
    # The patch embedding convolution under the base model, the first layer pixels meet: inference folds the
    # pixel normalisation into it (``models.folding``).
    patch_embedding: str
    # Where each transformer block's residual branches end, under the base model ("*" is the block number):
    # --drop_path puts stochastic depth there, and the block list orders parameters for --layer_decay.
    residual_branches: tuple[str, ...] = ()
    # The video processor class to save, where transformers' auto mapping has none for this model type.
    video_processor: str = ""


# One family per block, its positional fields on one line.
# fmt: off
FAMILIES = {
    f.model_type: f
    for f in (
        # VideoMAE and ViViT have no drop path of their own: it follows the dropout that ends each branch.
        ModelFamily(
            "videomae", "pixel_values", "num_frames", "image_size", fixed_frames=True,
            patch_embedding="embeddings.patch_embeddings.projection",
            residual_branches=("encoder.layer.*.attention.output.dropout", "encoder.layer.*.output.dropout"),
        ),
        ModelFamily(
            "vivit", "pixel_values", "num_frames", "image_size", fixed_frames=True,
            patch_embedding="embeddings.patch_embeddings.projection",
            residual_branches=("layers.*.dropout",),  # one dropout ends both branches
        ),
        # TimeSformer interpolates its time embeddings; V-JEPA 2 uses rotary positions. Both have a drop_path
        # module per block (an Identity at drop_path_rate 0), shared by all its branches.
        ModelFamily(
            "timesformer", "pixel_values", "num_frames", "image_size", fixed_frames=False,
            patch_embedding="embeddings.patch_embeddings.projection",  # a Conv2d applied to each frame
            residual_branches=("encoder.layer.*.drop_path",),
        ),
        ModelFamily(
            "vjepa2", "pixel_values_videos", "frames_per_clip", "crop_size", fixed_frames=False,
            patch_embedding="encoder.embeddings.patch_embeddings.proj",
            residual_branches=("encoder.layer.*.drop_path",),
        ),
        # VideoPrism's classifier is built on its vision model's config; it gives logits as (B, 1, K).
        ModelFamily(
            "videoprism_vision_model", "pixel_values_videos", "num_frames", "image_size", fixed_frames=True,
            patch_embedding="spatial_embeddings.patch_embeddings.projection",
            video_processor="LlavaOnevisionVideoProcessor",  # what transformers maps "videoprism" to
        ),
    )
}
# fmt: on


def family_of(config) -> ModelFamily:
    """The family of a transformers config; a clear error for models vidcls does not support."""
    try:
        return FAMILIES[config.model_type]
    except KeyError:
        raise ConfigError(
            f"model type {config.model_type!r} is not supported; use one of: {', '.join(sorted(FAMILIES))}"
        ) from None


def frames_of(config) -> int:
    return int(getattr(config, family_of(config).frames_attr))


def size_of(config) -> int:
    size = getattr(config, family_of(config).size_attr)
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def class_logits(logits):
    """(B, K) logits from any family's output: VideoPrism's classifier adds a query axis, (B, 1, K)."""
    return logits.reshape(logits.shape[0], -1)
