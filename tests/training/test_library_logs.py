"""A quiet, offline terminal while training (issue 10, item 7): library warnings and the Trainer's log dicts
go to the step's `train.log`; stderr shows one progress bar and selbench's own lines; no hub request."""

from __future__ import annotations

import json
import logging
import re
import sys
import warnings

from selbench.data.schema import Example, write_examples
from selbench.training.library_logs import library_output_to


def test_library_output_goes_to_the_file_and_everything_is_restored(tmp_path, capsys):
    transformers_logger = logging.getLogger("transformers")
    before = (transformers_logger.handlers[:], transformers_logger.propagate)
    with library_output_to(tmp_path / "step.log"):
        warnings.warn("a library FutureWarning", FutureWarning, stacklevel=1)
        logging.getLogger("peft.utils.other").warning("Unable to fetch remote file ...")
        logging.getLogger("selbench.training.train").warning("ours stays on stderr")
    text = (tmp_path / "step.log").read_text()
    assert "a library FutureWarning" in text and "Unable to fetch remote file" in text
    assert "ours stays" not in text
    assert (transformers_logger.handlers, transformers_logger.propagate) == before
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("after the step", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["after the step"]


def _stderr_lines(stderr: str) -> list[str]:
    return [line.strip() for line in re.split(r"[\r\n]+", stderr) if line.strip()]


def test_train_terminal_shows_one_progress_bar_and_no_library_chatter(tiny_model_dir, tmp_path, local_hub):
    """A real `selbench train` process: stderr holds only the progress bar and selbench's lines, the step's
    train.log holds the library warnings and every log dict, and the hub (a local one) is never asked."""
    write_examples([Example(instruction=f"Q{i}?", output=f"A{i}.") for i in range(6)],
                   tmp_path / "data" / "data.parquet")
    run, hub = local_hub({})
    out = tmp_path / "out"
    done = run(["selbench", "train", "--model", str(tiny_model_dir), "--data", str(tmp_path / "data"), "--preset",
                "demo", "--lora", "--out", str(out), "--set", "max_steps=3", "--set", "effective_batch_size=2",
                "--set", "per_device_batch_size=2", "--set", "save_steps=1", "--json"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["global_step"] == 3
    noise = [line for line in _stderr_lines(done.stderr)
             if not line.startswith(("train:", "INFO selbench", "WARNING selbench"))]
    assert noise == [], noise
    log = (out / "train.log").read_text()
    assert [int(m) for m in re.findall(r"step (\d+): \{.*\"loss\"", log)] == [1, 2, 3]
    assert hub.requests == []


def test_saving_a_lora_adapter_asks_no_hub(tmp_path, local_hub):
    """peft asked the hub for the base model's config.json at every save when the base is not a local folder
    (a packaged asset name): "Unable to fetch remote file ... Name or service not known" offline."""
    script = f"""
import warnings
from selbench.assets.tiny import build_tiny_model
from selbench.training.presets import from_preset
from selbench.training.trl_adapter import lora_model
model, _ = build_tiny_model()
model.name_or_path = "some-org/some-base-model"  # what a packaged asset's name looks like to peft
adapter = lora_model(model, from_preset("demo", lora=True))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    adapter.save_pretrained({str(tmp_path / "adapter")!r})
print("warnings:", [str(w.message) for w in caught if "config" in str(w.message)])
"""
    run, hub = local_hub({})
    done = run([sys.executable, "-c", script])
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert hub.requests == [], hub.requests
    assert "warnings: []" in done.stdout
