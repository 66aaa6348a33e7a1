//! Loading LiteLLM's `model_prices_and_context_window.json`.
//!
//! The file is an object keyed by model name; each entry states USD per token in fields such
//! as `input_cost_per_token: 3e-06`. Every number this loader reads is parsed from its JSON
//! text into a `Decimal` (`serde_json`'s `RawValue`), never through `f64`, so `1.5e-07` is
//! exactly 0.00000015.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rust_decimal::Decimal;
use serde_json::value::RawValue;

use super::price::{LongContextTier, ModelPrice};
use super::resolve::strip_provider_prefix;
use super::PriceTable;

/// The key LiteLLM uses to document its own format; not a model.
const SAMPLE_SPEC: &str = "sample_spec";

const INPUT: &str = "input_cost_per_token";
const OUTPUT: &str = "output_cost_per_token";
const CACHE_READ: &str = "cache_read_input_token_cost";
const CACHE_WRITE: &str = "cache_creation_input_token_cost";
const REASONING: &str = "output_cost_per_reasoning_token";
const MODE: &str = "mode";

/// Long-context fields, `[input, output, cache read, cache write]`, by threshold. When an
/// entry has both, the first listed wins.
const TIERS: [(u64, [&str; 4]); 2] = [
    (
        200_000,
        [
            "input_cost_per_token_above_200k_tokens",
            "output_cost_per_token_above_200k_tokens",
            "cache_read_input_token_cost_above_200k_tokens",
            "cache_creation_input_token_cost_above_200k_tokens",
        ],
    ),
    (
        128_000,
        [
            "input_cost_per_token_above_128k_tokens",
            "output_cost_per_token_above_128k_tokens",
            "cache_read_input_token_cost_above_128k_tokens",
            "cache_creation_input_token_cost_above_128k_tokens",
        ],
    ),
];

/// What a LiteLLM load did besides producing prices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadReport {
    /// The number of models loaded with prices.
    pub loaded: usize,
    /// Models skipped for having no per-token input and output prices (image, audio,
    /// per-second or per-query pricing), sorted by name.
    pub skipped: Vec<String>,
}

/// Why a LiteLLM price file could not be loaded. Nothing is loaded when any entry is wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PriceFileError {
    /// The file could not be read.
    #[error("cannot read the price file {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a JSON object.
    #[error("the price file is not a JSON object of models (line {line}, column {column})")]
    Json {
        /// Line of the problem, from 1.
        line: usize,
        /// Column of the problem, from 1.
        column: usize,
        /// The parser's description.
        #[source]
        source: serde_json::Error,
    },
    /// A model's entry is not a JSON object.
    #[error("model {model:?}: the entry must be a JSON object, found {found}")]
    Entry {
        /// The model's key in the file.
        model: String,
        /// The start of the entry's JSON text.
        found: String,
    },
    /// A price field is present but is not a non-negative number that a decimal can hold.
    #[error("model {model:?}: field {field:?} {reason}")]
    Field {
        /// The model's key in the file.
        model: String,
        /// The field's name.
        field: String,
        /// What is wrong, with the JSON text found.
        reason: String,
    },
}

impl From<serde_json::Error> for PriceFileError {
    fn from(source: serde_json::Error) -> Self {
        Self::Json {
            line: source.line(),
            column: source.column(),
            source,
        }
    }
}

/// One model's fields, by name, as JSON text.
type Fields<'a> = BTreeMap<String, &'a RawValue>;

pub(super) fn load(json: &str) -> Result<(PriceTable, LoadReport), PriceFileError> {
    let models: BTreeMap<String, &RawValue> = serde_json::from_str(json)?;
    let mut table = PriceTable::empty();
    let mut report = LoadReport::default();
    for (model, entry) in &models {
        if model == SAMPLE_SPEC {
            continue;
        }
        let fields: Fields<'_> =
            serde_json::from_str(entry.get()).map_err(|_| PriceFileError::Entry {
                model: model.clone(),
                found: excerpt(entry.get()),
            })?;
        match model_price(model, &fields)? {
            Some(price) => {
                table = table.with_price(model.as_str(), price);
                report.loaded += 1;
            }
            None => report.skipped.push(model.clone()),
        }
    }
    // A model listed only as `gemini/gemini-2.5-pro` is also found as `gemini-2.5-pro`.
    for model in models.keys() {
        let bare = strip_provider_prefix(model);
        if bare.len() != model.len() && table.prices.contains_key(model) {
            table = table.with_alias_if_free(bare, model);
        }
    }
    Ok((table, report))
}

/// The entry's price, or `None` when it has no per-token input and output prices.
fn model_price(model: &str, fields: &Fields<'_>) -> Result<Option<ModelPrice>, PriceFileError> {
    let field = |name: &str| decimal_field(model, fields, name);
    let input = field(INPUT)?;
    let output = field(OUTPUT)?;
    let cache_read = field(CACHE_READ)?;
    let cache_write = field(CACHE_WRITE)?;
    let reasoning = field(REASONING)?;
    let long_context = long_context_tier(model, fields)?;
    // Embedding entries sometimes leave the output price out: they have no output tokens.
    let is_embedding = fields
        .get(MODE)
        .is_some_and(|mode| mode.get() == "\"embedding\"");
    let (input, output) = match (input, output) {
        (Some(input), Some(output)) => (input, output),
        (Some(input), None) if is_embedding => (input, Decimal::ZERO),
        _ => return Ok(None),
    };
    Ok(Some(ModelPrice {
        input,
        output,
        cache_read,
        cache_write,
        reasoning,
        long_context,
    }))
}

fn long_context_tier(
    model: &str,
    fields: &Fields<'_>,
) -> Result<Option<LongContextTier>, PriceFileError> {
    let mut found = None;
    for (above, [input, output, cache_read, cache_write]) in TIERS {
        let mut tier = LongContextTier::empty(above);
        tier.input = decimal_field(model, fields, input)?;
        tier.output = decimal_field(model, fields, output)?;
        tier.cache_read = decimal_field(model, fields, cache_read)?;
        tier.cache_write = decimal_field(model, fields, cache_write)?;
        let has_prices = [tier.input, tier.output, tier.cache_read, tier.cache_write]
            .iter()
            .any(Option::is_some);
        // Every tier is checked, so a malformed field fails the load even when unused.
        if has_prices && found.is_none() {
            found = Some(tier);
        }
    }
    Ok(found)
}

/// A price field: absent or `null` is `None`; anything but a non-negative number is an error.
fn decimal_field(
    model: &str,
    fields: &Fields<'_>,
    name: &str,
) -> Result<Option<Decimal>, PriceFileError> {
    let Some(raw) = fields.get(name) else {
        return Ok(None);
    };
    let text = raw.get();
    if text == "null" {
        return Ok(None);
    }
    let reason = match parse_json_number(text) {
        // `-0.0` is a valid JSON number and a valid (free) price.
        Ok(value) if value.is_zero() => return Ok(Some(Decimal::ZERO)),
        Ok(value) if value.is_sign_positive() => return Ok(Some(value)),
        Ok(_) | Err(NumberError::NotANumber) => "must be a non-negative number",
        Err(NumberError::OutOfRange) => {
            "must be a number with at most 28 decimal places that fits a decimal"
        }
    };
    Err(PriceFileError::Field {
        model: model.to_owned(),
        field: name.to_owned(),
        reason: format!("{reason}, found {}", excerpt(text)),
    })
}

#[derive(Debug, PartialEq, Eq)]
enum NumberError {
    NotANumber,
    OutOfRange,
}

/// Parses JSON number text (`3e-06`, `0.000003`, `1.5E+2`, `-1`) exactly; never rounds.
fn parse_json_number(text: &str) -> Result<Decimal, NumberError> {
    if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Err(NumberError::NotANumber);
    }
    let (significand, exponent) = match text.split_once(['e', 'E']) {
        Some((significand, exponent)) => (significand, Some(exponent)),
        None => (text, None),
    };
    let mut value = Decimal::from_str_exact(significand).map_err(|_| NumberError::OutOfRange)?;
    let Some(exponent) = exponent else {
        return Ok(value);
    };
    let exponent = exponent.strip_prefix('+').unwrap_or(exponent);
    if let Some(negative) = exponent.strip_prefix('-') {
        let shift: u32 = negative.parse().map_err(|_| NumberError::OutOfRange)?;
        let scale = value
            .scale()
            .checked_add(shift)
            .ok_or(NumberError::OutOfRange)?;
        value
            .set_scale(scale)
            .map_err(|_| NumberError::OutOfRange)?;
        return Ok(value);
    }
    let shift: u32 = exponent.parse().map_err(|_| NumberError::OutOfRange)?;
    let power = 10i128
        .checked_pow(shift)
        .filter(|_| shift <= Decimal::MAX_SCALE)
        .ok_or(NumberError::OutOfRange)?;
    value
        .checked_mul(Decimal::from_i128_with_scale(power, 0))
        .ok_or(NumberError::OutOfRange)
}

/// The start of a piece of JSON text, for an error message.
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    match text.char_indices().nth(MAX_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn numbers_are_parsed_from_their_text() {
        for (text, expected) in [
            ("3e-06", "0.000003"),
            ("0.000003", "0.000003"),
            ("1.5e-07", "0.00000015"),
            ("1.25E-6", "0.00000125"),
            ("2.5e+1", "25"),
            ("1e2", "100"),
            ("0", "0"),
            ("0.0", "0"),
            ("7.5e-05", "0.000075"),
            ("5.46875e-07", "0.000000546875"),
        ] {
            assert_eq!(parse_json_number(text), Ok(d(expected)), "{text}");
        }
        // Beyond f64's 17 significant digits, still exact.
        assert_eq!(
            parse_json_number("1.2345678901234567890123e-5"),
            Ok(d("0.000012345678901234567890123"))
        );
    }

    #[test]
    fn what_a_decimal_cannot_hold_is_refused_not_rounded() {
        assert_eq!(parse_json_number("1e-29"), Err(NumberError::OutOfRange));
        assert_eq!(parse_json_number("1e400"), Err(NumberError::OutOfRange));
        assert_eq!(parse_json_number("1e29"), Err(NumberError::OutOfRange));
        assert_eq!(parse_json_number("\"3e-06\""), Err(NumberError::NotANumber));
        assert_eq!(parse_json_number("true"), Err(NumberError::NotANumber));
    }

    #[test]
    fn null_and_absent_fields_are_absent() {
        let (table, report) = load(
            r#"{"m": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
                      "cache_read_input_token_cost": null}}"#,
        )
        .unwrap();
        assert_eq!(report.loaded, 1);
        let price = table.resolve("m").unwrap().1;
        assert_eq!(price.cache_read(), price.input());
        assert_eq!(price.long_context(), None);
    }

    #[test]
    fn negative_zero_is_zero() {
        let table = load(r#"{"m": {"input_cost_per_token": -0.0, "output_cost_per_token": 0}}"#)
            .unwrap()
            .0;
        let input = table.resolve("m").unwrap().1.input();
        assert_eq!(input.to_string(), "0");
    }

    #[test]
    fn embeddings_without_output_price_cost_nothing_for_output() {
        let (table, report) = load(
            r#"{"emb": {"input_cost_per_token": 2e-08, "mode": "embedding"},
                "img": {"input_cost_per_token": 5e-06, "mode": "image_generation"}}"#,
        )
        .unwrap();
        assert_eq!(table.resolve("emb").unwrap().1.output(), Decimal::ZERO);
        assert_eq!(report.skipped, ["img"]);
    }

    #[test]
    fn tiers_above_128k_are_read_and_200k_wins() {
        let table = load(
            r#"{"old": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
                        "input_cost_per_token_above_128k_tokens": 2e-06},
                "both": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
                        "input_cost_per_token_above_128k_tokens": 2e-06,
                        "output_cost_per_token_above_200k_tokens": 3e-06}}"#,
        )
        .unwrap()
        .0;
        let old = table.resolve("old").unwrap().1.long_context().unwrap();
        assert_eq!(old.above_input_tokens, 128_000);
        assert_eq!((old.input, old.output), (Some(d("0.000002")), None));
        let both = table.resolve("both").unwrap().1.long_context().unwrap();
        assert_eq!(both.above_input_tokens, 200_000);
        assert_eq!(both.output, Some(d("0.000003")));
    }

    #[test]
    fn a_malformed_unused_tier_field_still_fails() {
        let err = load(
            r#"{"m": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
                      "output_cost_per_token_above_200k_tokens": 3e-06,
                      "input_cost_per_token_above_128k_tokens": "x"}}"#,
        )
        .unwrap_err();
        assert!(matches!(err, PriceFileError::Field { ref field, .. }
            if field == "input_cost_per_token_above_128k_tokens"));
    }

    #[test]
    fn entries_must_be_objects() {
        let err = load(r#"{"m": [1, 2]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"model "m": the entry must be a JSON object, found [1, 2]"#
        );
        let err = load("[]").unwrap_err();
        assert!(matches!(err, PriceFileError::Json { line: 1, .. }), "{err}");
    }

    #[test]
    fn prefixed_keys_are_found_by_their_bare_name_unless_it_is_listed() {
        let table = load(
            r#"{"gemini/g": {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06},
                "openai/o": {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06},
                "o": {"input_cost_per_token": 2e-06, "output_cost_per_token": 2e-06}}"#,
        )
        .unwrap()
        .0;
        assert_eq!(table.resolve("g").unwrap().0, "gemini/g");
        assert_eq!(table.resolve("o").unwrap().0, "o");
        assert_eq!(table.len(), 3);
    }
}
