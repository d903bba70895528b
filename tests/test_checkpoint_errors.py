"""Checkpoint refusals in words: no terminal colour codes from torch's messages, RepDistiller's *_last.pth named."""

import pickle

from kdzoo.engine.checkpoint_errors import reason, unreadable_checkpoint

# torch's weights-only refusal wraps its advice in terminal colour codes
TORCH_TEXT = ("Weights only load failed. This file can still be loaded, \x1b[1mdo those steps only if you trust the "
              "source of the checkpoint\x1b[0m.\n\tWeightsUnpickler error: {}\n")


def test_reasons_carry_no_terminal_colour_codes():
    assert reason(RuntimeError("\x1b[1mbad\x1b[0m zip")) == "RuntimeError: bad zip"
    assert "\x1b" not in reason(pickle.UnpicklingError(TORCH_TEXT.format("Unsupported operand 149")))


def test_a_last_pth_is_refused_with_advice_whatever_torch_calls_the_namespace(tmp_path):
    path = tmp_path / "resnet8_last.pth"
    path.write_bytes(b"not empty")
    for words in ("Unsupported global: GLOBAL argparse.Namespace was not an allowed global",
                  "Unsupported class argparse.Namespace"):
        message = str(unreadable_checkpoint(path, pickle.UnpicklingError(TORCH_TEXT.format(words)), ""))
        assert "argparse.Namespace" in message and "ckpt_epoch_N.pth" in message and "\x1b" not in message
