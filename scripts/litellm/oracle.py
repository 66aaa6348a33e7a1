#!/usr/bin/env python3
"""LiteLLM as the oracle: what LiteLLM itself charges, per model of its bundled price file.

    python oracle.py OUT.jsonl [--modes chat,responses,completion] [--no-aliases]

Run it with the pinned LiteLLM (scripts/litellm/setup.sh makes the venv and runs this). Fully
offline: the price table is the one shipped inside the package
(litellm/model_prices_and_context_window_backup.json), forced by LITELLM_LOCAL_MODEL_COST_MAP.

For every entry of the file whose `mode` is one of --modes (default chat, responses and
completion) and a grid of usages, it calls LiteLLM's own `litellm.cost_per_token(...)` -- the
function `completion_cost()` calls for every chat/responses call, i.e. what the proxy bills --
and writes one JSON object per line to OUT.jsonl:

  line 1   {"price_file": <absolute path of the bundled json>, "litellm_version": "1.106.2",
            "generated_by": "scripts/litellm/oracle.py", "cases": <number of case lines>,
            "python": "3.11.7", "default_timestamp": "2025-01-15T08:00:00Z"}
  then     {"case": "plain", "model": <key in the file>, "mode": "chat",
            "litellm_provider": <the entry's litellm_provider>,
            "custom_llm_provider": <provider passed to LiteLLM, see routing_provider()>,
            "usage": {"input_tokens", "output_tokens", "cache_read_tokens",
                      "cache_write_5m_tokens", "cache_write_1h_tokens", "reasoning_tokens"},
            ["service_tier": "priority" | "flex" | "balanced" | "ultrafast" | "batch",]
            ["call_type": "retrieve_batch",]            (batch cases only)
            ["timestamp": "2025-01-15T10:00:00Z",]       (models with off_peak_pricing only)
            ["request_model": <name as requested>,]      (alias cases only)
            "resolved_key": <the file key LiteLLM priced from, or null>,
            "prompt_cost": repr(float), "completion_cost": repr(float)
            | "error": <first line of LiteLLM's exception>}

Usage follows the GenAI convention: input_tokens counts ALL prompt tokens (uncached + cache
reads + cache writes), output_tokens counts all completion tokens (visible + reasoning). It is
handed to LiteLLM in LiteLLM's own internal shape, the one its provider transformations build
(e.g. AnthropicConfig.calculate_usage): Usage.prompt_tokens = input_tokens (cache reads and
writes included), prompt_tokens_details.cached_tokens = cache reads,
prompt_tokens_details.cache_creation_tokens = all cache writes, and, when there are 1-hour
writes, prompt_tokens_details.cache_creation_token_details = {ephemeral_5m_input_tokens,
ephemeral_1h_input_tokens}; completion_tokens = output_tokens and
completion_tokens_details.reasoning_tokens = reasoning tokens.

Every call is priced at a pinned moment (litellm._internal_context.pinned_billing_time): the
case's `timestamp` for models with off_peak_pricing, else DEFAULT_TIMESTAMP. LiteLLM's public
functions take no time argument; outside a pinned block they read the wall clock.

Costs are repr() of LiteLLM's float results: compare them with an exact decimal after rounding
both to 15 significant digits (the float error is ~1e-16 relative; on this grid the rounded
figures agree with an exact Decimal recomputation from LiteLLM's own rates in every case checked).
"""

from __future__ import annotations

import os

# Offline, before litellm is imported: the bundled tables only, never a fetch.
for _flag in (
    "LITELLM_LOCAL_MODEL_COST_MAP",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS",
    "LITELLM_LOCAL_BLOG_POSTS",
    "LITELLM_LOCAL_POLICY_TEMPLATES",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS",
):
    os.environ[_flag] = "True"
os.environ.setdefault("LITELLM_LOG", "CRITICAL")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from importlib.metadata import version as dist_version  # noqa: E402

import litellm  # noqa: E402
import litellm.utils as litellm_utils  # noqa: E402
from litellm._internal_context import pinned_billing_time  # noqa: E402
from litellm.types.utils import (  # noqa: E402
    CacheCreationTokenDetails,
    CompletionTokensDetailsWrapper,
    LlmProvidersSet,
    PromptTokensDetailsWrapper,
    Usage,
)

litellm.suppress_debug_info = True
for _name in ("LiteLLM", "LiteLLM Proxy", "LiteLLM Router", "litellm"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)

PRICE_FILE = os.path.join(os.path.dirname(litellm.__file__), "model_prices_and_context_window_backup.json")

# A Wednesday, 08:00 UTC: peak hours for every off_peak_pricing block in the file.
DEFAULT_TIMESTAMP = datetime(2025, 1, 15, 8, 0, 0, tzinfo=timezone.utc)

# Moments for models with off_peak_pricing (all UTC). DeepSeek's block (weekdays Mon-Fri:
# 00:00-01:00, 04:00-06:00, 10:00-24:00 off-peak; Sat and Sun all day), window start
# inclusive, end exclusive.
OFF_PEAK_TIMESTAMPS = (
    datetime(2025, 1, 15, 0, 0, 0, tzinfo=timezone.utc),  # Wed 00:00:00 start of a window
    datetime(2025, 1, 15, 0, 59, 59, tzinfo=timezone.utc),  # Wed last second of it
    datetime(2025, 1, 15, 1, 0, 0, tzinfo=timezone.utc),  # Wed end (exclusive): peak
    datetime(2025, 1, 15, 3, 59, 59, tzinfo=timezone.utc),  # Wed peak
    datetime(2025, 1, 15, 4, 0, 0, tzinfo=timezone.utc),  # Wed off-peak
    datetime(2025, 1, 15, 5, 59, 59, tzinfo=timezone.utc),  # Wed off-peak
    datetime(2025, 1, 15, 6, 0, 0, tzinfo=timezone.utc),  # Wed peak
    datetime(2025, 1, 15, 8, 0, 0, tzinfo=timezone.utc),  # Wed peak (the default)
    datetime(2025, 1, 15, 9, 59, 59, tzinfo=timezone.utc),  # Wed peak
    datetime(2025, 1, 15, 10, 0, 0, tzinfo=timezone.utc),  # Wed off-peak (wraps to 24:00)
    datetime(2025, 1, 15, 23, 59, 59, tzinfo=timezone.utc),  # Wed off-peak
    datetime(2025, 1, 17, 16, 30, 0, tzinfo=timezone.utc),  # Fri UTC, Sat in Asia/Shanghai
    datetime(2025, 1, 18, 8, 0, 0, tzinfo=timezone.utc),  # Sat: weekend, all day
    datetime(2025, 1, 19, 2, 0, 0, tzinfo=timezone.utc),  # Sun: weekend, all day
    datetime(2025, 1, 19, 20, 0, 0, tzinfo=timezone.utc),  # Sun UTC, Mon in Asia/Shanghai
    datetime(2025, 1, 20, 2, 0, 0, tzinfo=timezone.utc),  # Mon peak
)

# LiteLLM's service tiers that select `<key>_<suffix>` prices (litellm/types/utils.py
# ServiceTier, llm_cost_calc/utils.py _SERVICE_TIER_TO_COST_KEY_SUFFIX; "fast" is an alias of
# "priority", "auto" selects nothing).
SERVICE_TIERS = ("flex", "balanced", "priority", "ultrafast")

THRESHOLD_KEY = re.compile(r"_above_(\d+)(k?)_tokens")


@dataclass(frozen=True)
class Tokens:
    input: int
    output: int
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    reasoning: int = 0

    def as_json(self) -> dict:
        return {
            "input_tokens": self.input,
            "output_tokens": self.output,
            "cache_read_tokens": self.cache_read,
            "cache_write_5m_tokens": self.cache_write_5m,
            "cache_write_1h_tokens": self.cache_write_1h,
            "reasoning_tokens": self.reasoning,
        }

    def litellm_usage(self) -> Usage:
        """The Usage LiteLLM's own transformations build for this call (see module doc)."""
        cache_write = self.cache_write_5m + self.cache_write_1h
        prompt_details = None
        if self.cache_read or cache_write:
            prompt_details = PromptTokensDetailsWrapper(
                cached_tokens=self.cache_read or None,
                cache_creation_tokens=cache_write or None,
                cache_creation_token_details=(
                    CacheCreationTokenDetails(
                        ephemeral_5m_input_tokens=self.cache_write_5m,
                        ephemeral_1h_input_tokens=self.cache_write_1h,
                    )
                    if self.cache_write_1h
                    else None
                ),
            )
        completion_details = (
            CompletionTokensDetailsWrapper(reasoning_tokens=self.reasoning) if self.reasoning else None
        )
        return Usage(
            prompt_tokens=self.input,
            completion_tokens=self.output,
            total_tokens=self.input + self.output,
            prompt_tokens_details=prompt_details,
            completion_tokens_details=completion_details,
        )


BASE_CASES = (
    ("plain", Tokens(1000, 500)),
    ("cache_read", Tokens(10000, 500, cache_read=8000)),
    ("cache_write_5m", Tokens(10000, 500, cache_write_5m=6000)),
    ("cache_write_1h", Tokens(10000, 500, cache_write_1h=6000)),
    ("reasoning", Tokens(2000, 3000, reasoning=2000)),
    ("mixed", Tokens(20000, 1500, cache_read=8000, cache_write_5m=3000, cache_write_1h=2000, reasoning=700)),
)
# The subset run again under each service tier, batch, and each off-peak moment.
TIER_CASES = ("plain", "cache_read", "cache_write_5m", "cache_write_1h", "mixed")


def boundary_cases(label: str, n: int) -> list[tuple[str, Tokens]]:
    """A rule whose boundary is n prompt tokens: at it and one token past it, with the prompt
    plain and mixed (half of it cache reads, 1000 5-minute and 1000 1-hour cache writes, so the
    uncached part alone is far below n: shows which count is compared)."""
    cases = []
    for where, count in (("at", n), ("past", n + 1)):
        cases.append((f"{label}_{where}", Tokens(count, 1000)))
        if count > 4000:
            cases.append(
                (
                    f"{label}_{where}_mixed",
                    Tokens(
                        count,
                        1000,
                        cache_read=count // 2,
                        cache_write_5m=1000,
                        cache_write_1h=1000,
                        reasoning=100,
                    ),
                )
            )
    return cases


def thresholds(entry: dict) -> list[int]:
    """Every N of an `*_above_<N>[k]_tokens*` field of the entry, in tokens."""
    found = set()
    for key in entry:
        for digits, k in THRESHOLD_KEY.findall(key):
            found.add(int(digits) * (1000 if k else 1))
    return sorted(found)


def tier_boundaries(entry: dict) -> list[int]:
    """Every start and end of a `tiered_pricing` band (range [start, end])."""
    tiers = entry.get("tiered_pricing")
    found = set()
    if isinstance(tiers, list):
        for tier in tiers:
            rng = tier.get("range") if isinstance(tier, dict) else None
            if isinstance(rng, list) and len(rng) == 2:
                for bound in rng:
                    if isinstance(bound, (int, float)) and bound > 0:
                        found.add(int(bound))
    return sorted(found)


def service_tiers(entry: dict) -> list[str]:
    return [t for t in SERVICE_TIERS if any(k.endswith(f"_{t}") and "cost" in k for k in entry)]


def has_batch_prices(entry: dict) -> bool:
    return any(k.endswith("_batches") and "cost" in k for k in entry)


def routing_provider(entry: dict) -> str:
    """The custom_llm_provider LiteLLM routes a call to this entry with. The file labels some
    entries with a pricing family rather than a provider ("vertex_ai-anthropic_models",
    "bedrock_converse"); a call to them runs as "vertex_ai" / "bedrock"."""
    provider = entry.get("litellm_provider") or ""
    if provider in LlmProvidersSet:
        return provider
    if provider.startswith("vertex_ai"):
        return "vertex_ai"
    if provider.startswith("bedrock"):
        return "bedrock"
    return provider


class KeyRecorder:
    """Records which file key LiteLLM's model-info lookups resolve to, by wrapping
    litellm.utils.get_model_info_helper (called, by its global name, by get_model_info and
    cached_get_model_info_helper alike)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._original = litellm_utils.get_model_info_helper

        def recording(*args, **kwargs):
            info = self._original(*args, **kwargs)
            key = info.get("key") if isinstance(info, dict) else None
            if isinstance(key, str):
                self.keys.append(key)
            return info

        litellm_utils.get_model_info_helper = recording

    @staticmethod
    def clear_caches() -> None:
        litellm_utils._cached_get_model_info.cache_clear()
        litellm_utils.cached_get_model_info_helper.cache_clear()

    def start(self) -> None:
        self.clear_caches()
        self.keys = []

    def resolved(self) -> str | None:
        return self.keys[-1] if self.keys else None


def price(model: str, provider: str, tokens: Tokens, service_tier: str | None, moment: datetime) -> dict:
    usage = tokens.litellm_usage()
    try:
        with pinned_billing_time(moment):
            if service_tier == "batch":
                prompt_cost, completion_cost = litellm.cost_per_token(
                    model=model,
                    custom_llm_provider=provider,
                    usage_object=usage,
                    call_type="retrieve_batch",
                )
            else:
                prompt_cost, completion_cost = litellm.cost_per_token(
                    model=model,
                    custom_llm_provider=provider,
                    usage_object=usage,
                    service_tier=service_tier,
                )
    except Exception as e:  # noqa: BLE001 - the oracle records what LiteLLM raised
        message = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return {"error": f"{type(e).__name__}: {message}"[:300]}
    return {"prompt_cost": repr(float(prompt_cost)), "completion_cost": repr(float(completion_cost))}


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def model_cases(entry: dict) -> list[tuple[str, Tokens, str | None, datetime | None]]:
    """(case name, tokens, service tier, timestamp) for one entry."""
    off_peak = isinstance(entry.get("off_peak_pricing"), dict)
    base = list(BASE_CASES)
    for n in thresholds(entry):
        base += boundary_cases(f"threshold_{n}", n)
    bands = tier_boundaries(entry)
    if bands:
        base.append(("band_first", Tokens(1, 10)))
        for b in bands:
            base += boundary_cases(f"band_{b}", b)
    by_name = dict(BASE_CASES)
    limited = [(name, by_name[name]) for name in TIER_CASES] + [
        (name, t) for name, t in base if name.startswith(("threshold_", "band_"))
    ]

    cases: list[tuple[str, Tokens, str | None, datetime | None]] = []
    default_moment = DEFAULT_TIMESTAMP if off_peak else None
    cases += [(name, t, None, default_moment) for name, t in base]
    for tier in service_tiers(entry):
        cases += [(f"{tier}_{name}", t, tier, default_moment) for name, t in limited]
    if has_batch_prices(entry):
        cases += [(f"batch_{name}", t, "batch", default_moment) for name, t in limited]
        cases.append(("batch_reasoning", by_name["reasoning"], "batch", default_moment))
    if off_peak:
        for moment in OFF_PEAK_TIMESTAMPS:
            if moment == DEFAULT_TIMESTAMP:
                continue
            stamp = moment.strftime("%a%H%M%S").lower()
            cases += [
                (f"offpeak_{stamp}_{name}", by_name[name], None, moment)
                for name in ("plain", "cache_read", "cache_write_5m", "reasoning", "mixed")
            ]
    return cases


def alias_names(key: str, entry: dict) -> list[str]:
    """Names a caller may send that LiteLLM resolves to this key: Gemini/Vertex versioned names
    (`gemini/gemini-2.5-pro-001` -> `gemini/gemini-2.5-pro`)."""
    provider = entry.get("litellm_provider")
    if provider not in ("gemini", "vertex_ai-language-models") or re.search(r"-\d+$", key):
        return []
    return [f"{key}-001"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="path of the JSON Lines file to write (- for standard output)")
    parser.add_argument("--modes", default="chat,responses,completion", help="entry modes to price (comma-separated)")
    parser.add_argument("--no-aliases", action="store_true", help="skip the alias-name cases")
    args = parser.parse_args()
    modes = set(args.modes.split(","))

    started = time.monotonic()
    with open(PRICE_FILE, encoding="utf-8") as f:
        bundled = json.load(f)
    # The oracle is only meaningful if LiteLLM prices from exactly the bundled file.
    mismatched = [k for k, v in bundled.items() if k in litellm.model_cost and litellm.model_cost[k] != v]
    if mismatched or len(litellm.model_cost) < len(bundled) - 1:
        print(f"oracle.py: litellm.model_cost is not the bundled file ({mismatched[:3]})", file=sys.stderr)
        return 1

    recorder = KeyRecorder()
    lines: list[str] = []
    for key, entry in bundled.items():
        if not isinstance(entry, dict) or entry.get("mode") not in modes:
            continue
        provider = routing_provider(entry)
        common = {"model": key, "mode": entry["mode"], "litellm_provider": entry.get("litellm_provider")}
        recorder.start()
        resolved: str | None = None
        first = True
        for name, tokens, tier, moment in model_cases(entry):
            result = price(key, provider, tokens, tier, moment or DEFAULT_TIMESTAMP)
            if first:
                resolved = recorder.resolved()
                first = False
            record = {"case": name, **common, "custom_llm_provider": provider, "usage": tokens.as_json()}
            if tier is not None:
                record["service_tier"] = tier
            if tier == "batch":
                record["call_type"] = "retrieve_batch"
            if moment is not None:
                record["timestamp"] = iso(moment)
            record["resolved_key"] = resolved
            record.update(result)
            lines.append(json.dumps(record, separators=(",", ":")))
        if args.no_aliases:
            continue
        for alias in alias_names(key, entry):
            if alias in bundled:
                continue
            recorder.start()
            tokens = dict(BASE_CASES)["plain"]
            result = price(alias, provider, tokens, None, DEFAULT_TIMESTAMP)
            alias_resolved = recorder.resolved()
            record = {
                "case": "alias_plain",
                "model": alias_resolved or key,
                "mode": entry["mode"],
                "litellm_provider": entry.get("litellm_provider"),
                "custom_llm_provider": provider,
                "request_model": alias,
                "usage": tokens.as_json(),
                "resolved_key": alias_resolved,
                **result,
            }
            lines.append(json.dumps(record, separators=(",", ":")))

    header = {
        "price_file": os.path.abspath(PRICE_FILE),
        "litellm_version": dist_version("litellm"),
        "generated_by": "scripts/litellm/oracle.py",
        "cases": len(lines),
        "modes": sorted(modes),
        "python": platform.python_version(),
        "default_timestamp": iso(DEFAULT_TIMESTAMP),
    }
    text = json.dumps(header, separators=(",", ":")) + "\n" + "".join(line + "\n" for line in lines)
    if args.out == "-":
        sys.stdout.write(text)
    elif os.path.exists(args.out) and not os.path.isfile(args.out):
        # A device or pipe (/dev/stdout, a FIFO): write to it as it is, never replace it.
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        # A regular file: written whole or not at all.
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        tmp = f"{args.out}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, args.out)
    print(
        f"oracle.py: {len(lines)} cases in {time.monotonic() - started:.1f}s -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
