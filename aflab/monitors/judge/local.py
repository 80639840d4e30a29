"""A local Hugging Face causal LM as the judge (safetensors folder or a GGUF checkpoint).

Reproducibility matters more than speed here: each (prompt, sample index) gets its own seeded
torch.Generator, and sampling happens in a logits processor that draws one token per row from that
row's generator, after which greedy decoding simply takes it. So prompts can be batched (left
padded) and a vote still depends only on its own seed and its own logits, not on which other
prompts shared the batch (up to floating-point differences between batch shapes).
Remote code is never trusted. The blocking `generate` runs in a worker thread behind the async
interface. The model loads lazily, so a fully cached rerun never touches it.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aflab.errors import UserError
from aflab.monitors.judge.backends import (
    BACKENDS,
    Backend,
    BackendFailure,
    Completion,
    CompletionRequest,
    Messages,
    ResultCallback,
    env,
)


@BACKENDS.register("hf")
class HFBackend(Backend):
    """Transformers AutoModelForCausalLM + AutoTokenizer from a local path, chat template applied."""

    kind = "hf"

    def __init__(self, model: str, *, gguf_file: str | None = None, device: str | None = None, batch_size: int = 8):
        if not model:
            raise UserError("judge: the hf backend needs a local model path (AFLAB_JUDGE_MODEL or model=)")
        gguf_file, device = gguf_file or env("AFLAB_JUDGE_GGUF_FILE"), device or env("AFLAB_JUDGE_DEVICE")
        path = Path(model).expanduser()
        if path.is_file() and path.suffix == ".gguf" and gguf_file is None:
            path, gguf_file = path.parent, path.name  # a .gguf file path is accepted directly
        if not path.is_dir():
            raise UserError(f"judge: hf model path {model!r} is not a folder (a local checkpoint is required)")
        if gguf_file is not None and not (path / gguf_file).is_file():
            raise UserError(f"judge: GGUF file {gguf_file!r} not found in {path}")
        if batch_size < 1:
            raise UserError("judge: batch_size must be >= 1")
        self.path = path.resolve()
        self.model = str(self.path)
        self.gguf_file = gguf_file
        self.device = device
        self.batch_size = batch_size
        self.requests_sent = 0
        self.retries = 0
        self._model: Any = None
        self._tok: Any = None

    def __repr__(self) -> str:
        return f"HFBackend(model={self.model!r}, gguf_file={self.gguf_file!r})"

    @property
    def identity(self) -> str:
        """Path plus a fingerprint of the checkpoint's files, so a retrained model at the same path
        does not reuse the old model's cached verdicts."""
        h = hashlib.sha256()
        names = (
            [self.gguf_file]
            if self.gguf_file
            else sorted(
                p.name for p in self.path.iterdir() if p.suffix in {".json", ".safetensors", ".bin", ".model", ".jinja"}
            )
        )
        for name in names:
            f = self.path / name
            h.update(f"{name}:{f.stat().st_size}:".encode())
            if f.suffix in {".json", ".jinja"} and f.stat().st_size < 5_000_000:
                h.update(f.read_bytes())
        return f"{self.model}{'/' + self.gguf_file if self.gguf_file else ''}#{h.hexdigest()[:16]}"

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        kwargs: dict[str, Any] = {"trust_remote_code": False}
        if self.gguf_file:
            kwargs["gguf_file"] = self.gguf_file
        try:
            tok = AutoTokenizer.from_pretrained(str(self.path), **kwargs)
            model = AutoModelForCausalLM.from_pretrained(
                str(self.path), dtype=torch.float32 if device == "cpu" else "auto", **kwargs
            )
        except (OSError, ValueError, ImportError, KeyError) as e:  # missing files, unknown architecture
            raise UserError(f"judge: cannot load hf model from {self.path}: {' '.join(str(e).split())[:300]}") from None
        model.to(device).eval()
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self._model, self._tok, self.device = model, tok, device

    def _render(self, messages: Messages) -> str:
        """The chat template's text; templates that reject a system turn get it folded into the user's."""
        tok = self._tok
        if tok.chat_template is None:
            body = "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)
            return (tok.bos_token or "") + body + "\n\nAssistant:"
        try:
            return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:  # jinja TemplateError ("system role not supported") and the like
            system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
            rest = [dict(m) for m in messages if m["role"] != "system"]
            if system and rest:
                rest[0]["content"] = system + "\n\n" + rest[0]["content"]
            return tok.apply_chat_template(rest, tokenize=False, add_generation_prompt=True)

    def _generate(self, batch: Sequence[CompletionRequest]) -> list[Completion]:
        import torch
        from transformers import LogitsProcessor, LogitsProcessorList

        model, tok = self._model, self._tok
        enc = tok(
            [self._render(r.messages) for r in batch],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        ).to(self.device)
        temperature = batch[0].temperature
        gens = [torch.Generator(device=self.device).manual_seed(r.seed) for r in batch]

        class RowSampler(LogitsProcessor):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
                probs = torch.softmax(scores.float() / temperature, dim=-1)
                picks = torch.cat([torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(gens)])
                out = torch.full_like(scores, float("-inf"))
                out[torch.arange(len(gens), device=scores.device), picks] = 0.0
                return out

        cfg = copy.deepcopy(model.generation_config)
        cfg.do_sample, cfg.num_beams = False, 1
        cfg.temperature = cfg.top_p = cfg.top_k = None
        cfg.max_new_tokens, cfg.max_length = batch[0].max_tokens, None
        cfg.pad_token_id = tok.pad_token_id
        if cfg.eos_token_id is None:
            cfg.eos_token_id = tok.eos_token_id
        processors = LogitsProcessorList([RowSampler()] if temperature > 0 else [])
        with torch.no_grad():
            out = model.generate(**enc, generation_config=cfg, logits_processor=processors)
        new = out[:, enc["input_ids"].shape[1] :]
        eos = cfg.eos_token_id if isinstance(cfg.eos_token_id, list) else [cfg.eos_token_id]
        results = []
        for i, row in enumerate(new.tolist()):
            n = next((j + 1 for j, t in enumerate(row) if t in eos), len(row))
            results.append(
                Completion(tok.decode(row[:n], skip_special_tokens=True), int(enc["attention_mask"][i].sum()), n)
            )
        return results

    async def complete(self, messages: Messages, *, temperature: float, max_tokens: int, seed: int) -> Completion:
        res = (await self.complete_many([CompletionRequest(messages, temperature, max_tokens, seed)]))[0]
        if isinstance(res, BackendFailure):
            raise res
        return res

    async def complete_many(
        self, requests: Sequence[CompletionRequest], on_result: ResultCallback | None = None
    ) -> list[Completion | BackendFailure]:
        """Batches of `batch_size`, one at a time in a worker thread; a failing batch fails its votes."""
        if requests:
            await asyncio.to_thread(self._load)
        # A batch shares one temperature and token limit (always true for the monitor's requests).
        size = self.batch_size if len({(r.temperature, r.max_tokens) for r in requests}) <= 1 else 1
        results: list[Completion | BackendFailure] = []
        for start in range(0, len(requests), size):
            batch = list(requests[start : start + size])
            self.requests_sent += len(batch)
            try:
                done: list[Completion | BackendFailure] = list(await asyncio.to_thread(self._generate, batch))
            except (RuntimeError, ValueError, IndexError) as e:  # OOM, context overflow, bad template
                failure = BackendFailure(f"generation failed ({type(e).__name__}: {' '.join(str(e).split())[:200]})")
                done = [failure] * len(batch)
            for i, res in enumerate(done):
                if on_result is not None:
                    on_result(start + i, res)
            results.extend(done)
        return results
