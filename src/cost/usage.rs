//! Token usage as the pricing sees it, and the reasons a cost cannot be computed.

use std::fmt;

/// The token counts of one call, in the OpenTelemetry GenAI conventions' terms.
///
/// `input_tokens` includes cache reads and cache writes, `output_tokens` includes reasoning
/// tokens. Anthropic's API reports cache tokens *beside* its `input_tokens`: add them in first.
/// Absent cache and reasoning counts count as 0; absent input or output counts leave the cost
/// unknown.
///
/// ```
/// use tracing_llm_audit::cost::TokenUsage;
///
/// // Anthropic reported input_tokens: 50, cache_read_input_tokens: 950, output_tokens: 200.
/// let usage = TokenUsage {
///     input_tokens: Some(50 + 950),
///     output_tokens: Some(200),
///     cache_read_tokens: Some(950),
///     ..TokenUsage::default()
/// };
/// assert_eq!(usage.cache_write_tokens, None);
/// ```
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenUsage {
    /// All input tokens, cached ones included.
    pub input_tokens: Option<u64>,
    /// All output tokens, reasoning ones included.
    pub output_tokens: Option<u64>,
    /// Input tokens read from the prompt cache.
    pub cache_read_tokens: Option<u64>,
    /// Input tokens written to the prompt cache, for any duration.
    pub cache_write_tokens: Option<u64>,
    /// The part of `cache_write_tokens` written for one hour (billed at the 1-hour price);
    /// the rest were written for the default 5 minutes.
    pub cache_write_1h_tokens: Option<u64>,
    /// Reasoning ("thinking") output tokens.
    pub reasoning_tokens: Option<u64>,
    /// `true` when the operation has no output tokens (embeddings): absent output counts as 0.
    pub output_optional: bool,
}

/// The disjoint token counts that are each billed at one price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BillableTokens {
    /// The whole prompt, for choosing a long-context tier.
    pub(crate) prompt_tokens: u64,
    pub(crate) uncached_input: u64,
    pub(crate) cache_read: u64,
    pub(crate) cache_write: u64,
    /// The part of `cache_write` written for one hour.
    pub(crate) cache_write_1h: u64,
    pub(crate) visible_output: u64,
    pub(crate) reasoning: u64,
}

impl TokenUsage {
    /// Splits the usage into disjoint counts, checking that the parts fit in their wholes.
    /// Refuses a count no real call has: more than [`MAX_PLAUSIBLE_TOKENS`]. Such a count (a
    /// server's `u64::MAX`, a unit mistake) is kept in the entry, but priced it would be a
    /// bill of trillions of dollars, so it is not priced at all.
    pub(crate) fn check_plausible(&self) -> Result<(), CostError> {
        let counts = [
            ("input_tokens", self.input_tokens),
            ("output_tokens", self.output_tokens),
            ("cache_read_tokens", self.cache_read_tokens),
            ("cache_write_tokens", self.cache_write_tokens),
            ("cache_write_1h_tokens", self.cache_write_1h_tokens),
            ("reasoning_tokens", self.reasoning_tokens),
        ];
        match counts
            .into_iter()
            .find(|(_, n)| n.is_some_and(|n| n > MAX_PLAUSIBLE_TOKENS))
        {
            Some((name, Some(n))) => Err(CostError::InconsistentUsage(format!(
                "{name} is {n}, more than the {MAX_PLAUSIBLE_TOKENS} tokens any real call has: \
                 kept, but not priced"
            ))),
            _ => Ok(()),
        }
    }

    pub(crate) fn billable(&self) -> Result<BillableTokens, CostError> {
        let input = self
            .input_tokens
            .ok_or(CostError::UsageNotRecorded("input_tokens"))?;
        let output = match self.output_tokens {
            Some(output) => output,
            None if self.output_optional => 0,
            None => return Err(CostError::UsageNotRecorded("output_tokens")),
        };
        let cache_read = self.cache_read_tokens.unwrap_or(0);
        let cache_write = self.cache_write_tokens.unwrap_or(0);
        let reasoning = self.reasoning_tokens.unwrap_or(0);
        let cache_write_1h = self.cache_write_1h_tokens.unwrap_or(0);
        if cache_write_1h > cache_write {
            return Err(CostError::InconsistentUsage(format!(
                "cache_write_1h_tokens ({cache_write_1h}) exceed cache_write_tokens \
                 ({cache_write}), of which they are a part"
            )));
        }

        let uncached_input = cache_read
            .checked_add(cache_write)
            .and_then(|cached| input.checked_sub(cached))
            .ok_or_else(|| {
                CostError::InconsistentUsage(format!(
                    "cache_read_tokens ({cache_read}) plus cache_write_tokens ({cache_write}) \
                     exceed input_tokens ({input}), but under the GenAI conventions input_tokens \
                     includes cached tokens, so add cache tokens into input_tokens when \
                     recording"
                ))
            })?;
        let visible_output = output.checked_sub(reasoning).ok_or_else(|| {
            CostError::InconsistentUsage(format!(
                "reasoning_tokens ({reasoning}) exceed output_tokens ({output}), but under the \
                 GenAI conventions output_tokens includes reasoning tokens, so add reasoning \
                 tokens into output_tokens when recording"
            ))
        })?;
        Ok(BillableTokens {
            prompt_tokens: input,
            uncached_input,
            cache_read,
            cache_write,
            cache_write_1h,
            visible_output,
            reasoning,
        })
    }
}

/// The most tokens a single call is taken to have (ten billion: a thousand times the largest
/// context window there is). A count above it is kept in the entry and not priced.
pub const MAX_PLAUSIBLE_TOKENS: u64 = 10_000_000_000;

/// Why a call's cost could not be computed.
///
/// The message is written verbatim into the audit entry's `cost_note`: one sentence that
/// names the problem.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CostError {
    /// The price table has no price for the model, even after stripping provider prefixes and
    /// snapshot suffixes.
    #[error("no price for model {} in the price table", Quoted(.0))]
    UnknownModel(String),
    /// A token count the cost needs was not recorded (the field's name is given).
    #[error("the cost is unknown because the call recorded no {0}")]
    UsageNotRecorded(&'static str),
    /// The token counts contradict each other, or are too large to price.
    #[error("{0}")]
    InconsistentUsage(String),
    /// The call needs a price the model does not state (a service tier, a 1-hour cache write,
    /// a prompt-length tier of a service tier), or the model has a rule of its price file that
    /// the table cannot apply: the cost is not guessed from another price.
    #[error("not priced: {0}")]
    NoPriceFor(String),
}

impl CostError {
    pub(crate) fn overflow() -> Self {
        Self::InconsistentUsage(
            "the token counts are too large to price without overflowing".to_owned(),
        )
    }
}

/// Shows a model name quoted and escaped, cut short if it is long: it comes from the
/// application and ends up in an audit entry.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX_CHARS: usize = 120;
        match self.0.char_indices().nth(MAX_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(f, "{:?}…", &self.0[..cut]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: Option<u64>, output: Option<u64>) -> TokenUsage {
        TokenUsage {
            input_tokens: input,
            output_tokens: output,
            ..TokenUsage::default()
        }
    }

    #[test]
    fn absent_input_or_output_is_not_zero() {
        assert_eq!(
            usage(None, Some(1)).billable(),
            Err(CostError::UsageNotRecorded("input_tokens"))
        );
        assert_eq!(
            usage(Some(1), None).billable(),
            Err(CostError::UsageNotRecorded("output_tokens"))
        );
    }

    #[test]
    fn embeddings_may_omit_output() {
        let u = TokenUsage {
            output_optional: true,
            ..usage(Some(7), None)
        };
        assert_eq!(u.billable().unwrap().visible_output, 0);
    }

    #[test]
    fn cached_tokens_are_part_of_input() {
        let u = TokenUsage {
            cache_read_tokens: Some(60),
            cache_write_tokens: Some(40),
            reasoning_tokens: Some(5),
            ..usage(Some(100), Some(5))
        };
        let b = u.billable().unwrap();
        assert_eq!((b.uncached_input, b.visible_output), (0, 0));
        assert_eq!(b.prompt_tokens, 100);
    }

    #[test]
    fn parts_larger_than_their_whole_are_inconsistent() {
        let u = TokenUsage {
            cache_read_tokens: Some(u64::MAX),
            cache_write_tokens: Some(1),
            ..usage(Some(100), Some(0))
        };
        let err = u.billable().unwrap_err().to_string();
        assert!(err.contains("input_tokens includes cached tokens"), "{err}");
        let u = TokenUsage {
            reasoning_tokens: Some(6),
            ..usage(Some(0), Some(5))
        };
        let err = u.billable().unwrap_err().to_string();
        assert!(
            err.contains("reasoning_tokens (6) exceed output_tokens (5)"),
            "{err}"
        );
    }

    #[test]
    fn messages_are_single_sentences() {
        assert_eq!(
            CostError::UnknownModel("foo-1".into()).to_string(),
            r#"no price for model "foo-1" in the price table"#
        );
        assert_eq!(
            CostError::UsageNotRecorded("output_tokens").to_string(),
            "the cost is unknown because the call recorded no output_tokens"
        );
    }

    #[test]
    fn unknown_model_names_are_escaped_and_bounded() {
        let msg = CostError::UnknownModel("a\nb".into()).to_string();
        assert!(msg.contains(r#""a\nb""#), "{msg}");
        let msg = CostError::UnknownModel("x".repeat(10_000)).to_string();
        assert!(msg.len() < 200, "{}", msg.len());
        assert!(msg.contains('…'));
    }
}
