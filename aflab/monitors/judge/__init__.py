"""The LLM-judge scratchpad monitor ("judge"): four-criteria votes from a local or remote model.

prompt.py renders the untrusted scratchpad as quoted data and parses the strict verdict line;
backends.py (OpenAI-compatible, Anthropic) and local.py (Hugging Face) produce replies; cache.py
keeps them on disk; monitor.py votes, aggregates, tallies and reports failures.
"""

from aflab.monitors.judge.backends import (
    AnthropicBackend,
    Backend,
    BackendFailure,
    Completion,
    CompletionRequest,
    OpenAIBackend,
)
from aflab.monitors.judge.monitor import JudgeFailure, JudgeMonitor, JudgeResult
from aflab.monitors.judge.prompt import Verdict, neutralise, parse_verdict, render_messages

__all__ = [
    "AnthropicBackend",
    "Backend",
    "BackendFailure",
    "Completion",
    "CompletionRequest",
    "JudgeFailure",
    "JudgeMonitor",
    "JudgeResult",
    "OpenAIBackend",
    "Verdict",
    "neutralise",
    "parse_verdict",
    "render_messages",
]
