"""The OpenAI-compatible client every judge and rater uses (AlpacaEval, AlpaGasus, LLMBar-as-judge).

Layer: above `assets/` and the ground floor (store, cost, hashing, errors), below the stages that call
judges. `selbench serve`, the server side, lives with generation/ (it serves a generation backend).
"""

from selbench.llm.client import (
    EndpointUnreachable,
    LLMClient,
    LLMConfig,
    LLMRequestError,
    LLMStats,
    RequestRejected,
    ResponseParseError,
    request_key,
)

__all__ = [
    "EndpointUnreachable",
    "LLMClient",
    "LLMConfig",
    "LLMRequestError",
    "LLMStats",
    "RequestRejected",
    "ResponseParseError",
    "request_key",
]
