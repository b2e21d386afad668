"""vidcls serve on a CPU: decoding beside the model only where the measured costs say it is faster."""

import threading

import torch

from vidcls.serve.overlap import Overlap


def _overlap_after(decode_ms: float, model_ms: float, cores: int = 2) -> Overlap:
    overlap = Overlap(torch.device("cpu"), max_decoders=2, cores=cores)
    overlap.note("decode", 4 * decode_ms / 1000, 4)  # one request's 4 clips
    overlap.note("model", 4 * model_ms / 1000, 4)
    return overlap


def test_decoding_and_model_take_turns_while_the_measured_costs_say_the_model_bounds():
    assert Overlap(torch.device("cpu"), max_decoders=2, cores=2).beside == 2  # nothing measured yet: as on a GPU
    assert _overlap_after(decode_ms=10, model_ms=80).beside == 0  # a 224 px model on 2 cores
    assert _overlap_after(decode_ms=80, model_ms=10).beside == 2  # a 32 px model: decode beside it
    assert _overlap_after(decode_ms=80, model_ms=10, cores=16).beside == 2  # never past --max_concurrent


def test_a_model_on_a_gpu_always_has_decoding_beside_it():
    assert Overlap(torch.device("cuda"), max_decoders=3).beside == 3


def _decodes_during_a_model_call(overlap: Overlap, wait_s: float) -> bool:
    """Whether a decoder started during a model call gets to read within ``wait_s`` of the call."""
    read_started = threading.Event()
    clips = torch.zeros(1, 2, 3, 4, 4, dtype=torch.uint8)
    decoder = threading.Thread(target=overlap.decode, args=(lambda: read_started.set() or clips,))

    def logits(batch):
        decoder.start()
        logits.during = read_started.wait(wait_s)
        return torch.zeros(len(batch), 3)

    threads = torch.get_num_threads()
    overlap.model(logits, clips)
    decoder.join(5)
    overlap.restore()  # as the server does when it stops
    assert torch.get_num_threads() == threads
    assert read_started.is_set()  # it did read, after the call at the latest
    return logits.during


def test_in_turns_decoding_waits_for_the_model_call_and_beside_it_does_not():
    assert not _decodes_during_a_model_call(_overlap_after(decode_ms=10, model_ms=80), wait_s=0.3)
    assert _decodes_during_a_model_call(_overlap_after(decode_ms=80, model_ms=10), wait_s=5)
