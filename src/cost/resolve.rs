//! Model-name normalization: the provider prefixes and snapshot suffixes that resolution may
//! remove. Plain string slicing, no allocation, no regular expressions.
//!
//! Only prefixes of routes that bill at the provider's own list price are removed. Vertex AI
//! (`vertex_ai/`), Azure, Bedrock's regional endpoints (`us.`, `eu.`, `apac.`...) and the
//! government regions charge differently, so such names stay unknown unless the table has
//! them: an unknown cost is better than a wrong one in an audit trail.

/// Prefixes removed before a second lookup, compared without regard to ASCII case.
const PROVIDER_PREFIXES: &[&str] = &[
    "anthropic/",
    "openai/",
    "gemini/",
    "google/",
    "models/",
    "bedrock/",
    // Bedrock model ids: `global.anthropic.claude-…` bills at Anthropic's list price.
    "global.",
    "anthropic.",
];

/// LiteLLM's name for a provider, from the GenAI conventions' `gen_ai.provider.name` (or
/// LiteLLM's own name, as it is): the prefix of that provider's entries in a price file.
pub(crate) fn litellm_prefix(provider: &str) -> Option<&'static str> {
    const PROVIDERS: &[(&str, &str)] = &[
        ("anthropic", "anthropic"),
        ("openai", "openai"),
        ("gcp.gemini", "gemini"),
        ("gemini", "gemini"),
        ("gcp.vertex_ai", "vertex_ai"),
        ("vertex_ai", "vertex_ai"),
        ("aws.bedrock", "bedrock"),
        ("bedrock", "bedrock"),
        ("azure.ai.openai", "azure"),
        ("azure", "azure"),
        ("azure.ai.inference", "azure_ai"),
        ("azure_ai", "azure_ai"),
        ("x_ai", "xai"),
        ("xai", "xai"),
        ("deepseek", "deepseek"),
        ("mistral_ai", "mistral"),
        ("mistral", "mistral"),
        ("groq", "groq"),
        ("perplexity", "perplexity"),
        ("cohere", "cohere"),
        ("ibm.watsonx.ai", "watsonx"),
        ("fireworks_ai", "fireworks_ai"),
        ("together_ai", "together_ai"),
        ("openrouter", "openrouter"),
    ];
    let provider = provider.trim();
    PROVIDERS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(provider))
        .map(|(_, prefix)| *prefix)
}

/// Removes every leading provider prefix (`openai/`, `models/`, `anthropic.`...).
pub(crate) fn strip_provider_prefix(name: &str) -> &str {
    let mut rest = name;
    while let Some(stripped) = PROVIDER_PREFIXES
        .iter()
        .find_map(|prefix| strip_prefix_ignore_ascii_case(rest, prefix))
    {
        rest = stripped;
    }
    rest
}

/// Removes one snapshot or version suffix, if the name ends with one: `-20250929`,
/// `@20240620`, `-2024-08-06`, `-latest`, `-001`, Bedrock's `-v1:0`. Returns `None` when the
/// name has no such suffix. Never removes anything else: `gpt-4o-audio-preview` is not
/// `gpt-4o`.
pub(crate) fn strip_snapshot_suffix(name: &str) -> Option<&str> {
    let (head, tag) = name.rsplit_once(['-', '@'])?;
    if head.is_empty() {
        return None;
    }
    if is_all_digits(tag, 8) || is_all_digits(tag, 3) || tag.eq_ignore_ascii_case("latest") {
        return Some(head);
    }
    if is_bedrock_version(tag) {
        return Some(head);
    }
    // `-2024-08-06`: the tag is the day; the head ends with `-YYYY-MM`.
    if is_all_digits(tag, 2) {
        let (rest, month) = head.rsplit_once('-')?;
        let (base, year) = rest.rsplit_once('-')?;
        if is_all_digits(month, 2) && is_all_digits(year, 4) && !base.is_empty() {
            return Some(base);
        }
    }
    None
}

/// `v1:0`, `v2:1`...: Bedrock's model-version tag.
fn is_bedrock_version(tag: &str) -> bool {
    let Some(version) = tag.strip_prefix('v') else {
        return false;
    };
    let Some((major, minor)) = version.split_once(':') else {
        return false;
    };
    is_digits(major) && is_digits(minor)
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_all_digits(s: &str, len: usize) -> bool {
    s.len() == len && is_digits(s)
}

fn strip_prefix_ignore_ascii_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
        .filter(|rest| !rest.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fully_stripped(name: &str) -> &str {
        let mut name = strip_provider_prefix(name);
        while let Some(shorter) = strip_snapshot_suffix(name) {
            name = shorter;
        }
        name
    }

    #[test]
    fn strips_known_provider_prefixes_only() {
        assert_eq!(strip_provider_prefix("openai/gpt-4o"), "gpt-4o");
        assert_eq!(
            strip_provider_prefix("models/gemini-2.5-pro"),
            "gemini-2.5-pro"
        );
        assert_eq!(strip_provider_prefix("Anthropic/claude-x"), "claude-x");
        assert_eq!(
            strip_provider_prefix("global.anthropic.claude-sonnet-4-5-20250929-v1:0"),
            "claude-sonnet-4-5-20250929-v1:0"
        );
        assert_eq!(
            strip_provider_prefix("vertex_ai/claude-3-5-haiku"),
            "vertex_ai/claude-3-5-haiku"
        );
        assert_eq!(
            strip_provider_prefix("us.anthropic.claude-x"),
            "us.anthropic.claude-x"
        );
        assert_eq!(strip_provider_prefix("openai/"), "openai/");
    }

    #[test]
    fn strips_snapshot_suffixes() {
        for (name, base) in [
            ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
            ("gpt-4o-2024-08-06", "gpt-4o"),
            ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
            ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),
            ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
            ("gemini-2.0-flash-001", "gemini-2.0-flash"),
            (
                "anthropic.claude-3-5-haiku-20241022-v1:0",
                "claude-3-5-haiku",
            ),
            ("o1-2024-12-17", "o1"),
        ] {
            assert_eq!(fully_stripped(name), base, "{name}");
        }
    }

    #[test]
    fn never_strips_a_meaningful_part() {
        for name in [
            "gpt-4o-audio-preview",
            "gpt-4o",
            "o3",
            "claude-opus-4-1",
            "gemini-2.5-flash-lite",
            "text-embedding-3-small",
            "gpt-4.1-nano",
            "-20250101",
            "gemini-2.5-pro-preview-06-05",
        ] {
            assert_eq!(strip_snapshot_suffix(name), None, "{name}");
        }
    }
}
