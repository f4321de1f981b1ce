#!/usr/bin/env bash
# Rebuild the corpus and tokenizer, then train the four embedded LMs on CPU: tiny-gpt in one process
# and the three recurrent models one after another in a second, one torch thread each (on a shared
# 2-core machine this beat one process with 2 threads). Each run anneals its learning rate to fit
# its --max-minutes budget, so the step count depends on the machine's speed.
# Needs: apt-get install wordnet-base fortunes fortunes-min gnome-user-docs
set -euo pipefail
cd "$(dirname "$0")/../../.."
A=lmdemo/assets/lm
[ "${SKIP_CORPUS:-0}" = 1 ] || python -m lmdemo build-corpus --json > /dev/null
python -m lmdemo train-lm --arch gpt --threads 1 --batch-size 16 --warmup 50 --steps 3000 --max-minutes 58 --out $A/tiny-gpt --json &
(
  python -m lmdemo train-lm --arch lstm --threads 1 --batch-size 16 --block-size 64 --warmup 50 --steps 5000 --max-minutes 24 --out $A/tiny-lstm --json
  python -m lmdemo train-lm --arch gru  --threads 1 --batch-size 16 --block-size 64 --warmup 50 --steps 5000 --max-minutes 19 --out $A/tiny-gru  --json
  python -m lmdemo train-lm --arch rnn  --threads 1 --batch-size 16 --block-size 64 --warmup 50 --steps 5000 --max-minutes 18 --out $A/tiny-rnn  --json
) &
wait
