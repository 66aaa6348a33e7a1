//! A LiteLLM price file, as `PriceTable::from_litellm_json` loads it.
//!
//! - Every model of a loaded file is either loaded or reported skipped (`sample_spec` aside),
//!   and each loaded model resolves under its own name to non-negative prices.
//! - Round trip: the loaded prices, written back in LiteLLM's format from their decimals, load
//!   again to the same prices, and price every usage the same.
//! - Pricing any usage, however absurd its counts, gives a cost or an error, never a panic.
#![no_main]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use tracing_llm_audit::cost::{ModelPrice, PriceTable, TokenUsage};

/// A price in LiteLLM's format: the fields the file gave (`fields`, not `null`), numbers written
/// from the loaded decimals, so that optional prices stay optional.
fn litellm_entry(price: &ModelPrice, fields: &BTreeMap<String, &RawValue>) -> String {
    let given = |name: &str| fields.get(name).is_some_and(|v| v.get() != "null");
    let mut out = vec![
        ("input_cost_per_token".to_owned(), price.input()),
        ("output_cost_per_token".to_owned(), price.output()),
    ];
    for (name, value) in [
        ("cache_read_input_token_cost", price.cache_read()),
        ("cache_creation_input_token_cost", price.cache_write()),
        ("output_cost_per_reasoning_token", price.reasoning()),
    ] {
        if given(name) {
            out.push((name.to_owned(), value));
        }
    }
    if let Some(value) = price
        .cache_write_1h()
        .filter(|_| given("cache_creation_input_token_cost_above_1hr"))
    {
        out.push((
            "cache_creation_input_token_cost_above_1hr".to_owned(),
            value,
        ));
    }
    for tier in price.long_context_tiers() {
        let above = match tier.above_input_tokens {
            n if n % 1000 == 0 => format!("above_{}k_tokens", n / 1000),
            n => format!("above_{n}_tokens"),
        };
        for (name, value) in [
            ("input_cost_per_token", tier.input),
            ("output_cost_per_token", tier.output),
            ("cache_read_input_token_cost", tier.cache_read),
            ("cache_creation_input_token_cost", tier.cache_write),
            (
                "cache_creation_input_token_cost_above_1hr",
                tier.cache_write_1h,
            ),
        ] {
            if let Some(value) = value {
                out.push((format!("{name}_{above}"), value));
            }
        }
    }
    let mut text = String::from("{");
    for (i, (name, value)) in out.iter().enumerate() {
        let comma = if i > 0 { "," } else { "" };
        let _ = write!(text, "{comma}\"{name}\":{value}");
    }
    // The provider decides how a threshold is counted (xAI's from the threshold itself).
    for name in ["litellm_provider", "source"] {
        if let Some(value) = fields.get(name).filter(|v| v.get().starts_with('"')) {
            let _ = write!(text, ",\"{name}\":{}", value.get());
        }
    }
    text.push('}');
    text
}

/// Whether the writer above gives the whole of the entry's price back: it writes the flat
/// prices, the thresholds and the 1-hour price, not bands, off-peak hours, service tiers or
/// per-request prices (those are checked against LiteLLM itself, tests/litellm_oracle.rs).
fn round_trips(price: &ModelPrice, fields: &BTreeMap<String, &RawValue>) -> bool {
    let given = |name: &str| fields.get(name).is_some_and(|v| v.get() != "null");
    !given("tiered_pricing")
        && !given("off_peak_pricing")
        && !given("input_cost_per_request")
        && price.service_tiers().next().is_none()
        && price.refused_rules().is_empty()
}

/// Usages from the input's bytes, with the extremes among them.
fn usages(data: &[u8]) -> Vec<TokenUsage> {
    let mut counts: Vec<u64> = vec![0, 1, 128_000, 200_001, u64::MAX];
    counts.extend(data.chunks(8).take(8).map(|c| {
        let mut b = [0u8; 8];
        b[..c.len()].copy_from_slice(c);
        u64::from_le_bytes(b)
    }));
    let at = |i: usize| counts[i % counts.len()];
    (0..counts.len())
        .map(|i| TokenUsage {
            input_tokens: Some(at(i)),
            output_tokens: Some(at(i + 1)),
            cache_read_tokens: Some(at(i + 2)).filter(|_| i % 2 == 0),
            cache_write_tokens: Some(at(i + 3)).filter(|_| i % 3 == 0),
            reasoning_tokens: Some(at(i + 4)).filter(|_| i % 4 == 0),
            ..TokenUsage::default()
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((table, report)) = PriceTable::from_litellm_json_with_report(json) else {
        return;
    };
    let models: BTreeMap<String, &RawValue> =
        serde_json::from_str(json).expect("a loaded file is a JSON object");
    let listed: Vec<&String> = models
        .keys()
        .filter(|m| !["sample_spec", "fallback_generalizations"].contains(&m.as_str()))
        .collect();
    assert_eq!(report.loaded + report.skipped.len(), listed.len());
    assert_eq!(table.len(), report.loaded);

    let zero = Decimal::ZERO;
    let mut written = String::from("{");
    let mut checked = Vec::new();
    for model in listed.iter().filter(|m| !report.skipped.contains(m)) {
        let (name, price) = table.resolve(model).expect("a loaded model resolves");
        assert_eq!(name, model.as_str(), "a model resolves to another");
        for value in [
            price.input(),
            price.output(),
            price.cache_read(),
            price.cache_write(),
        ] {
            assert!(value >= zero, "{model}: negative price {value}");
        }
        let key = serde_json::to_string(model).expect("a string serializes");
        let fields: BTreeMap<String, &RawValue> =
            serde_json::from_str(models[*model].get()).expect("a loaded entry is an object");
        if !round_trips(price, &fields) {
            // Still priced without a panic, whatever the usage.
            for usage in usages(data) {
                let _ = table.cost(model, &usage);
            }
            continue;
        }
        if written.len() > 1 {
            written.push(',');
        }
        checked.push(*model);
        let _ = write!(written, "{key}:{}", litellm_entry(price, &fields));
    }
    written.push('}');

    let again = PriceTable::from_litellm_json(&written)
        .unwrap_or_else(|e| panic!("written prices do not load: {e}\n{written}"));
    for model in checked {
        let price = table.resolve(model).map(|(_, p)| p);
        assert_eq!(
            again.resolve(model).map(|(_, p)| p),
            price,
            "{model}\n{written}"
        );
        for usage in usages(data) {
            let cost = table.cost(model, &usage).map_err(|e| e.to_string());
            assert_eq!(again.cost(model, &usage).map_err(|e| e.to_string()), cost);
        }
    }
});
