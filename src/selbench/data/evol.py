"""WizardLM Evol-Instruct: `{instruction, output}` (the 70k release) or `{conversations: [{from, value}]}`
(the 196k V2 release, ShareGPT-style turns).

Xu et al., 2023 (WizardLM; nlpxucan/WizardLM). Conversation records are read exactly like ShareGPT's
(`selbench.data.sharegpt.convert_conversation`): first human turn -> instruction, next gpt turn -> output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from selbench.data.alpaca import convert_instruction_record
from selbench.data.base import Dropped, Loader, LoaderConfig
from selbench.data.schema import Example
from selbench.data.sharegpt import convert_conversation


def convert_evol(record: Mapping[str, Any], config: LoaderConfig) -> Example | Dropped:
    """One Evol-Instruct record (either release) -> Example."""
    if "conversations" in record:
        return convert_conversation(record, "evol")
    return convert_instruction_record(record, "evol")


LOADER = Loader(name="evol", convert=convert_evol)
