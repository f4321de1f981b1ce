"""How long a fine-tuning run takes: an estimate before it starts, and the time left while it runs.

Both count tokens as well as steps: batches are grouped by length, so one step may carry ten times
the tokens of the next, and a step's time grows with its tokens on top of a fixed cost.

Before a run (`estimate`): the tokens it will train on (each review cut at the max length, times
the epochs) and evaluate on (the validation reviews, once per epoch), divided by rates: the ones
measured by the newest finished run on this server with the same base encoder, method and device,
else typical rates measured for that model on that kind of device (KNOWN_RATES), else none (the
first run measures them). Training time is read both per token and per step (the optimizer's
update costs the same for a short batch as for a long one) and the two are averaged. Plus the
start of the job (process, imports, loading the model). It is an estimate: other work on the
machine, another batch size or very different review lengths change it.

While a run trains (`RemainingTime`): a step's time is a fixed cost plus a cost per token, both
fitted (least squares) to every step of this run so far, the first few left out (they carry
one-time warm-up); the time left is the steps and tokens still to come at those costs, plus the
evaluations still to come (timed once one has run). The value shown counts down between measurements, follows a new one
with a time constant of `smoothing_s` seconds and stays within `band` of it, so a batch slowed by
other work on the machine moves it a little, not from 50 s to 166 s and back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

STARTUP_S = 10.0  # starting a job: the process, imports and loading the base model (CPU, typical)
WARMUP_STEPS = 3  # a run's first steps, left out of its rate (allocation, kernel selection...)
MIN_STEPS = 2  # steps timed after those before the run's own costs are trusted
EVAL_SPEEDUP = 2.0  # evaluating a token (forward only) is about this much faster than training it


@dataclass(frozen=True)
class Rates:
    """How fast a base encoder trains and evaluates with a method on a kind of device."""

    tokens_per_s: float  # training tokens per second
    steps_per_s: float  # optimisation steps per second (the per-step cost: optimizer, overhead)
    eval_tokens_per_s: float  # validation tokens per second (forward passes only)


# Typical rates of embedded bases with the default settings (batch 16, max length 256) on the
# shipped reviews, measured on a 2-core CPU server: (base, method, device kind) -> Rates.
KNOWN_RATES = {("minilm", "lora", "cpu"): Rates(1500.0, 3.5, 2500.0),
               ("minilm", "full", "cpu"): Rates(250.0, 0.7, 2500.0)}


def device_kind(device: str) -> str:
    """"cuda", "mps" or "cpu" of a torch device string such as "cuda:0"."""
    return str(device or "cpu").split(":")[0]


@dataclass(frozen=True)
class Estimate:
    """How long a run would take, and what that is worked out from."""

    seconds: float | None  # start to finish; None when no rate is known for this base and device
    reviews: int  # training reviews
    epochs: int
    train_tokens: int  # tokens of one epoch (each review cut at the max length)
    steps: int  # optimisation steps of one epoch
    val_tokens: int  # tokens of one evaluation pass
    rates: Rates | None  # what the time is worked out with
    source: str  # "run:<name>" (measured by that run here), "typical" or "" (no rate)

    def to_json(self) -> dict:
        return {"seconds": self.seconds, "reviews": self.reviews, "epochs": self.epochs,
                "train_tokens": self.train_tokens, "steps": self.steps,
                "val_tokens": self.val_tokens, "rate_source": self.source,
                "rates": None if self.rates is None else asdict(self.rates)}


def run_seconds(train_tokens: int, steps: int, val_tokens: int, epochs: int,
                rates: Rates) -> float:
    """Start, training and evaluation time of a run: each epoch's training time is the mean of
    its tokens at the token rate and its steps at the step rate (as RemainingTime reads it)."""
    train = (train_tokens / rates.tokens_per_s + steps / rates.steps_per_s) / 2
    return STARTUP_S + epochs * (train + val_tokens / rates.eval_tokens_per_s)


def measured_rates(base: str, method: str, device: str, runs) -> tuple[Rates, str] | None:
    """The rates of the newest finished run among `runs` (lmdemo.training.jobs.RunInfo, newest
    first) with this base, method and device kind, and "run:<its name>"."""
    for run in runs:
        s, c = run.status, run.config
        try:
            rates = Rates(float(s["train_tokens_per_s"]),
                          float(s["steps"]) / float(s["train_seconds"]),
                          float(s["eval_tokens_per_s"]))
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            continue  # an older run, or one without validation data
        if (run.state == "done" and c.get("base") == base and c.get("method") == method
                and device_kind(s.get("device", "")) == device_kind(device)
                and min(rates.tokens_per_s, rates.steps_per_s, rates.eval_tokens_per_s) > 0):
            return rates, f"run:{run.name}"
    return None


def estimate(base: str, method: str, device: str, epochs: int, batch_size: int,
             lengths: list[int], val_lengths: list[int], runs=()) -> Estimate:
    """The duration of a run whose training reviews are `lengths` tokens long (already cut at the
    max length) and whose validation reviews are `val_lengths`, on `device`."""
    found = measured_rates(base, method, device, runs)
    if found is None and (base, method, device_kind(device)) in KNOWN_RATES:
        found = (KNOWN_RATES[(base, method, device_kind(device))], "typical")
    rates, source = found or (None, "")
    train, val = int(sum(lengths)), int(sum(val_lengths))
    steps = math.ceil(len(lengths) / max(1, int(batch_size)))
    seconds = run_seconds(train, steps, val, int(epochs), rates) if rates else None
    return Estimate(seconds, len(lengths), int(epochs), train, steps, val, rates, source)


@dataclass
class RemainingTime:
    """The seconds left of a training loop (see the module docstring): feed it every step's
    tokens and seconds (`trained`) and every evaluation's seconds (`evaluated`)."""

    train_tokens: int  # tokens of every epoch together
    total_steps: int  # optimisation steps of every epoch together
    val_tokens: int = 0  # tokens of one evaluation pass
    evaluations: int = 0  # evaluation passes in the run (one per epoch with validation data)
    band: float = 0.2  # the value shown stays within this share of the newest measurement
    smoothing_s: float = 5.0  # ... and follows it with this time constant inside that band
    done: int = 0  # tokens trained
    steps: int = 0
    sums: tuple = (0, 0.0, 0.0, 0.0, 0.0)  # steps after the warm-up: n, Σtokens, Σs, Σtokens², Σtokens·s
    evals_done: int = 0
    eval_s: float = 0.0  # seconds the evaluations so far took
    shown: float | None = None  # the last value given
    shown_at: float = 0.0  # ... and the clock then (seconds)

    def step_cost(self) -> tuple[float, float] | None:
        """(seconds per step, seconds per token): the least-squares line through every step
        after the warm-up (seconds = a + b × tokens), neither part below zero; None until
        MIN_STEPS steps have been timed."""
        n, sx, sy, sxx, sxy = self.sums
        if n < MIN_STEPS or sy <= 0 or sx <= 0:
            return None
        spread = n * sxx - sx * sx
        b = (n * sxy - sx * sy) / spread if spread > 1e-9 * n * sxx else sy / sx
        a = (sy - b * sx) / n
        if b < 0:  # time does not grow with tokens here: a cost per step only
            a, b = sy / n, 0.0
        elif a < 0:  # no fixed cost per step: a cost per token only
            a, b = 0.0, sy / sx
        return a, b

    def raw(self) -> float | None:
        """The seconds left at the costs measured so far, unsmoothed: the steps left at the cost
        per step plus the tokens left at the cost per token, plus the evaluations left (before
        one is timed: the validation tokens at this run's seconds per token, EVAL_SPEEDUP times
        faster). None until a cost is known."""
        cost = self.step_cost()
        if cost is None:
            return None
        a, b = cost
        train = (a * max(0, self.total_steps - self.steps)
                 + b * max(0, self.train_tokens - self.done))
        if self.evals_done:
            per_eval = self.eval_s / self.evals_done
        else:
            per_eval = self.val_tokens * self.sums[2] / self.sums[1] / EVAL_SPEEDUP
        return train + max(0, self.evaluations - self.evals_done) * per_eval

    def trained(self, tokens: int, seconds: float, now: float) -> float | None:
        """Record one training step; the seconds left (smoothed), None until a cost is known."""
        self.steps += 1
        self.done += int(tokens)
        if self.steps > WARMUP_STEPS:  # the first steps carry one-time warm-up
            x, y = float(tokens), float(seconds)
            n, sx, sy, sxx, sxy = self.sums
            self.sums = (n + 1, sx + x, sy + y, sxx + x * x, sxy + x * y)
        return self.left(now)

    def evaluated(self, seconds: float, now: float) -> float | None:
        """Record one evaluation pass; the seconds left (smoothed)."""
        self.evals_done += 1
        self.eval_s += float(seconds)
        return self.left(now)

    def left(self, now: float) -> float | None:
        """The smoothed seconds left at clock time `now` (seconds, any origin)."""
        raw = self.raw()
        if raw is None:
            return None
        finished = self.done >= self.train_tokens and self.evals_done >= self.evaluations
        if self.shown is None or finished:
            self.shown = raw  # the first value, and the end, are the measurement itself
        else:
            dt = max(0.0, now - self.shown_at)
            counted_down = max(0.0, self.shown - dt)
            weight = 1.0 - math.exp(-dt / self.smoothing_s) if self.smoothing_s > 0 else 1.0
            shown = counted_down + weight * (raw - counted_down)
            self.shown = min(max(shown, raw * (1 - self.band)), raw * (1 + self.band))
        self.shown_at = now
        return self.shown
