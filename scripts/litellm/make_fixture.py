#!/usr/bin/env python3
"""A small, committed slice of the oracle: tests/fixtures/litellm_oracle/.

    python make_fixture.py ORACLE.jsonl OUT_DIR

Reads a full oracle run (oracle.py's output, whose first line names the bundled price file)
and writes to OUT_DIR:

  prices_subset.json   the entries of the models below, and of every entry LiteLLM resolved them
                       to, copied from the bundled file with every number's text kept exactly
                       (so a Decimal parse of it equals a Decimal parse of the original);
  oracle_subset.jsonl  the oracle's first line (price_file replaced by "prices_subset.json",
                       the original path kept as bundled_price_file) and every case of those
                       models, unchanged.

The models are one or more of each rule kind SEMANTICS.md describes, so the Rust tests can run
the oracle comparison for them without Python; the full comparison runs on setup.sh's output.
Plain python3, no LiteLLM needed.
"""

from __future__ import annotations

import json
import os
import sys

MODELS = (
    # long-context tiers
    "gpt-5.4",  # 272k; priority request above 272k falls back to the standard tier rate
    "azure_ai/gpt-5.4",  # 272k with *_above_272k_tokens_priority
    "azure/gpt-5.5",  # flex above 272k: cache read falls back to the standard tier rate
    "gpt-5.5-pro",  # responses mode, flex above 272k fallback, batch above 272k
    "gpt-6-astra",  # ultrafast tier
    "sail/moonshotai/Kimi-K3",  # balanced tier
    "claude-haiku-5-5",  # 100k tier, 1-hour writes, 1-hour writes above 100k, batch above 100k
    "claude-opus-4-6",  # 1-hour writes, provider_specific_entry
    "claude-sonnet-4-5",  # Anthropic API entry: no long-context tier in this file
    "global.anthropic.claude-sonnet-4-5-20250929-v1:0",  # bedrock 200k + 1h above 200k; batch w/o tier
    "vertex_ai/claude-sonnet-4-5",  # vertex 200k
    "gemini/gemini-2.5-pro",  # 200k, *_above_200k_tokens_priority, flex fallback, batch
    "gemini-2.5-pro",  # Vertex AI's bare key
    "gemini/gemini-exp-1114",  # 128k, all prices zero
    "minimax/MiniMax-M3",  # 512k
    "xai/grok-4.20-0309-reasoning",  # 200k, xAI boundary inclusive, batch tiers
    "azure_ai/grok-4.3",  # grok on another host: boundary exclusive
    # tiered_pricing
    "dashscope/qwen-flash",  # two bands
    "dashscope/qwen3-coder-flash",  # four bands with cache-read rates
    "dashscope/qwen-plus-2025-07-28",  # bands with reasoning rates
    "volcengine/doubao-seed-2-0-pro-260215",  # bands, generic calculator
    # off-peak
    "deepseek-v4-pro",  # resolves to deepseek/deepseek-v4-pro
    "deepseek/deepseek-v4-pro",
    "tencent/deepseek-v4-pro-0813",  # weekday_timezone Asia/Shanghai
    # provider specifics
    "fireworks_ai/glm-5p2",  # priority prices LiteLLM never applies
    "fireworks_ai/accounts/fireworks/models/deepseek-coder-v2-instruct",  # cache read 0.5 x input
    "perplexity/sonar-deep-research",  # reasoning price != output price
    "perplexity/perplexity/sonar",  # priced from perplexity/sonar
    "perplexity/openai/gpt-5.4",  # responses: perplexity calculator ignores tiers and cache price
    "dashscope/qwen3.7-max",  # explicit_cache_read_input_token_cost never read
    "gpt-6-luna",  # *_decisions fields never read
    "gemini-3-flash-preview",  # bare Vertex key priced from vertex_ai/gemini-3-flash-preview
    "deepseek-chat",  # priced from deepseek/deepseek-chat
    "aihubmix/claude-opus-5",  # Claude without a 1-hour price
    "bedrock/ap-northeast-1/1-month-commitment/anthropic.claude-v1",  # no token price (per second)
)


class Raw:
    """A JSON number kept as its source text."""

    def __init__(self, text: str) -> None:
        self.text = text


def dump(value: object, indent: int = 0) -> str:
    pad = "  " * (indent + 1)
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}{json.dumps(k)}: {dump(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[" + ", ".join(dump(v, indent + 1) for v in value) + "]"
    return json.dumps(value)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    oracle_path, out_dir = sys.argv[1], sys.argv[2]
    with open(oracle_path, encoding="utf-8") as f:
        header = json.loads(f.readline())
        cases = [json.loads(line) for line in f if line.strip()]
    with open(header["price_file"], encoding="utf-8") as f:
        bundled = json.load(f, parse_float=Raw, parse_int=Raw)

    wanted = set(MODELS)
    missing = sorted(m for m in wanted if m not in bundled)
    if missing:
        print(f"make_fixture.py: not in the price file: {missing}", file=sys.stderr)
        return 1
    chosen = [c for c in cases if c["model"] in wanted and "request_model" not in c]
    keys = wanted | {c["resolved_key"] for c in chosen if c.get("resolved_key")}
    subset = {k: bundled[k] for k in bundled if k in keys}

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "prices_subset.json"), "w", encoding="utf-8") as f:
        f.write(dump(subset) + "\n")
    new_header = {
        **header,
        "price_file": "prices_subset.json",
        "bundled_price_file": os.path.basename(header["price_file"]),
        "cases": len(chosen),
        "subset_of": "the full output of scripts/litellm/oracle.py",
    }
    with open(os.path.join(out_dir, "oracle_subset.jsonl"), "w", encoding="utf-8") as f:
        f.write(json.dumps(new_header, separators=(",", ":")) + "\n")
        for c in chosen:
            f.write(json.dumps(c, separators=(",", ":")) + "\n")
    print(f"make_fixture.py: {len(subset)} entries, {len(chosen)} cases -> {out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
