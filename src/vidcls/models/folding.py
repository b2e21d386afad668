"""Fold the pixel normalisation into a model's patch embedding, so inference feeds it uint8 pixels as they are.

Every family starts with a convolution whose stride equals its kernel and which has no padding (the table's
``patch_embedding``). Each of its outputs is ``b + sum W x`` over real pixels only, so normalising first,
``x * scale + shift`` per channel with ``scale = 1 / (255 std)`` and ``shift = -mean / std``, is the same as
``W' = W * scale`` (per input channel) and ``b' = b + sum W * shift``, exactly. (Zero padding would break it: a
padded zero is 0 after normalisation in the model as trained, not -mean/std.) The fold happens at load time for
inference only; saved folders keep the standard weights that transformers and other tools expect.

A folded model is called with uint8 (B, T, C, H, W) pixels: a hook on the convolution casts them to float right
before it, one copy that also lays them out as the convolution reads them; an exported graph casts them there
too. ``takes_uint8`` tells callers.
"""

from __future__ import annotations

import logging

import torch

from vidcls.models.families import family_of

logger = logging.getLogger(__name__)

UINT8_ATTR = "takes_uint8"  # set on a folded model; ``OnnxClassifier`` has it too, from its graph's input type


def takes_uint8(model) -> bool:
    """Whether ``model`` is called with uint8 pixels: a folded model, or an ONNX graph whose input is uint8."""
    return getattr(model, UINT8_ATTR, False) is True


def patch_embedding(model) -> torch.nn.Module:
    """The first layer pixels meet: the family table's ``patch_embedding``, under the model's base model."""
    return model.base_model.get_submodule(family_of(model.config).patch_embedding)


def refusal(conv: torch.nn.Module, channels: int) -> str:
    """Why the normalisation cannot fold exactly into ``conv``; empty when it can."""
    if not isinstance(conv, (torch.nn.Conv2d, torch.nn.Conv3d)):
        return f"is a {type(conv).__name__}, not a Conv2d or Conv3d"
    if conv.padding == "same" or (conv.padding != "valid" and any(conv.padding)):
        return f"pads its input ({conv.padding}), and a padded zero is not a normalised one"
    if conv.stride != conv.kernel_size:
        return f"has a stride {conv.stride} other than its kernel {conv.kernel_size}: not a patch embedding"
    if conv.groups != 1 or conv.in_channels != channels:
        return f"takes {conv.in_channels} channels in {conv.groups} groups, not the {channels} of the mean and std"
    return ""


@torch.no_grad()
def fold_normalization(model, mean, std) -> bool:
    """Fold ``(x / 255 - mean) / std`` into ``model``'s patch embedding, in place; then it takes uint8 pixels.

    Returns False, and logs why, when the family's first layer does not allow an exact fold: the model is left as
    it was and callers keep normalising. Folding a folded model again changes nothing.
    """
    if takes_uint8(model):
        return True
    conv = patch_embedding(model)
    reason = refusal(conv, len(mean))
    if reason:
        model_type = model.config.model_type
        logger.warning("%s: pixels are normalised before the model, whose patch embedding %s", model_type, reason)
        return False
    # In float64: the bias gathers a sum over the whole kernel, and float32 would round it visibly.
    std = torch.tensor(std, dtype=torch.float64)
    scale = 1.0 / (255.0 * std)
    shift = -torch.tensor(mean, dtype=torch.float64) / std
    weight = conv.weight.double()  # (out, C, *kernel)
    per_channel = (-1,) + (1,) * (weight.dim() - 2)  # broadcasts over the kernel's positions
    bias = conv.bias.double() if conv.bias is not None else torch.zeros(len(weight), dtype=torch.float64)
    bias = bias + (weight * shift.view(per_channel)).flatten(1).sum(1)
    dtype = conv.weight.dtype
    conv.weight.copy_((weight * scale.view(per_channel)).to(dtype))
    if conv.bias is None:
        conv.bias = torch.nn.Parameter(bias.to(device=conv.weight.device, dtype=dtype), requires_grad=False)
    else:
        conv.bias.copy_(bias.to(dtype))
    conv.register_forward_pre_hook(_cast_pixels)
    setattr(model, UINT8_ATTR, True)
    return True


def _cast_pixels(conv: torch.nn.Module, args: tuple) -> tuple:
    """Pixels 0-255 (uint8) -> the weights' float type, contiguous in the layout the convolution reads: one copy,
    whatever view of them the family made (its permute to (B, C, T, H, W), or the decoder's channels-last).
    Traced for ONNX export, it is the graph's Cast."""
    (pixels,) = args
    return (pixels.to(conv.weight.dtype, memory_format=torch.contiguous_format),)
