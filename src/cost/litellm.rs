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

use super::price::{
    Band, LongContextTier, ModelPrice, OffPeak, OffPeakWindow, Rates, ServiceTierRates,
};
use super::resolve::strip_provider_prefix;
use super::PriceTable;

/// Keys of the file that are not models: LiteLLM's description of its own format, and its
/// routing rules for names it has no entry for.
const NOT_MODELS: [&str; 2] = ["sample_spec", "fallback_generalizations"];

const MODE: &str = "mode";
const PROVIDER: &str = "litellm_provider";
const SOURCE: &str = "source";
const TIERED_PRICING: &str = "tiered_pricing";
const OFF_PEAK_PRICING: &str = "off_peak_pricing";
const PER_REQUEST: &str = "input_cost_per_request";

/// The kinds of per-token price, by the field that states the standard one. The longer name
/// first: `cache_creation_input_token_cost_above_1hr` is a kind of its own, not a tier of
/// `cache_creation_input_token_cost`.
const KINDS: [(&str, Kind); 6] = [
    (
        "cache_creation_input_token_cost_above_1hr",
        Kind::CacheWrite1h,
    ),
    ("cache_creation_input_token_cost", Kind::CacheWrite),
    ("cache_read_input_token_cost", Kind::CacheRead),
    ("output_cost_per_reasoning_token", Kind::Reasoning),
    ("input_cost_per_token", Kind::Input),
    ("output_cost_per_token", Kind::Output),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Input,
    Output,
    CacheRead,
    CacheWrite,
    CacheWrite1h,
    Reasoning,
}

impl Kind {
    fn slot(self, rates: &mut Rates) -> &mut Option<Decimal> {
        match self {
            Self::Input => &mut rates.input,
            Self::Output => &mut rates.output,
            Self::CacheRead => &mut rates.cache_read,
            Self::CacheWrite => &mut rates.cache_write,
            Self::CacheWrite1h => &mut rates.cache_write_1h,
            Self::Reasoning => &mut rates.reasoning,
        }
    }

    fn of_tier(self, tier: &mut LongContextTier) -> Option<&mut Option<Decimal>> {
        match self {
            Self::Input => Some(&mut tier.input),
            Self::Output => Some(&mut tier.output),
            Self::CacheRead => Some(&mut tier.cache_read),
            Self::CacheWrite => Some(&mut tier.cache_write),
            Self::CacheWrite1h => Some(&mut tier.cache_write_1h),
            // No provider prices reasoning apart from output above a threshold.
            Self::Reasoning => None,
        }
    }
}

/// A per-token price field: `<kind>[_above_<N>k_tokens][_<service tier>]`.
#[derive(Debug, PartialEq, Eq)]
struct PriceField {
    kind: Kind,
    above: Option<u64>,
    service_tier: Option<String>,
}

/// Parses a field name of the per-token grammar; `None` for any other field.
fn price_field(name: &str) -> Option<PriceField> {
    let (kind, mut rest) = KINDS
        .iter()
        .find_map(|(prefix, kind)| name.strip_prefix(prefix).map(|rest| (*kind, rest)))?;
    let mut above = None;
    if let Some(after) = rest.strip_prefix("_above_") {
        let (count, after) = after.split_once("_tokens")?;
        let (digits, scale) = match count.strip_suffix('k') {
            Some(digits) => (digits, 1_000),
            None => (count, 1),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        above = Some(digits.parse::<u64>().ok()?.checked_mul(scale)?);
        rest = after;
    }
    let service_tier = match rest {
        "" => None,
        tier => {
            let tier = tier.strip_prefix('_')?;
            if tier.is_empty() || !tier.bytes().all(|b| b.is_ascii_lowercase()) {
                return None;
            }
            Some(if tier == "batches" { "batch" } else { tier }.to_owned())
        }
    };
    Some(PriceField {
        kind,
        above,
        service_tier,
    })
}

/// Fields that price something an audit entry does not count (web-search queries, audio and
/// image tokens, characters, seconds, sessions): the model's token prices are loaded and these
/// charges are not in its cost. `LoadReport::not_applied` counts them.
const NOT_COUNTED: &[&str] = &[
    "audio",
    "image",
    "video",
    "character",
    "second",
    "query",
    "session",
    "citation",
    "dbu",
    "pixel",
    "page",
    "cache_hit",
    "explicit_cache",
];

/// Names that make a field a price the loader must understand or refuse.
fn is_price_like(name: &str) -> bool {
    name.contains("cost") || name.contains("price") || name.contains("pricing")
}

/// Time zones the off-peak windows' weekdays may be read in, with their offsets in minutes.
/// Only zones without daylight saving time; any other is refused.
const FIXED_ZONES: &[(&str, i32)] = &[
    ("UTC", 0),
    ("Etc/UTC", 0),
    ("GMT", 0),
    ("Asia/Shanghai", 480),
    ("Asia/Hong_Kong", 480),
    ("Asia/Singapore", 480),
    ("Asia/Taipei", 480),
    ("Asia/Tokyo", 540),
    ("Asia/Seoul", 540),
    ("Asia/Kolkata", 330),
];

/// Fireworks AI bills cached input at half the input price when its entry states none.
const FIREWORKS_CACHE_READ_RATIO: Decimal = Decimal::from_parts(5, 0, 0, false, 1);

/// What a LiteLLM load did besides producing prices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadReport {
    /// The number of models loaded with prices.
    pub loaded: usize,
    /// Models skipped for having no per-token input and output prices (image, audio,
    /// per-second or per-query pricing), sorted by name.
    pub skipped: Vec<String>,
    /// Per rule of the file that the loader cannot apply, the models that have it (sorted):
    /// they are in the table, and never priced (their cost is `null` with a note naming the
    /// rule), rather than priced without the rule.
    pub refused: BTreeMap<String, Vec<String>>,
    /// Per field that prices what an audit entry does not count (web-search queries, audio or
    /// image tokens, characters, seconds), the number of models that have it. Their token
    /// prices are loaded; these charges are not in the cost.
    pub not_applied: BTreeMap<String, usize>,
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
        if NOT_MODELS.contains(&model.as_str()) {
            continue;
        }
        let fields: Fields<'_> =
            serde_json::from_str(entry.get()).map_err(|_| PriceFileError::Entry {
                model: model.clone(),
                found: excerpt(entry.get()),
            })?;
        match model_price(model, &fields, &mut report)? {
            Some(price) => {
                for rule in &price.refused {
                    report
                        .refused
                        .entry(rule.clone())
                        .or_default()
                        .push(model.clone());
                }
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
    table.refused = report
        .refused
        .iter()
        .map(|(rule, models)| (rule.clone(), models.len()))
        .collect();
    Ok((table, report))
}

/// The entry's price, or `None` when it has no per-token input and output prices.
fn model_price(
    model: &str,
    fields: &Fields<'_>,
    report: &mut LoadReport,
) -> Result<Option<ModelPrice>, PriceFileError> {
    let mut flat = Rates::default();
    let mut tiers: BTreeMap<u64, LongContextTier> = BTreeMap::new();
    let mut service_tiers: BTreeMap<String, ServiceTierRates> = BTreeMap::new();
    let mut refused = Vec::new();
    let mut not_applied = Vec::new();
    for (name, raw) in fields {
        if let Some(field) = price_field(name) {
            let Some(value) = decimal_field(model, fields, name)? else {
                continue;
            };
            match (&field.service_tier, field.above) {
                (None, None) => *field.kind.slot(&mut flat) = Some(value),
                (None, Some(above)) => {
                    let tier = tiers
                        .entry(above)
                        .or_insert_with(|| LongContextTier::empty(above));
                    match field.kind.of_tier(tier) {
                        Some(slot) => *slot = Some(value),
                        None => refused.push(name.clone()),
                    }
                }
                (Some(service), above) => {
                    let rates = service_tiers.entry(service.clone()).or_default();
                    let rates = match above {
                        None => &mut rates.flat,
                        Some(above) => rates.above.entry(above).or_default(),
                    };
                    *field.kind.slot(rates) = Some(value);
                }
            }
            continue;
        }
        match name.as_str() {
            TIERED_PRICING | OFF_PEAK_PRICING => continue, // read below
            PER_REQUEST => continue,
            _ => {}
        }
        if NOT_COUNTED.iter().any(|part| name.contains(part)) {
            if raw.get() != "null" {
                not_applied.push(name.clone());
            }
            continue;
        }
        if is_price_like(name) && raw.get() != "null" {
            refused.push(name.clone());
        }
    }
    let bands = bands(model, fields, &mut refused)?;
    let mut off_peak = off_peak(model, fields, &mut refused)?;
    let per_request = decimal_field(model, fields, PER_REQUEST)?;

    // Embedding entries sometimes leave the output price out: they have no output tokens.
    let is_embedding = fields
        .get(MODE)
        .is_some_and(|mode| mode.get() == "\"embedding\"");
    let (input, output) = match (flat.input, flat.output, bands.first()) {
        (Some(input), Some(output), _) => (input, output),
        (Some(input), None, None) if is_embedding => (input, Decimal::ZERO),
        (_, _, Some(first)) => (
            first.rates.input.unwrap_or_default(),
            first.rates.output.or(flat.output).unwrap_or_default(),
        ),
        _ => return Ok(None),
    };
    let provider = fields
        .get(PROVIDER)
        .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
        .unwrap_or_default();
    if !bands.is_empty() && (!tiers.is_empty() || !service_tiers.is_empty()) {
        refused.push(format!(
            "{TIERED_PRICING} with *_above_*_tokens or service-tier prices"
        ));
    }
    // Fireworks AI: cached input at half the input price when the entry states none (LiteLLM's
    // `with_default_cache_read_rate`), off-peak likewise.
    if provider.starts_with("fireworks_ai") && flat.cache_read.is_none() {
        flat.cache_read = Some(input * FIREWORKS_CACHE_READ_RATIO);
        if let Some(off_peak) = &mut off_peak {
            if off_peak.rates.cache_read.is_none() {
                off_peak.rates.cache_read = off_peak
                    .rates
                    .input
                    .map(|input| input * FIREWORKS_CACHE_READ_RATIO)
                    .or(flat.cache_read);
            }
        }
    }
    for field in not_applied {
        *report.not_applied.entry(field).or_default() += 1;
    }
    refused.sort();
    refused.dedup();
    let mut price = ModelPrice::per_token(input, output);
    price.cache_read = flat.cache_read;
    price.cache_write = flat.cache_write;
    price.cache_write_1h = flat.cache_write_1h;
    price.reasoning = flat.reasoning;
    price.long_context = tiers.into_values().collect();
    // xAI bills a prompt of exactly the threshold at the higher rate.
    price.inclusive_thresholds = provider == "xai";
    price.bands = bands;
    price.service_tiers = service_tiers;
    price.off_peak = off_peak;
    price.per_request = per_request;
    price.refused = refused;
    price.source = fields
        .get(SOURCE)
        .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
    Ok(Some(price))
}

/// `tiered_pricing`: `[{"range": [from, to], "input_cost_per_token": ..., ...}, ...]`. A band
/// key the loader does not know refuses the model.
fn bands(
    model: &str,
    fields: &Fields<'_>,
    refused: &mut Vec<String>,
) -> Result<Vec<Band>, PriceFileError> {
    let Some(raw) = fields.get(TIERED_PRICING) else {
        return Ok(Vec::new());
    };
    if raw.get() == "null" {
        return Ok(Vec::new());
    }
    let wrong = |reason: &str| PriceFileError::Field {
        model: model.to_owned(),
        field: TIERED_PRICING.to_owned(),
        reason: format!("{reason}, found {}", excerpt(raw.get())),
    };
    let list: Vec<Fields<'_>> =
        serde_json::from_str(raw.get()).map_err(|_| wrong("must be a list of objects"))?;
    let mut bands = Vec::new();
    for band_fields in &list {
        let Some(range) = band_fields.get("range") else {
            // A band without a range is not a price band (search entries' `max_results_range`).
            refused.extend(
                band_fields
                    .keys()
                    .map(|key| format!("{TIERED_PRICING}.{key}")),
            );
            continue;
        };
        let bounds: Vec<&RawValue> =
            serde_json::from_str(range.get()).map_err(|_| wrong("a range must be [from, to]"))?;
        let [from, to] = bounds.as_slice() else {
            return Err(wrong("a range must be [from, to]"));
        };
        let bound = |raw: &RawValue| {
            parse_json_number(raw.get())
                .ok()
                .filter(|value| value.fract().is_zero() && !value.is_sign_negative())
                .and_then(|value| u64::try_from(value).ok())
                .ok_or_else(|| wrong("a range's bounds must be whole token counts"))
        };
        let (from, to) = (bound(from)?, bound(to)?);
        let mut rates = Rates::default();
        for (key, _) in band_fields.iter().filter(|(key, _)| *key != "range") {
            match price_field(key) {
                Some(PriceField {
                    kind,
                    above: None,
                    service_tier: None,
                }) => *kind.slot(&mut rates) = decimal_field(model, band_fields, key)?,
                _ => refused.push(format!("{TIERED_PRICING}.{key}")),
            }
        }
        if rates.input.is_none() {
            refused.push(format!(
                "{TIERED_PRICING} band without input_cost_per_token"
            ));
        }
        bands.push(Band { from, to, rates });
    }
    bands.sort_by_key(|band| band.from);
    Ok(bands)
}

/// `off_peak_pricing`: rates, and the windows in which they apply.
fn off_peak(
    model: &str,
    fields: &Fields<'_>,
    refused: &mut Vec<String>,
) -> Result<Option<OffPeak>, PriceFileError> {
    let Some(raw) = fields.get(OFF_PEAK_PRICING) else {
        return Ok(None);
    };
    if raw.get() == "null" {
        return Ok(None);
    }
    let wrong = |reason: &str| PriceFileError::Field {
        model: model.to_owned(),
        field: OFF_PEAK_PRICING.to_owned(),
        reason: format!("{reason}, found {}", excerpt(raw.get())),
    };
    let block: Fields<'_> =
        serde_json::from_str(raw.get()).map_err(|_| wrong("must be an object"))?;
    let mut rates = Rates::default();
    let mut windows = Vec::new();
    let mut weekday_offset_minutes = 0;
    for (key, value) in &block {
        match key.as_str() {
            "windows" => {
                let list: Vec<Fields<'_>> = serde_json::from_str(value.get())
                    .map_err(|_| wrong("windows must be a list of objects"))?;
                for window in &list {
                    let mut hours = Vec::new();
                    let mut weekdays = WEEKDAYS_ALL;
                    for (key, value) in window {
                        match key.as_str() {
                            "hours_utc" => {
                                hours = hour_spans(value).ok_or_else(|| {
                                    wrong("hours_utc must be \"HH:MM-HH:MM\" or a list of them")
                                })?
                            }
                            "weekdays" => {
                                weekdays = weekday_bits(value).ok_or_else(|| {
                                    wrong("weekdays must be a list of ISO weekdays, 1 to 7")
                                })?;
                            }
                            other => refused.push(format!("{OFF_PEAK_PRICING}.windows.{other}")),
                        }
                    }
                    windows.push(OffPeakWindow { hours, weekdays });
                }
            }
            "hours_utc" => windows.push(OffPeakWindow {
                hours: hour_spans(value)
                    .ok_or_else(|| wrong("hours_utc must be \"HH:MM-HH:MM\" or a list of them"))?,
                weekdays: WEEKDAYS_ALL,
            }),
            "weekday_timezone" => {
                let zone: String = serde_json::from_str(value.get())
                    .map_err(|_| wrong("weekday_timezone must be a string"))?;
                match FIXED_ZONES.iter().find(|(name, _)| *name == zone) {
                    Some((_, offset)) => weekday_offset_minutes = *offset,
                    None => refused.push(format!("{OFF_PEAK_PRICING}.weekday_timezone {zone}")),
                }
            }
            key => match price_field(key) {
                Some(PriceField {
                    kind,
                    above: None,
                    service_tier: None,
                }) => *kind.slot(&mut rates) = decimal_field(model, &block, key)?,
                _ => refused.push(format!("{OFF_PEAK_PRICING}.{key}")),
            },
        }
    }
    Ok(Some(OffPeak {
        windows,
        weekday_offset_minutes,
        rates,
    }))
}

/// Every ISO weekday, bits 1 to 7.
const WEEKDAYS_ALL: u8 = 0b1111_1110;

/// `"HH:MM-HH:MM"` or a list of them, as minutes since midnight.
fn hour_spans(value: &RawValue) -> Option<Vec<(u32, u32)>> {
    let texts: Vec<String> = serde_json::from_str::<Vec<String>>(value.get())
        .or_else(|_| serde_json::from_str::<String>(value.get()).map(|one| vec![one]))
        .ok()?;
    texts
        .iter()
        .map(|text| {
            let (start, end) = text.split_once('-')?;
            Some((minute_of_day(start)?, minute_of_day(end)?))
        })
        .collect()
}

fn minute_of_day(text: &str) -> Option<u32> {
    let (hours, minutes) = text.trim().split_once(':')?;
    let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours < 24 && minutes < 60).then_some(hours * 60 + minutes)
}

fn weekday_bits(value: &RawValue) -> Option<u8> {
    let days: Vec<u8> = serde_json::from_str(value.get()).ok()?;
    days.iter().try_fold(0u8, |bits, &day| {
        (1..=7).contains(&day).then_some(bits | (1 << day))
    })
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
    fn every_threshold_is_read_and_the_highest_passed_applies() {
        let table = load(
            r#"{"both": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
                        "input_cost_per_token_above_128k_tokens": 2e-06,
                        "output_cost_per_token_above_200k_tokens": 3e-06}}"#,
        )
        .unwrap()
        .0;
        let both = table.resolve("both").unwrap().1;
        let thresholds: Vec<u64> = both
            .long_context_tiers()
            .iter()
            .map(|t| t.above_input_tokens)
            .collect();
        assert_eq!(thresholds, [128_000, 200_000]);
        let usage = |input| crate::cost::TokenUsage {
            input_tokens: Some(input),
            output_tokens: Some(1),
            ..Default::default()
        };
        // 128_001 × 0.000002 + 1 × 0.000002 (the 128k tier states no output price).
        assert_eq!(both.cost(&usage(128_001)), Ok(d("0.256004")));
        // Above 200k the 200k tier: its output price, and the input price it does not state
        // is the model's own (LiteLLM keeps one tier: the highest passed).
        // 200_001 × 0.000001 + 1 × 0.000003.
        assert_eq!(both.cost(&usage(200_001)), Ok(d("0.200004")));
    }

    #[test]
    fn field_names_follow_one_grammar() {
        let f = |name| price_field(name);
        assert_eq!(
            f("cache_creation_input_token_cost_above_1hr_above_200k_tokens"),
            Some(PriceField {
                kind: Kind::CacheWrite1h,
                above: Some(200_000),
                service_tier: None
            })
        );
        assert_eq!(
            f("input_cost_per_token_above_272k_tokens_priority"),
            Some(PriceField {
                kind: Kind::Input,
                above: Some(272_000),
                service_tier: Some("priority".into())
            })
        );
        assert_eq!(
            f("output_cost_per_token_batches"),
            Some(PriceField {
                kind: Kind::Output,
                above: None,
                service_tier: Some("batch".into())
            })
        );
        assert_eq!(f("input_cost_per_token_cache_hit"), None);
        assert_eq!(f("input_cost_per_token_above_k_tokens"), None);
        assert_eq!(f("input_cost_per_audio_token"), None);
    }

    #[test]
    fn an_unknown_rule_leaves_its_model_unpriced_and_is_counted() {
        let (table, report) = load(
            r#"{"odd": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
                        "input_cost_per_token_when_raining": 9e-06},
                "fine": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
                         "search_context_cost_per_query": {"search_context_size_low": 0.03}}}"#,
        )
        .unwrap();
        assert_eq!(
            report.refused.get("input_cost_per_token_when_raining"),
            Some(&vec!["odd".to_owned()])
        );
        assert_eq!(
            table
                .refused_rules()
                .get("input_cost_per_token_when_raining"),
            Some(&1)
        );
        assert_eq!(
            report.not_applied.get("search_context_cost_per_query"),
            Some(&1)
        );
        let usage = crate::cost::TokenUsage {
            input_tokens: Some(1),
            output_tokens: Some(1),
            ..Default::default()
        };
        let err = table.cost("odd", &usage).unwrap_err().to_string();
        assert!(err.contains("input_cost_per_token_when_raining"), "{err}");
        assert_eq!(table.cost("fine", &usage), Ok(d("0.000003")));
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
