"""Label masks, token by token, for the alpaca, chat (single and multi-turn) and study templates."""

from __future__ import annotations

import pytest

from selbench.data.schema import Example
from selbench.training.alpaca import alpaca_prompt
from selbench.training.base import IGNORE_INDEX, encode_segments, get_template, resolve_template_name
from selbench.training.study import SYSTEM_INSTRUCTION


@pytest.fixture(scope="module")
def tok():
    from selbench.assets.tiny import build_tiny_tokenizer

    return build_tiny_tokenizer()


def ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def encode(tok, template, example, max_length=None, loss_on_prompt=None):
    t = get_template(template)
    lop = t.loss_on_prompt if loss_on_prompt is None else loss_on_prompt
    return encode_segments(t.segments(example, tok), tok, max_length, loss_on_prompt=lop)


def test_alpaca_masks_prompt_and_trains_response_plus_eos(tok):
    ex = Example(instruction="Name a colour.", output="Blue is one.")
    enc = encode(tok, "alpaca", ex)
    prompt = ids(tok, alpaca_prompt("Name a colour."))
    response = ids(tok, "Blue is one.") + [tok.convert_tokens_to_ids("<|im_end|>")]
    assert enc.input_ids == prompt + response
    assert enc.labels == [IGNORE_INDEX] * len(prompt) + response
    assert tok.decode([t for t in enc.labels if t != IGNORE_INDEX]) == "Blue is one.<|im_end|>"


def test_alpaca_with_input_uses_the_input_prompt(tok):
    ex = Example(instruction="Translate.", input="chat", output="cat")
    enc = encode(tok, "alpaca", ex)
    text = tok.decode(enc.input_ids)
    assert "### Input:\nchat\n\n### Response:\ncat" in text
    assert text.startswith("Below is an instruction that describes a task, paired with an input")


def test_chat_single_turn_trains_reply_through_end_of_turn_only(tok):
    ex = Example(instruction="Hi there", output="Hello, friend")
    enc = encode(tok, "chat", ex)
    head = ids(tok, "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n")
    reply = ids(tok, "Hello, friend<|im_end|>")
    tail = ids(tok, "\n")
    assert enc.input_ids == head + reply + tail
    assert enc.labels == [IGNORE_INDEX] * len(head) + reply + [IGNORE_INDEX] * len(tail)
    # The end-of-turn token is one special token and is trained (the model must learn to stop).
    assert reply[-1] == tok.convert_tokens_to_ids("<|im_end|>")


def test_chat_multi_turn_trains_every_assistant_turn_and_nothing_else(tok):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "One?"},
        {"role": "assistant", "content": "Uno"},
        {"role": "user", "content": "Two?"},
        {"role": "assistant", "content": "Dos"},
    ]
    ex = Example(instruction="One?", output="Uno", messages=messages)
    enc = encode(tok, "chat", ex)
    pieces = [
        ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nOne?<|im_end|>\n<|im_start|>assistant\n", False),
        ("Uno<|im_end|>", True),
        ("\n<|im_start|>user\nTwo?<|im_end|>\n<|im_start|>assistant\n", False),
        ("Dos<|im_end|>", True),
        ("\n", False),
    ]
    want_ids, want_labels = [], []
    for text, trained in pieces:
        part = ids(tok, text)
        want_ids += part
        want_labels += part if trained else [IGNORE_INDEX] * len(part)
    assert enc.input_ids == want_ids
    assert enc.labels == want_labels
    assert tok.decode(enc.input_ids) == tok.apply_chat_template(messages, tokenize=False)


def test_study_template_is_the_studys_text_with_loss_on_every_token(tok):
    ex = Example(instruction="Add 2 and 3.", input="", output="5")
    enc = encode(tok, "study", ex)
    text = f"{SYSTEM_INSTRUCTION} \n ### Instruction: Add 2 and 3. \n ### Response: 5<|im_end|>"
    assert enc.input_ids == ids(tok, text)
    assert enc.labels == enc.input_ids
    masked = encode(tok, "study", ex, loss_on_prompt=False)
    n_prompt = len(ids(tok, f"{SYSTEM_INSTRUCTION} \n ### Instruction: Add 2 and 3. \n ### Response:"))
    assert masked.labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert tok.decode(masked.labels[n_prompt:]) == " 5<|im_end|>"


def test_truncation_keeps_prompt_and_drops_examples_without_response_tokens(tok):
    ex = Example(instruction="Hi there", output="word " * 50)
    full = encode(tok, "chat", ex)
    cut = encode(tok, "chat", ex, max_length=20)
    assert cut.truncated and len(cut.input_ids) == 20
    assert cut.input_ids == full.input_ids[:20] and cut.labels == full.labels[:20]
    n_head = len(ids(tok, "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"))
    assert encode(tok, "chat", ex, max_length=n_head) is None


def test_auto_template_follows_the_tokenizer(tok):
    from selbench.assets.tiny import build_tiny_tokenizer

    assert resolve_template_name("auto", tok) == "chat"
    assert resolve_template_name("auto", build_tiny_tokenizer(chat_template=False)) == "alpaca"
    with pytest.raises(KeyError, match="did you mean"):
        get_template("alpacca")


@pytest.mark.parametrize("name", ["alpaca", "study"])
def test_inference_chat_template_prompts_as_training_did(tok, name):
    """A model trained on the alpaca / study prompt is prompted the same way at evaluation: the chat template
    saved with it renders a user turn as the training prompt, and a solved turn as the training text."""
    import copy

    from selbench.training.base import inference_chat_template

    template = get_template(name)
    example = Example(instruction="Add 2 and 3.", output="5")
    prompt, response = (seg.text for seg in template.segments(example, tok))
    served = copy.deepcopy(tok)
    served.chat_template = inference_chat_template(name, tok)
    user = [{"role": "user", "content": example.instruction}]
    assert served.apply_chat_template(user, tokenize=False, add_generation_prompt=True) == prompt
    solved = [*user, {"role": "assistant", "content": example.output}]
    assert served.apply_chat_template(solved, tokenize=False) == prompt + response
    with_system = [{"role": "system", "content": "Be brief."}, *user]
    rendered = served.apply_chat_template(with_system, tokenize=False, add_generation_prompt=True)
    assert rendered == template.segments(Example(instruction="Be brief.\n\nAdd 2 and 3.", output="5"), tok)[0].text
    assert inference_chat_template("chat", tok) is None  # chat-trained models keep their own template


def test_a_chat_template_that_writes_bos_gets_one_bos(tok):
    """Review finding: Llama/Gemma chat templates write BOS themselves; adding one more gave `<bos><bos>`."""
    import copy

    from selbench.training.base import Segment

    with_bos = copy.deepcopy(tok)
    with_bos.bos_token = "<|endoftext|>"
    bos = with_bos.bos_token_id
    segments = [Segment("<|endoftext|>Hello", trained=False), Segment(" world", trained=True)]
    enc = encode_segments(segments, with_bos, None, add_bos=True)
    assert enc.input_ids[0] == bos and enc.input_ids[1] != bos
    plain = encode_segments([Segment("Hello", trained=False), Segment(" world", trained=True)], with_bos, None,
                            add_bos=True)
    assert plain.input_ids[0] == bos and plain.input_ids[1] != bos  # a template without BOS still gets one


def test_study_template_gives_eos_no_loss(tok):
    """The study set pad = EOS and its collator masked pad tokens: EOS carried no loss there, nor here."""
    from selbench.training.train import tokenize_examples

    rows, _ = tokenize_examples([Example(instruction="Add 2 and 3.", output="5")], tok, "study", True, None)
    ids, labels = rows["input_ids"][0], rows["labels"][0]
    assert ids[-1] == tok.eos_token_id and labels[-1] == IGNORE_INDEX
    assert all(label == i for i, label in zip(ids[:-1], labels[:-1], strict=True))  # everything else trained
