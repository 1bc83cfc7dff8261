//! What an SMS body costs: GSM-7 (160 characters in one segment, 153 per part when
//! concatenated; extension characters such as `€` or `{` take two) or UCS-2 (70,
//! then 67 per part, counted in UTF-16 units). One character outside GSM-7 turns
//! the whole message into UCS-2, so `transliterate_to_gsm7` offers the cheap form:
//! Spanish keeps `é ñ ü ¿ ¡` (they are GSM-7) and loses only the accents GSM-7
//! lacks (`á í ó ú` → `a i o u`).
//!
//! No maintained crate does this (3GPP TS 23.038), so it is written here.

/// The 3GPP TS 23.038 default alphabet, in code order (0x1B is the escape to the
/// extension table and is not a character of its own).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// Characters reachable through the escape: two septets each.
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

const GSM7_SINGLE_SEGMENT: usize = 160;
const GSM7_PART: usize = 153;
const UCS2_SINGLE_SEGMENT: usize = 70;
const UCS2_PART: usize = 67;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gsm7 => "GSM-7",
            Self::Ucs2 => "UCS-2",
        }
    }
}

/// The encoding a text needs and how many segments it is billed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
    pub segments: usize,
    /// Characters the user sees.
    pub characters: usize,
}

/// Septets `c` takes in GSM-7, or `None` when it is not in the alphabet.
/// Septets of each ASCII character (0: not in GSM-7), from the tables above:
/// most text is ASCII, and looking it up beats scanning the alphabet.
const ASCII_SEPTETS: [u8; 128] = {
    let mut table = [0u8; 128];
    let (basic, extension) = (GSM7_BASIC.as_bytes(), GSM7_EXTENSION.as_bytes());
    let mut index = 0;
    while index < extension.len() {
        if extension[index] < 128 {
            table[extension[index] as usize] = 2;
        }
        index += 1;
    }
    index = 0;
    while index < basic.len() {
        // Bytes of multi-byte characters are all 128 or more.
        if basic[index] < 128 && basic[index] != 0x1b {
            table[basic[index] as usize] = 1;
        }
        index += 1;
    }
    table
};

pub fn gsm7_septets(c: char) -> Option<usize> {
    if c.is_ascii() {
        return match ASCII_SEPTETS[c as usize] {
            0 => None,
            septets => Some(usize::from(septets)),
        };
    }
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|c| gsm7_septets(c).is_some())
}

/// Characters of `text` that force UCS-2, each once, in order of appearance.
pub fn non_gsm7_characters(text: &str) -> Vec<char> {
    let mut found = Vec::new();
    for c in text.chars() {
        if gsm7_septets(c).is_none() && !found.contains(&c) {
            found.push(c);
        }
    }
    found
}

pub fn analyze(text: &str) -> SegmentInfo {
    let characters = text.chars().count();
    if is_gsm7(text) {
        let sizes: Vec<usize> = text.chars().filter_map(gsm7_septets).collect();
        let units = sizes.iter().sum();
        SegmentInfo {
            encoding: Encoding::Gsm7,
            units,
            segments: count_segments(&sizes, units, GSM7_SINGLE_SEGMENT, GSM7_PART),
            characters,
        }
    } else {
        let sizes: Vec<usize> = text.chars().map(char::len_utf16).collect();
        let units = sizes.iter().sum();
        SegmentInfo {
            encoding: Encoding::Ucs2,
            units,
            segments: count_segments(&sizes, units, UCS2_SINGLE_SEGMENT, UCS2_PART),
            characters,
        }
    }
}

/// Concatenated parts never split a character (an escape pair or a surrogate
/// pair), so a part may carry one unit less than its capacity.
fn count_segments(sizes: &[usize], total: usize, single: usize, part: usize) -> usize {
    if total == 0 {
        return 0;
    }
    if total <= single {
        return 1;
    }
    let mut segments = 1;
    let mut used = 0;
    for &size in sizes {
        if used + size > part {
            segments += 1;
            used = 0;
        }
        used += size;
    }
    segments
}

/// Replaces what GSM-7 lacks with its nearest GSM-7 form: accented vowels lose the
/// accent, typographic quotes and dashes become plain ones, anything else without
/// a sensible form becomes `?`. Text that is already GSM-7 is returned unchanged.
pub fn transliterate_to_gsm7(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if gsm7_septets(c).is_some() {
            out.push(c);
            continue;
        }
        match replacement(c) {
            Some(replacement) => out.push_str(replacement),
            None => out.push('?'),
        }
    }
    out
}

fn replacement(c: char) -> Option<&'static str> {
    Some(match c {
        'á' | 'â' | 'ã' | 'ā' | 'ą' => "a",
        'Á' | 'À' | 'Â' | 'Ã' | 'Ā' | 'Ą' => "A",
        'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
        'È' | 'Ê' | 'Ë' | 'Ē' | 'Ę' | 'Ě' => "E",
        'í' | 'î' | 'ï' | 'ī' => "i",
        'Í' | 'Ì' | 'Î' | 'Ï' | 'Ī' => "I",
        'ó' | 'ô' | 'õ' | 'ō' | 'ő' => "o",
        'Ó' | 'Ò' | 'Ô' | 'Õ' | 'Ō' | 'Ő' => "O",
        'ú' | 'û' | 'ū' | 'ű' | 'ů' => "u",
        'Ú' | 'Ù' | 'Û' | 'Ū' | 'Ű' | 'Ů' => "U",
        'ý' | 'ÿ' => "y",
        'Ý' | 'Ÿ' => "Y",
        'ç' | 'ć' | 'č' => "c",
        'Ć' | 'Č' => "C",
        'ń' | 'ň' => "n",
        'ś' | 'š' => "s",
        'Ś' | 'Š' => "S",
        'ź' | 'ż' | 'ž' => "z",
        'Ź' | 'Ż' | 'Ž' => "Z",
        'ł' => "l",
        'Ł' => "L",
        'œ' => "oe",
        'Œ' => "OE",
        '‘' | '’' | '‚' | '′' | '´' | '`' => "'",
        '“' | '”' | '„' | '″' | '«' | '»' => "\"",
        '–' | '—' | '‐' | '‑' | '−' => "-",
        '…' => "...",
        '•' | '·' => "*",
        '\u{a0}' | '\u{2007}' | '\u{202f}' | '\u{2009}' | '\t' => " ",
        '\u{200b}' | '\u{200d}' | '\u{fe0f}' => "",
        '¢' => "c",
        '°' => "o",
        'º' => "o",
        'ª' => "a",
        '×' => "x",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_tables_have_the_standard_sizes() {
        assert_eq!(GSM7_BASIC.chars().count(), 128);
        assert_eq!(GSM7_EXTENSION.chars().count(), 10);
    }

    #[test]
    fn ascii_lookup_agrees_with_the_alphabet() {
        for c in (0u8..128).map(char::from) {
            let expected = if c != '\u{1b}' && GSM7_BASIC.contains(c) {
                Some(1)
            } else if GSM7_EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            };
            assert_eq!(gsm7_septets(c), expected, "{c:?}");
        }
    }

    #[test]
    fn spanish_letters_in_gsm7_stay_gsm7() {
        let info = analyze("¡Hola Ñandú! ¿Café?");
        assert_eq!(info.encoding, Encoding::Ucs2, "ú is not GSM-7");
        let info = analyze("¡Hola Ñandu! ¿Café? pingüino");
        assert_eq!(info.encoding, Encoding::Gsm7);
        assert_eq!(info.segments, 1);
    }

    #[test]
    fn one_accent_turns_the_message_into_ucs2_and_transliteration_turns_it_back() {
        let body = "Tu código de descuento es BIENVENIDA10";
        assert_eq!(analyze(body).encoding, Encoding::Ucs2);
        assert_eq!(non_gsm7_characters(body), vec!['ó']);
        let plain = transliterate_to_gsm7(body);
        assert_eq!(plain, "Tu codigo de descuento es BIENVENIDA10");
        assert_eq!(analyze(&plain).encoding, Encoding::Gsm7);
    }

    #[test]
    fn segment_boundaries() {
        assert_eq!(analyze("").segments, 0);
        assert_eq!(analyze(&"a".repeat(160)).segments, 1);
        assert_eq!(analyze(&"a".repeat(161)).segments, 2);
        assert_eq!(analyze(&"a".repeat(306)).segments, 2);
        assert_eq!(analyze(&"a".repeat(307)).segments, 3);
        assert_eq!(analyze(&"á".repeat(70)).segments, 1);
        assert_eq!(analyze(&"á".repeat(71)).segments, 2);
        assert_eq!(analyze(&"á".repeat(134)).segments, 2);
        assert_eq!(analyze(&"á".repeat(135)).segments, 3);
    }

    #[test]
    fn extension_characters_count_twice_and_never_split() {
        let info = analyze(&"€".repeat(80));
        assert_eq!((info.units, info.segments), (160, 1));
        assert_eq!(analyze(&"€".repeat(81)).segments, 2);
        // 152 plain septets then an escape pair: the pair moves to the next part.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        let info = analyze(&text);
        assert_eq!(info.units, 164);
        assert_eq!(info.segments, 2);
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(analyze(&text).segments, 3);
    }

    #[test]
    fn emoji_are_two_utf16_units() {
        let info = analyze("🎉");
        assert_eq!(
            (info.encoding, info.units, info.segments),
            (Encoding::Ucs2, 2, 1)
        );
        assert_eq!(transliterate_to_gsm7("Listo 🎉"), "Listo ?");
    }

    #[test]
    fn typography_is_made_plain() {
        assert_eq!(
            transliterate_to_gsm7("“Hola” – adiós…"),
            "\"Hola\" - adios..."
        );
    }
}
