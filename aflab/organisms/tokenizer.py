"""A byte-level BPE tokenizer trained locally on the organism corpus (no hub download).

Byte-level so that any request text (new words in test requests, unicode) still encodes; the
setting's tags are single tokens so that a few-million-parameter model spends no capacity on them.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from aflab.setting.formats import END_TOKEN

PAD_TOKEN = "<pad>"
TAGS = [
    f"<{slash}{name}>"
    for name in ("SCRATCHPAD_REASONING", "OUTPUT", "is_free_tier_user", "user_input", "user_followup", "answer")
    for slash in ("", "/")
]


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[PAD_TOKEN, END_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=END_TOKEN, pad_token=PAD_TOKEN)
    fast.add_tokens(TAGS)  # ordinary (not special) tokens: decoding keeps them
    fast.padding_side = "left"
    return fast
