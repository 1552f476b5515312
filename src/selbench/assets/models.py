"""`load_model(spec)`: the one function that turns any model spec into a loaded 🤗 causal LM + tokenizer.

Every stage that needs a model (scoring, training, generation, evaluation) calls this, so packaged
assets, local folders, LoRA adapters and hub models behave the same everywhere (DESIGN.md, "Python API
contracts"). torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from selbench.assets.spec import ModelSpec, adapter_base_spec, parse_spec
from selbench.errors import InputError

log = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "bfloat16", "float16")
PADDING_SIDES = ("right", "left")


@dataclass(frozen=True)
class LoadOptions:
    """Options of `load_model`.

    Args:
        dtype: weights dtype; "auto" is float32 on CPU and bfloat16 on CUDA.
        device: "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:N" or "mps".
        trust_remote_code: run model code shipped with a hub repo; off unless the user asks.
        revision: hub revision (branch, tag, commit) when the spec carries no `@revision`.
        merge: for a LoRA adapter folder, merge the adapter into the base weights (faster generation).
        padding_side: tokenizer padding side; "right" for training and scoring, generation sets "left".
    """

    dtype: str = "auto"
    device: str = "auto"
    trust_remote_code: bool = False
    revision: str | None = None
    merge: bool = False
    padding_side: str = "right"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise InputError(f"{self.dtype!r} is not one of {', '.join(DTYPES)}", field="dtype")
        dev = self.device
        if not (dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit())):
            raise InputError(f"{dev!r} is not one of auto, cpu, cuda, cuda:N, mps", field="device")
        if self.padding_side not in PADDING_SIDES:
            raise InputError(
                f"{self.padding_side!r} is not one of {', '.join(PADDING_SIDES)}", field="padding_side"
            )
        for name in ("trust_remote_code", "merge"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{getattr(self, name)!r} is not a bool", field=name)

    @classmethod
    def from_kwargs(cls, options: dict[str, Any]) -> LoadOptions:
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise InputError(
                f"unknown load_model option(s) {', '.join(unknown)} (allowed: {', '.join(allowed)})",
                field=unknown[0],
            )
        options = dict(options)
        dtype = options.get("dtype")
        if dtype is not None and not isinstance(dtype, str):  # a torch.dtype
            options["dtype"] = str(dtype).removeprefix("torch.")
        return cls(**options)


def load_model(spec: str | os.PathLike, **options: Any) -> tuple[Any, Any]:
    """Load the causal LM and tokenizer that `spec` names, in eval mode.

    Args:
        spec: a packaged model asset (`smollm2-135m-instruct`, `gemma3-270m`; converted from GGUF once,
            then loaded from the cache), a local 🤗 model folder, a LoRA adapter folder (its base is
            loaded first, then the adapter with peft), or `hf://org/name[@revision]`.
        **options: see `LoadOptions` (dtype, device, trust_remote_code, revision, merge, padding_side).

    Returns:
        (model, tokenizer): a `PreTrainedModel` (a `PeftModel` for an unmerged adapter) in eval mode on the
        chosen device, and its tokenizer with a pad token (the eos token when the model has none) and the
        requested padding side.

    Raises:
        InputError: an unknown or malformed spec, a bad option, a missing asset (with its pip command), or
            a hub model that cannot be fetched (one line, no retries when offline).
    """
    import torch

    opts = LoadOptions.from_kwargs(options)
    resolved = parse_spec(spec, opts.revision)
    device = opts.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype_name = (
        opts.dtype if opts.dtype != "auto" else ("bfloat16" if device.startswith("cuda") else "float32")
    )
    model, tokenizer = _load(resolved, opts, getattr(torch, dtype_name))
    model.to(device)
    model.eval()
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise InputError(
                f"tokenizer of {resolved.text!r} has neither a pad nor an eos token", field="model"
            )
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = opts.padding_side
    generation_config = getattr(model, "generation_config", None)
    if generation_config is not None and generation_config.pad_token_id is None:
        generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def load_tokenizer(spec: str | os.PathLike, **options: Any) -> Any:
    """The tokenizer `load_model(spec, **options)` would return, without loading any weights.

    For work that only needs the tokenizer or its chat template before deciding whether to load the model
    (e.g. a training step key, to find a cached result first). An adapter folder's own tokenizer wins over
    its base's, as in `load_model`.
    """
    from transformers import AutoTokenizer

    opts = LoadOptions.from_kwargs(options)
    folder = Path(spec).expanduser() if isinstance(spec, (str, os.PathLike)) and str(spec) else None
    if folder is not None and folder.is_dir() and not (folder / "config.json").is_file() \
            and not (folder / "adapter_config.json").is_file() \
            and any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
        # A folder holding a tokenizer alone (no model): what `--tokenizer DIR` options point at.
        return AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=opts.trust_remote_code)
    resolved = parse_spec(spec, opts.revision)
    common = {"trust_remote_code": opts.trust_remote_code}
    if resolved.kind == "asset":
        from selbench.assets.convert import ensure_converted

        tokenizer = AutoTokenizer.from_pretrained(ensure_converted(resolved.name), local_files_only=True, **common)
    elif resolved.kind == "dir":
        tokenizer = AutoTokenizer.from_pretrained(resolved.path, local_files_only=True, **common)
    elif resolved.kind == "hub":
        offline = _hub_offline() or not hub_reachable()
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                resolved.name, revision=resolved.revision, local_files_only=offline, **common
            )
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot load the tokenizer of hf://{resolved.name}: {_first_line(exc)}",
                             field="model") from None
    elif (resolved.path / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(resolved.path, local_files_only=True, **common)
    else:
        tokenizer = load_tokenizer(adapter_base_spec(resolved.path).text, **options)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = opts.padding_side
    return tokenizer


def _load(spec: ModelSpec, opts: LoadOptions, dtype: Any) -> tuple[Any, Any]:
    if spec.kind == "asset":
        from selbench.assets.convert import ensure_converted

        model, tokenizer = _load_folder(ensure_converted(spec.name), opts, dtype)
        # PEFT records `name_or_path` as an adapter's base: the asset name resolves on any machine, this
        # machine's cache path would not. (Code that reloads files from `name_or_path`, e.g. TRL without a
        # processing_class, must be given the tokenizer instead.)
        model.name_or_path = spec.name
        model.config.name_or_path = spec.name
        return model, tokenizer
    if spec.kind == "dir":
        return _load_folder(spec.path, opts, dtype)
    if spec.kind == "hub":
        return _load_hub(spec, opts, dtype)
    return _load_adapter(spec, opts, dtype)


def _load_folder(path, opts: LoadOptions, dtype: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        path, trust_remote_code=opts.trust_remote_code, local_files_only=True
    )
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype, trust_remote_code=opts.trust_remote_code, local_files_only=True
    )
    return model, tokenizer


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub endpoint opens within `timeout` seconds.

    The hub client retries unreachable hosts for about a minute before giving up; probing once first
    lets an offline machine fail (or fall back to the local cache) at once.
    """
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _load_hub(spec: ModelSpec, opts: LoadOptions, dtype: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    offline = _hub_offline()
    unreachable = not offline and not hub_reachable()
    kwargs = dict(
        revision=spec.revision,
        trust_remote_code=opts.trust_remote_code,
        local_files_only=offline or unreachable,
    )
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.name, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(spec.name, dtype=dtype, **kwargs)
    except (OSError, ValueError) as exc:
        if offline:
            why = "HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache"
        elif unreachable:
            why = "the hub is unreachable from this machine and it is not in the local Hugging Face cache"
        else:
            why = _first_line(exc)
        raise InputError(
            f"cannot load hf://{spec.name}{'@' + spec.revision if spec.revision else ''} from the Hugging Face Hub: "
            f"{why} (offline, use a packaged asset such as smollm2-135m-instruct or a local folder)",
            field="model",
        ) from None
    return model, tokenizer


def _load_adapter(spec: ModelSpec, opts: LoadOptions, dtype: Any) -> tuple[Any, Any]:
    from peft import PeftModel
    from transformers import AutoTokenizer

    base_spec = adapter_base_spec(spec.path)
    if base_spec.kind == "adapter":
        raise InputError(
            f"adapter base {base_spec.text!r} is itself an adapter; merge it first",
            path=spec.path / "adapter_config.json",
            field="base_model_name_or_path",
        )
    log.info("loading adapter %s on base %s", spec.path, base_spec.text)
    base, tokenizer = _load(base_spec, opts, dtype)
    if (spec.path / "tokenizer_config.json").is_file():  # the adapter was saved with its own tokenizer
        tokenizer = AutoTokenizer.from_pretrained(
            spec.path, trust_remote_code=opts.trust_remote_code, local_files_only=True
        )
    model = PeftModel.from_pretrained(base, spec.path, is_trainable=False)
    if opts.merge:
        model = model.merge_and_unload()
    return model, tokenizer


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
