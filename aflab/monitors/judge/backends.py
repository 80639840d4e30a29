"""Where the judge's replies come from: one small async interface, two HTTP APIs.

Every backend answers `complete(messages, temperature=, max_tokens=, seed=) -> Completion`. A vote
that cannot be obtained raises `BackendFailure` (the monitor counts and reports it); a problem that
would fail every vote the same way (bad key, unknown model or URL) raises `UserError` at once, so a
misconfigured run stops instead of scoring everything 0.

The HTTP backends bound concurrency with a semaphore and retry rate limits (429, honouring
Retry-After), server errors (5xx), timeouts, dropped connections, truncated bodies and malformed
JSON with exponential backoff and seeded jitter, up to `max_retries` retries. API keys are read from
the environment only, kept in one private attribute, sent only in request headers, and scrubbed from
every message this module produces; they never reach logs, caches, exceptions or return values.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from aflab.errors import UserError
from aflab.plugins import Registry

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Completion:
    """One judge reply and what it cost."""

    text: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class CompletionRequest:
    messages: Messages
    temperature: float
    max_tokens: int
    seed: int


class BackendFailure(Exception):
    """This one vote could not be obtained (after retries); the message says why, key-free."""


ResultCallback = Callable[[int, "Completion | BackendFailure"], None]


class Backend(ABC):
    """A source of chat completions. Subclasses set `kind` and `model` and keep the counters.

    Stable interface, the same for the built-ins (registered below and in local.py) and for a class
    named in the `aflab.judge_backends` entry-point group: built as `cls(model, **options)`, where
    `options` are the judge's options that are not the judge's own (`{backend: NAME, model: ...,
    base_url: ...}`), checked against the constructor's signature when a config is loaded; it must
    implement `complete`. A backend reads its own environment fallbacks.
    """

    kind: ClassVar[str]
    max_temperature: ClassVar[float] = 2.0  # the highest sampling temperature the API accepts
    model: str
    requests_sent: int
    retries: int

    @property
    def identity(self) -> str:
        """What the cache keys on besides the prompt: the model as this backend names it."""
        return self.model

    async def start(self) -> None:  # noqa: B027 (optional hook, no-op by default)
        """Create per-event-loop resources (clients, semaphores); called before each run."""

    async def stop(self) -> None:  # noqa: B027 (optional hook, no-op by default)
        """Release what `start` created."""

    @abstractmethod
    async def complete(self, messages: Messages, *, temperature: float, max_tokens: int, seed: int) -> Completion:
        """One reply, or BackendFailure."""

    async def complete_many(
        self, requests: Sequence[CompletionRequest], on_result: ResultCallback | None = None
    ) -> list[Completion | BackendFailure]:
        """All replies, concurrently; `on_result(i, result)` fires as each one lands (for caching)."""
        results: list[Completion | BackendFailure] = [BackendFailure("not run")] * len(requests)

        async def one(i: int, req: CompletionRequest) -> None:
            try:
                res: Completion | BackendFailure = await self.complete(
                    req.messages, temperature=req.temperature, max_tokens=req.max_tokens, seed=req.seed
                )
            except BackendFailure as e:
                res = e
            results[i] = res
            if on_result is not None:
                on_result(i, res)

        tasks = [asyncio.ensure_future(one(i, r)) for i, r in enumerate(requests)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:  # a UserError (bad key...) or cancellation: stop the other requests too
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return results


BACKENDS: Registry[type[Backend]] = Registry(
    "judge backend",
    "aflab.judge_backends",
    Backend,
    builtins=("aflab.monitors.judge.backends", "aflab.monitors.judge.local"),
)


def env(name: str) -> str | None:
    """An environment variable, None when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def env_number(value: Any, name: str, kind: type[int] | type[float], default: float) -> Any:
    """A keyword option, else the environment variable `name`, else the default; bad values are UserErrors."""
    raw = value if value is not None else env(name)
    if raw is None:
        return kind(default)
    try:
        return kind(raw)
    except (TypeError, ValueError):
        source = name if value is None else name.removeprefix("AFLAB_JUDGE_").lower() + "="
        raise UserError(f"judge: {source} must be a number, got {raw!r}") from None


# ---------------------------------------------------------------------------------------- HTTP


def _strip_userinfo(url: str) -> str:
    """The URL without any user:password@ part, for messages and reprs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _retry_after(resp: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (retry-after-ms, Retry-After seconds or HTTP date)."""
    ms = resp.headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = resp.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Malformed(Exception):
    """A 200 response whose body is not the JSON shape the API promises (retried)."""


class HTTPBackend(Backend):
    """Shared machinery: client, semaphore, retry loop, key redaction."""

    default_base_url: ClassVar[str]
    base_url_env: ClassVar[str]  # the vendor's own variable, read after AFLAB_JUDGE_BASE_URL
    default_model: ClassVar[str] = ""
    key_env: ClassVar[str]
    key_required: ClassVar[bool] = True

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        concurrency: int | None = None,
        max_retries: int = 5,
        timeout: float = 120.0,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        retry_after_max: float = 300.0,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ):
        model = model or self.default_model
        if not model:
            raise UserError(f"judge: the {self.kind} backend needs a model name (AFLAB_JUDGE_MODEL or model=)")
        concurrency = env_number(concurrency, "AFLAB_JUDGE_CONCURRENCY", int, 8)
        if concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise UserError("judge: concurrency must be >= 1, max_retries >= 0 and timeout > 0")
        self.model = model
        url = base_url or env("AFLAB_JUDGE_BASE_URL") or env(self.base_url_env) or self.default_base_url
        self.base_url = url.rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise UserError(f"judge: base URL must start with http:// or https://, got {self.base_url!r}")
        self._key_env = api_key_env or self.key_env
        self._api_key = os.environ.get(self._key_env, "").strip()
        if not self._api_key and self.key_required and self.base_url == self.default_base_url:
            raise UserError(
                f"judge: the {self.kind} backend needs an API key in the environment variable {self._key_env}"
            )
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self._sleep = sleep or asyncio.sleep
        self.requests_sent = 0
        self.retries = 0
        self._client: httpx.AsyncClient | None = None
        self._sem: asyncio.Semaphore | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={_strip_userinfo(self.base_url)!r})"

    def redact(self, text: str) -> str:
        """Text with the API key (and URL credentials) removed; used on every outgoing message."""
        if self._api_key:
            text = text.replace(self._api_key, "[REDACTED]")
        return text.replace(self.base_url, _strip_userinfo(self.base_url))

    async def start(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        self._client = httpx.AsyncClient(timeout=self.timeout, limits=limits)
        self._sem = asyncio.Semaphore(self.concurrency)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        self._client = None
        self._sem = None

    @abstractmethod
    def _headers(self) -> dict[str, str]: ...

    def _delay(self, attempt: int, rng: random.Random, retry_after: float | None) -> float:
        """Server-requested wait when given, else exponential backoff with jitter in [50%, 100%]."""
        if retry_after is not None:
            return min(retry_after, self.retry_after_max)
        return min(self.backoff_max, self.backoff_base * 2**attempt) * rng.uniform(0.5, 1.0)

    async def _post(
        self, path: str, payload: dict[str, Any], seed: int, parse: Callable[[Any], Completion]
    ) -> Completion:
        """POST with retries; `parse` turns the JSON body into a Completion or raises _Malformed."""
        if self._client is None or self._sem is None:
            await self.start()
        assert self._client is not None and self._sem is not None
        url = self.base_url + path
        rng = random.Random(seed)  # deterministic jitter per request
        reason = "no attempt"
        async with self._sem:
            for attempt in range(self.max_retries + 1):
                if attempt:
                    self.retries += 1
                self.requests_sent += 1
                wait: float | None = None
                try:
                    resp = await self._client.post(url, json=payload, headers=self._headers())
                except httpx.TimeoutException:
                    reason = "timeout"
                except httpx.RequestError as e:  # refused, reset, dropped, truncated or undecodable body
                    reason = f"connection error ({type(e).__name__})"
                else:
                    code = resp.status_code
                    if code == 200:
                        try:
                            return parse(resp.json())
                        except (ValueError, _Malformed) as e:  # JSONDecodeError is a ValueError
                            reason = f"malformed response body ({type(e).__name__})"
                    elif code in (401, 403, 404):  # wrong key, model or URL: every vote would fail
                        hint = "the model name and base URL" if code == 404 else f"the key in {self._key_env}"
                        raise UserError(
                            self.redact(
                                f"judge: {self.kind} backend at {self.base_url} answered HTTP {code} for "
                                f"model {self.model!r} (check {hint}): {_snippet(resp)}"
                            )
                        )
                    elif code in (408, 409, 429) or code >= 500:
                        reason = f"HTTP {code}"
                        wait = _retry_after(resp)
                    else:  # 400, 413, 422...: this request is the problem; retrying cannot help
                        raise BackendFailure(self.redact(f"HTTP {code}: {_snippet(resp)}"))
                if attempt < self.max_retries:
                    await self._sleep(self._delay(attempt, rng, wait))
        raise BackendFailure(self.redact(f"{reason}, gave up after {self.max_retries + 1} attempts"))


def _snippet(resp: httpx.Response, limit: int = 200) -> str:
    try:
        text = resp.text
    except Exception:  # undecodable body: the status code says enough
        return "(unreadable body)"
    return " ".join(text.split())[:limit] or "(empty body)"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


@BACKENDS.register("openai")
class OpenAIBackend(HTTPBackend):
    """OpenAI-compatible `POST {base}/chat/completions` (OpenAI, vLLM, llama.cpp server, ...).

    The key (OPENAI_API_KEY unless api_key_env names another variable) is optional when a non-default
    base URL is given, since local servers usually need none.
    """

    kind = "openai"
    default_base_url = "https://api.openai.com/v1"
    base_url_env = "OPENAI_BASE_URL"
    default_model = "gpt-4o"
    key_env = "OPENAI_API_KEY"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    async def complete(self, messages: Messages, *, temperature: float, max_tokens: int, seed: int) -> Completion:
        payload = {
            "model": self.model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "seed": seed,
        }
        return await self._post("/chat/completions", payload, seed, _parse_openai)


def _parse_openai(body: Any) -> Completion:
    try:
        text = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as e:
        raise _Malformed("no choices[0].message.content") from e
    if not isinstance(text, str):
        raise _Malformed("content is not a string")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return Completion(text, _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")))


@BACKENDS.register("anthropic")
class AnthropicBackend(HTTPBackend):
    """Anthropic Messages API, `POST {base}/v1/messages`; key from ANTHROPIC_API_KEY.

    The API takes the system prompt as a separate field, has no seed parameter, and accepts
    temperatures up to 1 only (the monitor checks this when it is built).
    """

    kind = "anthropic"
    max_temperature = 1.0
    default_base_url = "https://api.anthropic.com"
    base_url_env = "ANTHROPIC_BASE_URL"
    key_env = "ANTHROPIC_API_KEY"
    version = "2023-06-01"

    def _headers(self) -> dict[str, str]:
        headers = {"anthropic-version": self.version}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    async def complete(self, messages: Messages, *, temperature: float, max_tokens: int, seed: int) -> Completion:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        chat = [m for m in messages if m["role"] != "system"]
        payload: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "messages": chat,
        }
        if system:
            payload["system"] = system
        return await self._post("/v1/messages", payload, seed, _parse_anthropic)


def _parse_anthropic(body: Any) -> Completion:
    try:
        blocks = body["content"]
        text = "".join(b["text"] for b in blocks if b.get("type") == "text")
    except (KeyError, TypeError, AttributeError) as e:
        raise _Malformed("no content[].text") from e
    if not isinstance(text, str):
        raise _Malformed("text is not a string")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return Completion(text, _int(usage.get("input_tokens")), _int(usage.get("output_tokens")))
