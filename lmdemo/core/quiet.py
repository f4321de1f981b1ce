"""Known library noise, filtered at its source in one place, so server and job logs show what
matters (errors, our own warnings) and nothing that merely repeats on every run.

`install()` (idempotent; every entry point calls it: the Gradio server, the Sentiment page, a
training job's supervisor and worker) turns off, and only these:
- the tokenizers library's fork warning ("The current process just got forked, after parallelism
  has already been used"), printed when a server that has tokenized starts a training job: by
  setting TOKENIZERS_PARALLELISM (unless the operator set it) before any fork;
- transformers' advisory warnings (TRANSFORMERS_NO_ADVISORY_WARNINGS) and its log records that
  every fine-tuning run triggers by design: the load report / "Some weights of ... were not
  initialized ... You should probably TRAIN this model" (a new classification head is exactly
  what fine-tuning trains; the report also names the server's folders) and "Token indices
  sequence length is longer than the specified maximum" (lmdemo counts a review's tokens before
  cutting it, and says so itself) — a `logging.Filter` on transformers' handlers;
- FutureWarning and DeprecationWarning raised inside the model libraries (transformers, torch,
  accelerate, peft, datasets, huggingface_hub, tokenizers, gradio): notices for the libraries'
  maintainers, not for a visitor or an operator.
Errors, exceptions and every other warning still reach the logs.
"""

from __future__ import annotations

import logging
import os
import re
import warnings

LIBRARIES = ("transformers", "torch", "accelerate", "peft", "datasets", "huggingface_hub",
             "tokenizers", "gradio", "gradio_client")  # their FutureWarnings are not for us
NOISY_RECORDS = re.compile(  # transformers' log records that every fine-tuning run triggers
    r"LOAD REPORT|Some weights of .* (?:were not initialized|were not used)|"
    r"You should probably TRAIN this model|"
    r"Token indices sequence length is longer than the specified maximum sequence length")
ENVIRONMENT = {"TOKENIZERS_PARALLELISM": "false",  # no fork warning (set before any fork)
               "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}


class NoiseFilter(logging.Filter):
    """Drops the log records matching NOISY_RECORDS; lets every other record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted is not ours to hide
            return True
        return not NOISY_RECORDS.search(message)


def _filter_handlers(logger: logging.Logger) -> None:
    for target in (logger, *logger.handlers):
        if not any(isinstance(f, NoiseFilter) for f in target.filters):
            target.addFilter(NoiseFilter())


def install() -> None:
    """Filter the known noise (see the module docstring) in this process; safe to call often."""
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    for library in LIBRARIES:  # filterwarnings replaces an identical filter: no duplicates
        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category, module=rf"{library}(\.|$)")
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a dependency
        return
    _filter_handlers(hf_logging.get_logger())  # the library's root logger and its handler
