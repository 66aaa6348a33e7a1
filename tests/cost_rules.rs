//! Known answers, worked by hand, for every kind of price rule of the LiteLLM format: a model
//! of each kind in a small price file, and the exact cost of concrete calls. The oracle test
//! (`tests/litellm_oracle.rs`) checks the same rules against LiteLLM over its whole file; these
//! show each rule on its own.

use time::macros::datetime;
use tracing_llm_audit::cost::{CostError, Decimal, PriceTable, PricingContext, TokenUsage};

const FILE: &str = r#"{
  "long-context": {
    "litellm_provider": "openai",
    "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1.5e-05,
    "cache_read_input_token_cost": 2.5e-07,
    "input_cost_per_token_above_272k_tokens": 5e-06,
    "output_cost_per_token_above_272k_tokens": 2.25e-05,
    "cache_read_input_token_cost_above_272k_tokens": 5e-07,
    "input_cost_per_token_priority": 5e-06, "output_cost_per_token_priority": 3e-05,
    "input_cost_per_token_flex": 1.25e-06, "output_cost_per_token_flex": 7.5e-06,
    "input_cost_per_token_batches": 1.25e-06, "output_cost_per_token_batches": 7.5e-06
  },
  "grok": {
    "litellm_provider": "xai",
    "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
    "input_cost_per_token_above_200k_tokens": 6e-06,
    "output_cost_per_token_above_200k_tokens": 3e-05
  },
  "grok-elsewhere": {
    "litellm_provider": "azure_ai",
    "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
    "input_cost_per_token_above_200k_tokens": 6e-06,
    "output_cost_per_token_above_200k_tokens": 3e-05
  },
  "banded": {
    "litellm_provider": "dashscope",
    "tiered_pricing": [
      {"range": [32000.0, 128000.0], "input_cost_per_token": 2.4e-06, "output_cost_per_token": 1.2e-05},
      {"range": [0, 32000.0], "input_cost_per_token": 1.2e-06, "output_cost_per_token": 6e-06}
    ]
  },
  "off-peak": {
    "litellm_provider": "deepseek",
    "input_cost_per_token": 2.7e-07, "output_cost_per_token": 1.1e-06,
    "off_peak_pricing": {
      "input_cost_per_token": 1.35e-07, "output_cost_per_token": 5.5e-07,
      "windows": [{"hours_utc": "16:30-00:30"}, {"hours_utc": "00:00-00:00", "weekdays": [6, 7]}]
    }
  },
  "off-peak-shanghai": {
    "litellm_provider": "tencent",
    "input_cost_per_token": 2.7e-07, "output_cost_per_token": 1.1e-06,
    "off_peak_pricing": {
      "input_cost_per_token": 1.35e-07, "output_cost_per_token": 5.5e-07,
      "weekday_timezone": "Asia/Shanghai",
      "windows": [{"hours_utc": "00:00-00:00", "weekdays": [6, 7]}]
    }
  },
  "one-hour": {
    "litellm_provider": "anthropic",
    "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
    "cache_creation_input_token_cost": 3.75e-06,
    "cache_creation_input_token_cost_above_1hr": 6e-06
  },
  "five-minutes-only": {
    "litellm_provider": "bedrock",
    "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
    "cache_creation_input_token_cost": 3.75e-06
  },
  "per-request": {
    "litellm_provider": "perplexity",
    "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06,
    "input_cost_per_request": 0.005
  },
  "odd": {
    "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06,
    "output_cost_per_token_when_raining": 9e-06
  }
}"#;

fn table() -> PriceTable {
    PriceTable::from_litellm_json(FILE).unwrap()
}

fn usd(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

fn usage(input: u64, output: u64) -> TokenUsage {
    TokenUsage {
        input_tokens: Some(input),
        output_tokens: Some(output),
        ..TokenUsage::default()
    }
}

fn at(tier: &str) -> PricingContext {
    PricingContext::default().with_service_tier(tier)
}

fn cost(model: &str, usage: &TokenUsage) -> Result<Decimal, CostError> {
    table().cost(model, usage)
}

#[test]
fn a_long_context_tier_reprices_the_whole_request_past_its_threshold() {
    let reads = |input| TokenUsage {
        cache_read_tokens: Some(100_000),
        ..usage(input, 1_000)
    };
    // At 272,000 prompt tokens: base prices.
    // 172,000 × 0.0000025 = 0.43; 100,000 reads × 0.00000025 = 0.025; 1,000 × 0.000015 = 0.015.
    assert_eq!(cost("long-context", &reads(272_000)), Ok(usd("0.470000")));
    // One token past it, every token at the tier's prices:
    // 172,001 × 0.000005 = 0.860005; 100,000 × 0.0000005 = 0.05; 1,000 × 0.0000225 = 0.0225.
    assert_eq!(cost("long-context", &reads(272_001)), Ok(usd("0.932505")));
}

#[test]
fn xai_counts_its_threshold_from_the_threshold_itself() {
    // xAI: 200,000 prompt tokens are billed at the 200k rate: 200,000 × 0.000006 = 1.2.
    assert_eq!(cost("grok", &usage(200_000, 0)), Ok(usd("1.200000")));
    // The same prices elsewhere: from one token past it. 200,000 × 0.000003 = 0.6.
    assert_eq!(
        cost("grok-elsewhere", &usage(200_000, 0)),
        Ok(usd("0.600000"))
    );
}

#[test]
fn a_band_prices_every_token_by_the_prompt_length() {
    // 32,000 is in (0, 32000]: 32,000 × 0.0000012 = 0.0384; 100 × 0.000006 = 0.0006.
    assert_eq!(cost("banded", &usage(32_000, 100)), Ok(usd("0.039000")));
    // 32,001 is in (32000, 128000]: 32,001 × 0.0000024 = 0.0768024; 100 × 0.000012 = 0.0012.
    assert_eq!(cost("banded", &usage(32_001, 100)), Ok(usd("0.0780024")));
    // Past the last band, the last band: 200,000 × 0.0000024 = 0.48; + 0.0012.
    assert_eq!(cost("banded", &usage(200_000, 100)), Ok(usd("0.481200")));
    // Bands have no service-tier prices.
    let err = table()
        .cost_with("banded", &usage(10, 10), &at("priority"))
        .unwrap_err();
    assert!(matches!(err, CostError::NoPriceFor(_)), "{err}");
}

#[test]
fn off_peak_prices_follow_the_hour_and_the_weekday() {
    let t = table();
    let price = |when| {
        t.cost_with(
            "off-peak",
            &usage(1_000, 100),
            &PricingContext::default().at(when),
        )
    };
    // Peak (Wednesday 08:00 UTC): 1,000 × 0.00000027 + 100 × 0.0000011 = 0.00027 + 0.00011.
    let peak = Ok(usd("0.000380"));
    // Off-peak: 1,000 × 0.000000135 + 100 × 0.00000055 = 0.000135 + 0.000055.
    let off_peak = Ok(usd("0.000190"));
    assert_eq!(price(datetime!(2025-01-15 08:00 UTC)), peak);
    assert_eq!(price(datetime!(2025-01-15 16:30 UTC)), off_peak);
    // The window wraps past midnight and ends before its end.
    assert_eq!(price(datetime!(2025-01-16 00:29:59 UTC)), off_peak);
    assert_eq!(price(datetime!(2025-01-16 00:30 UTC)), peak);
    // All day on Saturday and Sunday.
    assert_eq!(price(datetime!(2025-01-18 08:00 UTC)), off_peak);
    // Without the time of the call, no price rather than the peak price.
    let err = t.cost("off-peak", &usage(1_000, 100)).unwrap_err();
    assert!(err.to_string().contains("hour"), "{err}");
    // Weekdays read in Shanghai: Friday 20:00 UTC is Saturday 04:00 there.
    let shanghai = |when| {
        t.cost_with(
            "off-peak-shanghai",
            &usage(1_000, 100),
            &PricingContext::default().at(when),
        )
    };
    assert_eq!(shanghai(datetime!(2025-01-17 20:00 UTC)), off_peak);
    assert_eq!(shanghai(datetime!(2025-01-17 15:00 UTC)), peak);
}

#[test]
fn one_hour_cache_writes_cost_their_own_price_or_none() {
    let writes = TokenUsage {
        cache_write_tokens: Some(3_000),
        cache_write_1h_tokens: Some(2_000),
        ..usage(10_000, 100)
    };
    // 7,000 × 0.000003 = 0.021; 1,000 five-minute writes × 0.00000375 = 0.00375;
    // 2,000 one-hour writes × 0.000006 = 0.012; 100 × 0.000015 = 0.0015. Total 0.03825.
    assert_eq!(cost("one-hour", &writes), Ok(usd("0.038250")));
    // No 1-hour price stated: not the 5-minute price.
    let err = cost("five-minutes-only", &writes).unwrap_err();
    assert!(err.to_string().contains("1-hour"), "{err}");
    // Without 1-hour writes the same model is priced.
    let five = TokenUsage {
        cache_write_1h_tokens: Some(0),
        ..writes
    };
    // 7,000 × 0.000003 + 3,000 × 0.00000375 + 0.0015 = 0.021 + 0.01125 + 0.0015.
    assert_eq!(cost("five-minutes-only", &five), Ok(usd("0.033750")));
}

#[test]
fn service_tiers_have_their_own_prices_and_no_others() {
    let t = table();
    let call = usage(1_000, 100);
    // Priority: 1,000 × 0.000005 + 100 × 0.00003 = 0.005 + 0.003.
    assert_eq!(
        t.cost_with("long-context", &call, &at("priority")),
        Ok(usd("0.008000"))
    );
    // OpenAI's "fast" is its priority tier; "default" and "auto" are the standard prices.
    assert_eq!(
        t.cost_with("long-context", &call, &at("fast")),
        Ok(usd("0.008000"))
    );
    // Standard: 1,000 × 0.0000025 + 100 × 0.000015 = 0.0025 + 0.0015.
    assert_eq!(
        t.cost_with("long-context", &call, &at("default")),
        Ok(usd("0.004000"))
    );
    // Flex: 1,000 × 0.00000125 + 100 × 0.0000075 = 0.00125 + 0.00075.
    assert_eq!(
        t.cost_with("long-context", &call, &at("flex")),
        Ok(usd("0.002000"))
    );
    // Batch: the same figures from the `_batches` prices.
    assert_eq!(
        t.cost_with("long-context", &call, &at("batch")),
        Ok(usd("0.002000"))
    );
    // A tier the model has no prices for is not priced at the standard price.
    let err = t.cost_with("grok", &call, &at("priority")).unwrap_err();
    assert!(err.to_string().contains("`priority` service tier"), "{err}");
    // Past the threshold the file states no priority price: not priced (LiteLLM would bill
    // the standard long-context price, cheaper than priority).
    let err = t
        .cost_with("long-context", &usage(300_000, 10), &at("priority"))
        .unwrap_err();
    assert!(err.to_string().contains("272000-token threshold"), "{err}");
    // A batch call with cache reads, and no batch cache-read price: not priced.
    let reads = TokenUsage {
        cache_read_tokens: Some(500),
        ..call
    };
    let err = t
        .cost_with("long-context", &reads, &at("batch"))
        .unwrap_err();
    assert!(err.to_string().contains("batch cache-read"), "{err}");
}

#[test]
fn a_per_request_price_is_added_to_every_call() {
    // 0.005 + 1,000 × 0.000001 + 100 × 0.000001 = 0.0061.
    assert_eq!(cost("per-request", &usage(1_000, 100)), Ok(usd("0.006100")));
}

#[test]
fn a_rule_the_loader_does_not_know_leaves_only_its_model_unpriced() {
    let (t, report) = PriceTable::from_litellm_json_with_report(FILE).unwrap();
    assert_eq!(
        report.refused.get("output_cost_per_token_when_raining"),
        Some(&vec!["odd".to_owned()])
    );
    assert_eq!(
        t.refused_rules().get("output_cost_per_token_when_raining"),
        Some(&1)
    );
    let err = t.cost("odd", &usage(1, 1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "not priced: the price table cannot apply its rule `output_cost_per_token_when_raining`"
    );
    // The rest of the file loaded and prices.
    assert_eq!(report.loaded, 10);
    assert!(t.cost("grok", &usage(1, 1)).is_ok());
}
