"""GenerationConfig validation, named settings, the backend registry."""

from __future__ import annotations

import pytest

from selbench.generation.base import BACKENDS, GenerationConfig, truncate_at_stop


def test_study_setting_is_vllm_default_sampling():
    config = GenerationConfig.study(seed=3)
    assert (config.do_sample, config.temperature, config.top_p, config.max_new_tokens, config.seed) == \
        (True, 1.0, 1.0, 1024, 3)


def test_greedy_is_the_default():
    assert GenerationConfig().do_sample is False


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_new_tokens", 0), ("batch_size", 0), ("temperature", 0.0), ("top_p", 1.5), ("stop", "###"), ("stop", ("",))],
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"GenerationConfig.{field}="):
        GenerationConfig(**{field: value})


def test_round_trip_through_dict():
    config = GenerationConfig(max_new_tokens=7, stop=("a", "b"), do_sample=True, seed=2)
    assert GenerationConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown field"):
        GenerationConfig.from_dict({"max_tokens": 3})


def test_truncate_at_earliest_stop():
    assert truncate_at_stop("abc###def<|x|>", ("<|x|>", "###")) == "abc"
    assert truncate_at_stop("abc", ()) == "abc"


def test_backends_are_registered_lazily():
    assert {"hf", "vllm"} <= set(BACKENDS.names())
    assert BACKENDS.get("hf").__name__ == "HFBackend"


def test_vllm_backend_without_vllm_points_at_the_served_route():
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("vllm is installed")
    from selbench.errors import MissingDependencyError

    with pytest.raises(MissingDependencyError, match=r"vllm serve MODEL.*--backend openai"):
        BACKENDS.get("vllm")("some/model")


def test_benchmark_registry_names_every_benchmark():
    from selbench.evaluation.base import BENCHMARKS

    assert set(BENCHMARKS.names()) >= {"ifeval", "alpacaeval", "lc-winrate", "llmbar", "openllm"}
    assert BENCHMARKS.get("ifeval").__module__ == "selbench.evaluation.ifeval"
