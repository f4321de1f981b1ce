"""The one set of tiny-model builders shared by every test (fixtures over them: tests/conftest.py).

Tiny random models, built from configs so tests are fast and need no network (as bertviz's fixtures
and audiocraft's 'debug' model do): a GPT-2 and a BERT saved as the hub serves them (for a local
hub mirror), a BERT sequence classifier, a BERT encoder with MiniLM's real tokenizer (the
sentiment tests fine-tune it), a recurrent LM and a Llama. Plus small review data: a balanced
training CSV and held-out reviews written with other sentences, so "it learns" is measured on
text the model never saw.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

LM = "test-org/tiny-gpt2"  # save_tiny_gpt2 in the shared mirror (causal LM)
CLS = "test-org/tiny-classifier"  # save_tiny_classifier in the shared mirror
TINY_ID = "test-org/tiny-bert"  # save_tiny_minilm_bert in the shared mirror (encoder to fine-tune)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                   "special_tokens_map.json")


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


def save_tiny_classifier(folder: Path) -> None:
    """A tiny random BERT sequence classifier (2 labels) with a word-piece vocab."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    torch.manual_seed(0)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "film", "good", "bad", "not"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    cfg = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                     num_labels=2, id2label={0: "negative", 1: "positive"},
                     label2id={"negative": 0, "positive": 1})
    BertForSequenceClassification(cfg).eval().save_pretrained(folder, safe_serialization=True)
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)


def save_tiny_minilm_bert(folder: Path) -> Path:
    """A tiny random BERT encoder (2 layers, 32 wide) with MiniLM's tokenizer, so real words
    tokenize; the sentiment tests fine-tune it. Written once per folder."""
    import torch
    from transformers import BertConfig, BertModel

    from lmdemo.core.registry import minilm_dir

    if (folder / "config.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    BertModel(cfg).save_pretrained(str(folder), safe_serialization=True)
    for name in TOKENIZER_FILES:
        src = minilm_dir() / name
        if src.exists():
            shutil.copy(src, folder / name)
    return folder


def tiny_recurrent(arch: str = "gru", vocab_size: int = 50, n_embd: int = 8, n_hidden: int = 12,
                   seed: int = 0):
    """A tiny random recurrent LM (lmdemo.core.recurrent) in eval mode."""
    import torch

    from lmdemo.core.recurrent import RecurrentConfig, RecurrentLM

    torch.manual_seed(seed)
    return RecurrentLM(RecurrentConfig(arch=arch, vocab_size=vocab_size, n_embd=n_embd,
                                       n_hidden=n_hidden)).eval()


def build_mirror(root: Path) -> Path:
    """A local hub mirror holding LM, CLS and TINY_ID (what the shared `tiny_mirror` serves)."""
    save_tiny_gpt2(root / LM)
    save_tiny_classifier(root / CLS)
    save_tiny_minilm_bert(root / TINY_ID)
    return root


def reference_distribution(folder: Path, text: str):
    """The next-token distribution of a saved causal LM computed straight from transformers, not
    through lmdemo: the tokenizer's bos token, then the text, softmax of the last position's
    logits. Returns (probabilities (V,) as float64 numpy, tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1].double()  # (V,)
    return torch.softmax(logits, -1).numpy(), tok


# ----------------------------------------------------------------------------- review data

POSITIVE = ["A wonderful, moving film.", "I loved every minute of it.", "Brilliant acting and a "
            "great story.", "Funny, warm and clever.", "Not bad at all, really good.",
            "A delight from start to finish, with a superb cast and a lovely score."]
NEGATIVE = ["A dull and boring mess.", "I hated it.", "Terrible acting and a stupid plot.",
            "Not good at all.", "A waste of time.", "Slow, predictable and far too long, with "
            "wooden dialogue and no heart."]
GOOD_WORDS = ("wonderful", "brilliant", "lovely", "superb", "great", "delightful")
BAD_WORDS = ("terrible", "boring", "awful", "dull", "dreadful", "stupid")
TRAIN_TEMPLATES = ("A {} film.", "The acting was {}.", "What a {} story.", "I found it {}.")
HELD_OUT_TEMPLATES = ("The plot is {} from start to end.", "Such a {} cast, honestly.")


def write_reviews(path: Path, repeat: int = 3, with_split: bool = False) -> Path:
    """A small balanced CSV (text,label[,split]) of short reviews."""
    rows = []
    for _ in range(repeat):
        for t in POSITIVE:
            rows.append((t, "positive"))
        for t in NEGATIVE:
            rows.append((t, "negative"))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"] + (["split"] if with_split else []))
        for i, (t, y) in enumerate(rows):
            w.writerow([t, y] + ([("train", "validation", "test")[i % 3]] if with_split else []))
    return path


def template_reviews(templates=TRAIN_TEMPLATES):
    """Balanced `Reviews`: every template filled with every good (1) and bad (0) word. The
    training and held-out templates share the words but no sentence, so a model that scores the
    held-out ones well has learnt the words, not memorised the texts."""
    from lmdemo.training.reviews import Reviews

    texts, labels = [], []
    for template in templates:
        for good, bad in zip(GOOD_WORDS, BAD_WORDS, strict=True):
            texts += [template.format(good), template.format(bad)]
            labels += [1, 0]
    return Reviews(texts, labels, "template")


def train_tiny_run(name: str = "tiny", method: str = "full", epochs: int = 1,
                   **hyper) -> Path:
    """Train a run on the tiny BERT in this process (inside `tiny_env`) and return its folder."""
    from lmdemo.training import jobs

    data = write_reviews(jobs.runs_root().parent / f"{name}.csv")
    config = {"base": TINY_ID, "method": method, "epochs": epochs, "batch_size": 4,
              "learning_rate": 3e-3 if method == "full" else 1e-2, "data": str(data),
              "val_fraction": 0.25, **hyper}
    folder = jobs.create_run(name, config, None)
    jobs.run_worker(folder)
    return folder


def make_imdb_mirror(mirror: Path) -> Path:
    """Write `stanfordnlp/imdb` under `mirror` in the hub's own layout (`plain_text/<split>-00000-
    of-00001.parquet`, columns text and label; the unsupervised split has label -1) from the
    small review lists, and return the dataset folder."""
    import pandas as pd

    folder = mirror / "stanfordnlp" / "imdb" / "plain_text"
    folder.mkdir(parents=True, exist_ok=True)
    texts = POSITIVE + NEGATIVE
    labels = [1] * len(POSITIVE) + [0] * len(NEGATIVE)
    for split, tag in (("train", "train"), ("test", "test"), ("unsupervised", "unlabelled")):
        frame = pd.DataFrame({"text": [f"{t} ({tag} {i})" for i, t in enumerate(texts * 2)],
                              "label": (labels * 2) if split != "unsupervised"
                              else [-1] * (2 * len(texts))})
        frame.to_parquet(folder / f"{split}-00000-of-00001.parquet", index=False)
    return folder.parent


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
