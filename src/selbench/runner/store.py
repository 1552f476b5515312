"""Deprecated alias of `selbench.store` (the store moved to the ground floor); kept for one release."""

from selbench.store import *  # noqa: F401,F403
from selbench.store import (  # noqa: F401
    META_FILE,
    TRACKED_LIBRARIES,
    StepResult,
    StepStore,
    cache_root,
    library_versions,
    step_key,
    write_json_atomic,
    write_text_atomic,
)
