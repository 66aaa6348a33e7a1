#!/usr/bin/env python3
"""Counts behind SEMANTICS.md, from the price file bundled with the installed LiteLLM.

    python inventory.py [--modes chat] > inventory.md

Prints Markdown: every field of the entries of the given modes with its count and whether
LiteLLM's get_model_info() carries it to the cost code; the `*_above_<N>k_tokens*` fields by
price kind, threshold and suffix; the shapes of `tiered_pricing` and `off_peak_pricing`; the
number of models per rule kind; and the counts of the places SEMANTICS.md says LiteLLM bills
differently from the rule its own fields state. Offline (LITELLM_LOCAL_MODEL_COST_MAP).
"""

from __future__ import annotations

import os

for _flag in (
    "LITELLM_LOCAL_MODEL_COST_MAP",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS",
    "LITELLM_LOCAL_BLOG_POSTS",
    "LITELLM_LOCAL_POLICY_TEMPLATES",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS",
):
    os.environ[_flag] = "True"

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from importlib.metadata import version as dist_version  # noqa: E402

import litellm  # noqa: E402

litellm.suppress_debug_info = True
logging.getLogger("LiteLLM").setLevel(logging.CRITICAL)

PRICE_FILE = os.path.join(os.path.dirname(litellm.__file__), "model_prices_and_context_window_backup.json")
THRESHOLD = re.compile(r"^(?P<kind>.+?)_above_(?P<n>\d+k?)_tokens(?P<suffix>_[a-z]+)?$")
RATE_KINDS = (
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "cache_creation_input_token_cost_above_1hr",
)
TIERS = ("flex", "balanced", "priority", "ultrafast")
# Providers whose cost_per_token() branch does not pass service_tier on (cost_calculator.py).
DROPS_SERVICE_TIER = {
    "xai",
    "deepseek",
    "tencent",
    "perplexity",
    "fireworks_ai",
    "dashscope",
    "qwencloud",
    "qwen_ai_platform",
    "lemonade",
}
# Providers whose calculator reads no `*_above_<N>k_tokens` field (dashscope and perplexity
# calculators price flat or by tiered_pricing only).
IGNORES_THRESHOLDS = {"dashscope", "qwencloud", "qwen_ai_platform", "perplexity", "lemonade"}

# What each field does in LiteLLM 1.106.2's chat cost path, by pattern (first match wins).
ROLES = (
    (r"_decisions$", "dropped: not carried by get_model_info (decisions mode only)"),
    (r"^input_cost_per_token_cache_hit$", "dropped: not carried by get_model_info"),
    (r"^explicit_cache_read_input_token_cost$", "dropped: not carried by get_model_info"),
    (r"_dbu_cost_per_token$", "dropped: not carried by get_model_info"),
    (r"^input_cost_per_request$", "dropped: not carried by get_model_info"),
    (r"^input_cost_per_audio_token_priority$", "dropped: not carried by get_model_info"),
    (r"^code_interpreter_cost_per_session$", "tool cost (Responses API code interpreter), not token cost"),
    (r"^cache_creation_input_token_cost_above_1hr_above_\d+k_tokens$", "CHAT COST: 1-hour cache write above threshold"),
    (r"^cache_creation_input_token_cost_above_1hr$", "CHAT COST: 1-hour cache write"),
    (r"_above_\d+k?_tokens_batches$", "BATCH COST: batch rate above threshold (retrieve_batch only)"),
    (r"_batches$", "BATCH COST: batch rate (retrieve_batch only)"),
    (r"^(input|output)_cost_per_token_above_\d+k?_tokens(_[a-z]+)?$", "CHAT COST: long-context tier"),
    (r"^cache_(read|creation)_input_token_cost_above_\d+k?_tokens(_[a-z]+)?$", "CHAT COST: long-context tier"),
    (r"_above_128k_tokens$", "vertex character/second pricing above 128k (not token path)"),
    (r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|cache_creation_input_token_cost)$", "CHAT COST: base rate"),
    (r"^(input|output|cache_read_input|cache_creation_input)_(cost_per_token|token_cost)_(flex|balanced|priority|ultrafast)$", "CHAT COST: service-tier rate"),
    (r"^output_cost_per_reasoning_token(_flex|_priority)?$", "CHAT COST: reasoning rate"),
    (r"^tiered_pricing$", "CHAT COST: bands by prompt size"),
    (r"^off_peak_pricing$", "CHAT COST: off-peak rates by UTC time"),
    (r"^(input|output)_cost_per_(audio|image|video)_token$", "CHAT COST if the usage reports that modality"),
    (r"^cache_read_input_audio_token_cost$", "CHAT COST if the usage reports cached audio tokens"),
    (r"^input_cost_per_(character|image|audio_per_second|video_per_second|query)$", "CHAT COST if the usage reports characters/images/seconds/queries"),
    (r"^output_cost_per_(character|image)$", "not read for chat token pricing (vertex characters / image responses)"),
    (r"^regional_processing_uplift_multiplier_(eu|us)$", "CHAT COST multiplier if data_residency is given (OpenAI eu./us. hosts)"),
    (r"^regional_endpoint_uplift_multiplier$", "CHAT COST multiplier if vertex_location is non-global"),
    (r"^provider_specific_entry$", "CHAT COST multiplier (Anthropic: usage.inference_geo, speed=fast)"),
    (r"^(cost_per_second|input_cost_per_second)$", "per-second price, used only when the entry has no token price (x response time)"),
    (r"^(search_context_cost_per_query|google_maps_grounding_cost_per_query|web_search_billing_unit|search_free_requests)$", "tool cost added by completion_cost(), not cost_per_token()"),
    (r"^citation_cost_per_token$", "perplexity citation tokens (usage.citation_tokens)"),
    (r"^litellm_provider$", "routing / lookup (provider match)"),
    (r"^mode$", "routing (call type); not read by cost_per_token for chat"),
)


def role(field: str) -> str:
    for pattern, text in ROLES:
        if re.search(pattern, field):
            return text
    return "no effect on cost"


def is_rate(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", default="chat")
    args = parser.parse_args()
    modes = set(args.modes.split(","))

    with open(PRICE_FILE, encoding="utf-8") as f:
        data = json.load(f)
    entries = {k: v for k, v in data.items() if isinstance(v, dict) and v.get("mode") in modes}

    out: list[str] = []
    p = out.append
    p(f"# Inventory of {os.path.basename(PRICE_FILE)} (LiteLLM {dist_version('litellm')}), modes {sorted(modes)}\n")
    p(f"{len(entries)} entries.\n")

    # --- fields -------------------------------------------------------------------------
    counts: Counter[str] = Counter()
    carried: Counter[str] = Counter()
    for key, entry in entries.items():
        try:
            info = litellm.get_model_info(model=key, custom_llm_provider=entry.get("litellm_provider"))
        except Exception:  # noqa: BLE001
            info = {}
        for field in entry:
            counts[field] += 1
            if field in info:
                carried[field] += 1
    p("## Fields\n")
    p("| field | entries | carried by get_model_info | role in LiteLLM's cost |")
    p("|---|---:|---:|---|")
    for field in sorted(counts):
        p(f"| `{field}` | {counts[field]} | {carried[field]} | {role(field)} |")
    p("")

    # --- thresholds -----------------------------------------------------------------------
    by_kind: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    by_n: dict[str, Counter[str]] = defaultdict(Counter)
    for key, entry in entries.items():
        ns = set()
        for field in entry:
            m = THRESHOLD.match(field)
            if m:
                by_kind[(m["kind"], m["n"], m["suffix"] or "")].add(key)
                ns.add(m["n"])
        for n in ns:
            by_n[n][entry["litellm_provider"]] += 1
    p("## `*_above_<N>_tokens*` fields\n")
    p("| price kind | N | suffix | entries |")
    p("|---|---|---|---:|")
    for (kind, n, suffix), keys in sorted(by_kind.items(), key=lambda kv: (int(kv[0][1].rstrip("k")), kv[0])):
        p(f"| `{kind}` | {n} | `{suffix or '-'}` | {len(keys)} |")
    p("")
    p("| N | entries with any field above N | by litellm_provider |")
    p("|---|---:|---|")
    for n, c in sorted(by_n.items(), key=lambda kv: int(kv[0].rstrip("k"))):
        p(f"| {n} | {sum(c.values())} | {', '.join(f'{k} {v}' for k, v in sorted(c.items()))} |")
    p("")

    # --- tiered_pricing / off_peak shapes ---------------------------------------------------
    shapes: Counter[str] = Counter()
    ranges: Counter[str] = Counter()
    tp_prov: Counter[str] = Counter()
    for entry in entries.values():
        tp = entry.get("tiered_pricing")
        if tp is None:
            continue
        tp_prov[entry["litellm_provider"]] += 1
        keys = sorted({k for t in tp for k in t}) if isinstance(tp, list) else [type(tp).__name__]
        shapes[", ".join(keys)] += 1
        ranges[" ".join(str(t.get("range")) for t in tp)] += 1
    p("## `tiered_pricing`\n")
    p(f"By provider: {dict(sorted(tp_prov.items()))}\n")
    p("| keys of the bands | entries |")
    p("|---|---:|")
    for s, n in shapes.most_common():
        p(f"| {s} | {n} |")
    p("")
    p("| ranges | entries |")
    p("|---|---:|")
    for s, n in ranges.most_common():
        p(f"| {s} | {n} |")
    p("")
    p("## `off_peak_pricing`\n")
    for key, entry in entries.items():
        if "off_peak_pricing" in entry:
            p(f"- `{key}` ({entry['litellm_provider']}): `{json.dumps(entry['off_peak_pricing'], sort_keys=True)}`")
    p("")

    # --- models per rule kind ---------------------------------------------------------------
    def has(entry: dict, pred) -> bool:
        return any(pred(f) for f in entry)

    kinds: dict[str, list[str]] = defaultdict(list)
    for key, entry in entries.items():
        for n in sorted({m["n"] for f in entry if (m := THRESHOLD.match(f)) and not m["suffix"]}):
            kinds[f"standard tier above {n}"].append(key)
        if isinstance(entry.get("tiered_pricing"), list):
            kinds["tiered_pricing"].append(key)
        if "off_peak_pricing" in entry:
            kinds["off_peak_pricing"].append(key)
        if "cache_creation_input_token_cost_above_1hr" in entry:
            kinds["1-hour cache write price"].append(key)
        if is_rate(entry.get("cache_creation_input_token_cost")) and "cache_creation_input_token_cost_above_1hr" not in entry:
            kinds["cache write price, no 1-hour price"].append(key)
        if "output_cost_per_reasoning_token" in entry:
            kinds["reasoning price"].append(key)
            if entry["output_cost_per_reasoning_token"] != entry.get("output_cost_per_token"):
                kinds["reasoning price != output price"].append(key)
        for t in TIERS:
            if has(entry, lambda f, t=t: f.endswith(f"_{t}") and "cost" in f):
                kinds[f"service tier {t}"].append(key)
        if has(entry, lambda f: f.endswith("_batches")):
            kinds["batch prices"].append(key)
        if not is_rate(entry.get("input_cost_per_token")) and not is_rate(entry.get("output_cost_per_token")) and not entry.get("tiered_pricing"):
            kinds["no token price (LiteLLM bills 0)"].append(key)
        elif entry.get("input_cost_per_token") == 0 and entry.get("output_cost_per_token") == 0:
            kinds["token prices all zero"].append(key)
    p("## Entries per rule kind\n")
    p("| rule kind | entries |")
    p("|---|---:|")
    for k in sorted(kinds):
        p(f"| {k} | {len(kinds[k])} |")
    p("")

    # --- where LiteLLM bills differently from the rule its fields state ------------------------
    odd: dict[str, list[str]] = defaultdict(list)
    for key, entry in entries.items():
        prov = entry.get("litellm_provider", "")
        std_ns = sorted({m["n"] for f in entry if (m := THRESHOLD.match(f)) and not m["suffix"] and m["kind"] in RATE_KINDS})
        for t in TIERS:
            if not has(entry, lambda f, t=t: f.endswith(f"_{t}") and "cost" in f):
                continue
            for n in std_ns:
                for kind in ("input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost"):
                    if (
                        f"{kind}_above_{n}_tokens" in entry
                        and f"{kind}_{t}" in entry
                        and f"{kind}_above_{n}_tokens_{t}" not in entry
                    ):
                        odd[f"{t} request above {n}: `{kind}` falls back to the STANDARD long-context rate"].append(key)
        for n in std_ns:
            if f"input_cost_per_token_above_{n}_tokens" not in entry:
                continue
            if is_rate(entry.get("cache_read_input_token_cost")) and f"cache_read_input_token_cost_above_{n}_tokens" not in entry:
                odd["above threshold: cache reads stay at the flat cache-read rate (no tier field)"].append(key)
            if is_rate(entry.get("cache_creation_input_token_cost")) and f"cache_creation_input_token_cost_above_{n}_tokens" not in entry:
                odd["above threshold: cache writes stay at the flat cache-write rate (no tier field)"].append(key)
            if "cache_creation_input_token_cost_above_1hr" in entry and f"cache_creation_input_token_cost_above_1hr_above_{n}_tokens" not in entry:
                odd["above threshold: 1-hour writes stay at the flat 1-hour rate (no tier field)"].append(key)
            if has(entry, lambda f: f.endswith("_batches")) and f"input_cost_per_token_above_{n}_tokens_batches" not in entry:
                odd["batch above threshold: no `_above_N_tokens_batches` field, flat batch rate"].append(key)
        if has(entry, lambda f: f.endswith("_batches")) and "cache_creation_input_token_cost_above_1hr" in entry:
            odd["batch: 1-hour writes billed at the (5-minute) batch write rate"].append(key)
        if not is_rate(entry.get("input_cost_per_token_batches")) and not is_rate(entry.get("cache_read_input_token_cost")) and is_rate(entry.get("input_cost_per_token")) and entry.get("input_cost_per_token"):
            odd["batch (50% default): no cache-read price, so cached tokens are free"].append(key)
        if (
            is_rate(entry.get("input_cost_per_token_batches"))
            and "cache_read_input_token_cost_batches" not in entry
            and is_rate(entry.get("cache_read_input_token_cost"))
        ):
            odd["batch: batch input rate but no batch cache-read rate, cached tokens billed as batch input"].append(key)
            if entry["cache_read_input_token_cost"] < entry["input_cost_per_token_batches"]:
                odd["... of which the non-batch cache-read rate is below the batch input rate"].append(key)
        if prov in DROPS_SERVICE_TIER and has(entry, lambda f: any(f.endswith(f"_{t}") for t in TIERS) and "cost" in f):
            odd[f"provider calculator drops service_tier ({prov})"].append(key)
        if prov in IGNORES_THRESHOLDS and std_ns:
            odd[f"provider calculator ignores `_above_` fields ({prov})"].append(key)
        if prov in {"dashscope", "qwencloud", "qwen_ai_platform", "perplexity"} and "cache_creation_input_token_cost_above_1hr" in entry:
            odd[f"provider calculator ignores 1-hour writes ({prov})"].append(key)
        if prov == "perplexity" and is_rate(entry.get("cache_read_input_token_cost")):
            odd["perplexity calculator bills cache reads at the input rate"].append(key)
        if prov == "xai" and "output_cost_per_reasoning_token" in entry:
            odd["xai calculator bills reasoning at the output rate"].append(key)
        if (entry.get("output_cost_per_token") in (None, 0, 0.0)) and is_rate(entry.get("output_cost_per_image_token")):
            odd["output_cost_per_token 0/absent: text output billed at output_cost_per_image_token"].append(key)
        if re.search(r"claude", key) and is_rate(entry.get("cache_creation_input_token_cost")) and "cache_creation_input_token_cost_above_1hr" not in entry:
            odd["Claude entry with a cache-write price but no 1-hour price: 1-hour writes billed at the 5-minute price"].append(key)
        for f in entry:
            if f in ("input_cost_per_token_cache_hit", "explicit_cache_read_input_token_cost", "input_cost_per_request") or f.endswith("_decisions") or f == "input_cost_per_audio_token_priority":
                odd[f"field `{f}` present but never read"].append(key)
    p("## Where LiteLLM does not apply a price its own fields state\n")
    p("| what | entries | examples |")
    p("|---|---:|---|")
    for k in sorted(odd):
        keys = sorted(set(odd[k]))
        p(f"| {k} | {len(keys)} | {', '.join(f'`{x}`' for x in keys[:4])}{' ...' if len(keys) > 4 else ''} |")
    p("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
