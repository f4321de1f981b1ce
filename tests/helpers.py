"""Small builders shared by tests: tiny random transformer models saved as a local hub mirror."""

from __future__ import annotations

from pathlib import Path


def save_tiny_gpt2(folder: Path, n_positions: int = 64):
    """A tiny random GPT-2 with the embedded tiny-gpt's tokenizer-compatible vocab, saved like the
    hub serves it (config.json + model.safetensors + tokenizer files)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    torch.manual_seed(0)
    vocab = {"<|endoftext|>": 0, **{chr(c): i + 1 for i, c in enumerate(range(33, 127))}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    fast = GPT2TokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                             eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    cfg = GPT2Config(vocab_size=len(vocab), n_positions=n_positions, n_embd=32, n_layer=2,
                     n_head=4, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(cfg).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    fast.save_pretrained(folder)
    return model


def save_tiny_bert(folder: Path):
    """A tiny random BERT encoder with a word-piece vocab, saved like the hub serves it."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "movie", "was", "good",
             "bad", "not", "it", "animal", "street", "tired", "wide"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    tok = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    cfg = BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
    model = BertModel(cfg).eval()
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return model


ROOT = Path(__file__).resolve().parents[1]


def app_test(page_file: str, timeout: float = 180):
    """An AppTest for a page given relative to the repository root (e.g. "pages/home.py")."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / page_file), default_timeout=timeout)


def tiny_llama(n_positions: int = 64, rope_theta: float = 10_000.0):
    """A tiny random Llama (RoPE, grouped-query attention: 4 query heads sharing 2 key/value heads,
    RMSNorm, SwiGLU) with a byte-level tokenizer whose <|endoftext|> (id 0) starts a text, as
    SmolLM2's does; returns (model in eval mode with eager attention, fast tokenizer)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    vocab = {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2,
             **{chr(c): i + 3 for i, c in enumerate(range(33, 127))}, "Ġ": 97}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>",
                                   eos_token="<|im_end|>", unk_token="<|endoftext|>")
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=n_positions, rope_theta=rope_theta,
                      bos_token_id=1, eos_token_id=2, tie_word_embeddings=True,
                      attn_implementation="eager")
    model = LlamaForCausalLM(cfg).eval()
    return model, fast


def tiny_llama_loaded(n_positions: int = 64):
    """`tiny_llama` wrapped as lmdemo's `Loaded`, with the registry fields smollm2 has."""
    import torch

    from lmdemo.core.models import Loaded
    from lmdemo.core.registry import ModelSpec

    model, tok = tiny_llama(n_positions)
    spec = ModelSpec("tiny-llama", "causal-lm", "embedded", "tiny llama", "hf-causal",
                     attentions=True, causal=True, start_token="<|endoftext|>")
    return Loaded(spec=spec, model=model, tokenizer=tok, device="cpu", dtype=torch.float32)
