"""A test helper: make a model write a fixed text, to exercise servers and parsers with real HTTP and
real generation when a small random model could never produce the format on its own."""

from __future__ import annotations


class ScriptedOutput:
    """Make `model` write `text` then EOS whatever the prompt, until `remove()`.

    Hooks on its input embeddings (a multi-token input starts a new request) and on its output layer (which
    only sees the last position during generation) force one token of `text` per step.
    """

    def __init__(self, model, tok, text):
        self.target = tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        self.step = 0
        self.hooks = [
            model.get_input_embeddings().register_forward_hook(self._count),
            model.lm_head.register_forward_hook(self._force),
        ]

    def _count(self, module, args, output):
        self.step = 0 if args[0].shape[1] > 1 else self.step + 1

    def _force(self, module, args, output):
        output = output.clone()
        output[:, -1, :] = -1e4
        output[:, -1, self.target[min(self.step, len(self.target) - 1)]] = 0.0
        return output

    def remove(self):
        for hook in self.hooks:
            hook.remove()
