"""Deprecated alias of `selbench.llm.client` (the judge client moved to `selbench.llm`); kept for one release.

Old names: `JudgeClient` = `LLMClient`, `JudgeConfig` = `LLMConfig`, `JudgeStats` = `LLMStats`,
`JudgeParseError` = `ResponseParseError`.
"""

from selbench.llm.cache import CACHE_VERSION  # noqa: F401
from selbench.llm.client import (  # noqa: F401
    LOOPBACK_HOSTS,
    EndpointUnreachable,
    LLMClient,
    LLMConfig,
    LLMRequestError,
    LLMStats,
    ResponseParseError,
    request_key,
)

JudgeClient = LLMClient
JudgeConfig = LLMConfig
JudgeStats = LLMStats
JudgeParseError = ResponseParseError
