//! Names as people see them. An app's or an account's name is read by a person on the consent
//! screen and in the console, so the rules judge what that person sees, not the code points:
//!
//! - Names and descriptions hold no invisible formatting characters (general category Cf:
//!   direction overrides and isolates, zero-width spaces and joiners, the byte-order mark, tag
//!   characters). With them `"\u{202e}yekhctaL\u{202c}"` displays as "Latchkey".
//! - Look-alike checks compare [`fold_name`]s: the Unicode confusable skeleton (UTS #39) of the
//!   NFKC-normalized, case-folded name, so that "L\u{0430}tchkey" with a Cyrillic `а` folds like
//!   "Latchkey".
//! - An app's name does not imitate the platform's name, claim a standing only the platform can
//!   show, or mix alphabets the way homograph attacks do ([`name_refusal`]).

use caseless::Caseless as _;
use unicode_normalization::UnicodeNormalization as _;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};

use super::PlatformError;

/// Words that claim a standing only the platform can show.
const STANDING_WORDS: [&str; 2] = ["official", "verified"];

/// The first invisible formatting character (general category Cf) of `text`, if any.
pub fn format_character(text: &str) -> Option<char> {
    text.chars()
        .find(|c| c.general_category() == GeneralCategory::Format)
}

/// Refuses a `field` whose `value` holds an invisible formatting character, naming its code
/// point rather than echoing it.
pub fn refuse_format_characters(field: &str, value: &str) -> Result<(), PlatformError> {
    match format_character(value) {
        Some(c) => Err(PlatformError::invalid(
            field,
            format!(
                "must not contain invisible formatting characters such as U+{:04X} (direction \
                 overrides, zero-width characters): they make text display as something it is \
                 not",
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

/// `text` fit to quote in a message: control and formatting characters written as `\u{…}`, so
/// that a name stored before these rules cannot reorder or hide the message around it.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || c.general_category() == GeneralCategory::Format {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// What a name looks like, so that names a person would confuse fold alike:
///
/// 1. NFKC: compatibility forms become the letters they show (full-width `Ｐ`, ligature `ﬁ`);
/// 2. the confusable skeleton (UTS #39) of the text as written, which reads capitals that
///    imitate others (Cyrillic `Н` for `H`) and drops default-ignorable characters;
/// 3. full case folding, then the skeleton again, which reads small letters that imitate
///    others (Cyrillic `а` for `a`, Greek `ο` for `o`) and `I`/`l`/`1` alike;
/// 4. common leetspeak digits and symbols as the letters they stand for, and letters and digits
///    only (spacing, punctuation and accents dropped).
pub fn fold_name(name: &str) -> String {
    let compatible: String = name.nfkc().collect();
    let written: String = unicode_security::skeleton(&compatible).collect();
    let folded: String = written.chars().default_case_fold().collect();
    unicode_security::skeleton(&folded)
        .default_case_fold()
        .filter_map(|c| match c {
            '0' => Some('o'),
            '1' | '|' | 'i' => Some('l'),
            '3' => Some('e'),
            '4' | '@' => Some('a'),
            '5' | '$' => Some('s'),
            '7' => Some('t'),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// Why an app's name is refused whatever other apps are called: it has nothing to read,
/// imitates the platform's name, claims a standing that only the platform can show, or mixes
/// scripts the way homograph attacks do (Latin with Cyrillic or Greek). The name has passed
/// [`refuse_format_characters`].
pub fn name_refusal(name: &str, platform: &str) -> Option<String> {
    use unicode_security::{RestrictionLevel, RestrictionLevelDetection as _};
    let folded = fold_name(name);
    if folded.is_empty() {
        return Some("must contain letters or digits".into());
    }
    let own = fold_name(platform);
    if !own.is_empty() && folded.contains(&own) {
        return Some(format!(
            "must not contain or imitate \"{}\", the platform's name (look-alike letters from \
             other alphabets, digits for letters, spacing and case are read as what they show)",
            escaped(platform)
        ));
    }
    if STANDING_WORDS
        .iter()
        .any(|w| folded.contains(&fold_name(w)))
    {
        return Some(format!(
            "must not claim to be official or verified: {} shows an app's standing itself",
            escaped(platform)
        ));
    }
    // Scripts are judged on the letters and digits as displayed: spacing and punctuation
    // belong to none, and full-width letters are the letters they show.
    let letters: String = name.nfkc().filter(|c| c.is_alphanumeric()).collect();
    if letters.as_str().detect_restriction_level() > RestrictionLevel::ModeratelyRestrictive {
        return Some(
            "uses look-alike characters or mixes alphabets the way imitations do (for \
             example Latin with Cyrillic letters); write it in plain letters of one alphabet"
                .into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookalike_names_fold_together() {
        assert_eq!(fold_name("Latchkey"), fold_name("L4tchk3y"));
        assert_eq!(fold_name("Paypal"), fold_name("PayPa1"));
        assert!(fold_name("Official LATCHKEY tools").contains(&fold_name("Latchkey")));
        assert_ne!(fold_name("Toolsmith"), fold_name("Latchkey"));
    }

    #[test]
    fn unicode_confusables_compatibility_forms_spacing_and_case_fold_together() {
        let paypal = fold_name("PayPal");
        for lookalike in [
            "P\u{0430}yP\u{0430}l",        // Cyrillic a
            "P\u{03b1}yP\u{03b1}l",        // Greek alpha
            "\u{FF30}\u{FF41}\u{FF59}Pal", // full-width letters
            "\u{0420}\u{0410}YPAL",        // Cyrillic capitals Р and А
            "PAYPAL",
            "Pay Pal",
            "pay-pal",
            "P.a.y.P.a.l",
            "PayPaI", // capital I for l
            "Pay\u{3164}Pal",
        ] {
            assert_eq!(fold_name(lookalike), paypal, "{lookalike}");
        }
        assert_ne!(fold_name("PayPals Friend"), paypal);
        // Names written wholly in another script fold to what they show.
        assert_eq!(
            fold_name("\u{041d}\u{041e}\u{041c}\u{0415}"),
            fold_name("Home")
        );
        // Full case folding, not just lower case: ß is ss.
        assert_eq!(fold_name("STRASSE"), fold_name("Stra\u{df}e"));
    }

    #[test]
    fn format_characters_are_found_and_named_not_echoed() {
        for (text, found) in [
            ("\u{202e}yekhctaL\u{202c}", '\u{202e}'),
            ("Latch\u{200d}key", '\u{200d}'),
            ("Latch\u{200b}key", '\u{200b}'),
            ("\u{2066}Latchkey\u{2069}", '\u{2066}'),
            ("Latchkey\u{200e}", '\u{200e}'),
            ("\u{061c}Latchkey", '\u{061c}'),
            ("\u{feff}Latchkey", '\u{feff}'),
            ("Latch\u{00ad}key", '\u{00ad}'),
            ("Latchkey\u{e0041}", '\u{e0041}'),
        ] {
            assert_eq!(
                format_character(text),
                Some(found),
                "{}",
                text.escape_unicode()
            );
            let e = refuse_format_characters("name", text)
                .expect_err("refused")
                .to_string();
            assert!(
                e.contains(&format!("U+{:04X}", u32::from(found))) && e.contains("invisible"),
                "{e}"
            );
            assert_eq!(
                format_character(&e),
                None,
                "the message does not echo it: {e}"
            );
        }
        for text in [
            "Caf\u{e9} \u{dc}n\u{ef}code",
            "\u{65e5}\u{672c}\u{8a9e}\u{30a2}\u{30d7}\u{30ea}",
            "\u{645}\u{62b}\u{627}\u{644}",
            "Line one\nline two",
        ] {
            assert_eq!(format_character(text), None, "{text}");
            assert!(refuse_format_characters("description", text).is_ok());
        }
    }

    #[test]
    fn escaped_text_shows_hidden_characters_as_code_points() {
        assert_eq!(
            escaped("\u{202e}yekhctaL\u{202c}"),
            "\\u{202e}yekhctaL\\u{202c}"
        );
        assert_eq!(escaped("Caf\u{e9}\n"), "Caf\u{e9}\\u{a}");
    }

    #[test]
    fn names_that_imitate_claim_a_standing_mix_alphabets_or_say_nothing_are_refused() {
        for (name, says) in [
            ("L\u{0430}tchkey", "platform's name"),
            ("L\u{03b1}tchkey Sync", "platform's name"),
            ("LATCHK\u{0395}Y", "platform's name"),
            ("\u{ff2c}atchkey", "platform's name"),
            ("L A T C H K E Y", "platform's name"),
            ("P\u{0430}ypal Sync", "alphabets"),
            ("Official Sync", "official"),
            ("Verified Backups", "verified"),
            ("0ff\u{0456}cial Backups", "official"),
            ("\u{1F510}\u{1F510}", "letters or digits"),
            ("---", "letters or digits"),
        ] {
            let reason = name_refusal(name, "Latchkey").unwrap_or_default();
            assert!(reason.contains(says), "{name}: {reason}");
        }
        for name in [
            "Toolsmith Deploy",
            "Caf\u{e9} \u{dc}n\u{ef}code",
            "\u{65e5}\u{672c}\u{8a9e}\u{30a2}\u{30d7}\u{30ea}",
            "\u{6771}\u{4eac} Tools",
            "\u{041c}\u{043e}\u{0439} \u{0431}\u{043e}\u{0442}",
            "\u{ff21}\u{ff22}\u{ff23}\u{30a2}\u{30d7}\u{30ea}",
        ] {
            assert_eq!(name_refusal(name, "Latchkey"), None, "{name}");
        }
    }
}
