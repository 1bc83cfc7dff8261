//! Compliance keywords in inbound SMS. The whole message is the keyword (as
//! carriers and CTIA guidelines treat it), matched without regard to case,
//! accents, surrounding blanks or trailing punctuation, so "Stop", " baja." and
//! "CANCELAR!" count but "please stop texting me" does not.
//!
//! Only explicit words opt a number back in: START, UNSTOP and SUBSCRIBE, and
//! Spanish ALTA ("darse de alta") and INICIAR. YES is not one of them, although
//! some carriers list it: it is the most common answer to an ordinary question
//! ("¿confirmas tu cita?"), and reading it as START would re-subscribe a number
//! that opted out without the customer asking for it.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// Opt the number out of the account at once.
    Stop,
    /// Opt back in.
    Start,
    /// Answer with the route's help text.
    Help,
}

const STOP: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "REVOKE",
    "BAJA",
    "ALTO",
    "CANCELAR",
    "PARAR",
];
const START: &[&str] = &["START", "UNSTOP", "SUBSCRIBE", "ALTA", "INICIAR"];
const HELP: &[&str] = &["HELP", "INFO", "AYUDA"];

pub fn keyword(body: &str) -> Option<Keyword> {
    let word: String = body
        .trim()
        .trim_end_matches(['.', '!', '¡', '?', '¿'])
        .trim_start_matches(['¡', '¿'])
        .trim()
        .chars()
        .map(fold_accent)
        .collect::<String>()
        .to_uppercase();
    if STOP.contains(&word.as_str()) {
        Some(Keyword::Stop)
    } else if START.contains(&word.as_str()) {
        Some(Keyword::Start)
    } else if HELP.contains(&word.as_str()) {
        Some(Keyword::Help)
    } else {
        None
    }
}

fn fold_accent(c: char) -> char {
    match c {
        'á' | 'à' | 'ä' | 'â' | 'Á' | 'À' | 'Ä' | 'Â' => 'a',
        'é' | 'è' | 'ë' | 'ê' | 'É' | 'È' | 'Ë' | 'Ê' => 'e',
        'í' | 'ì' | 'ï' | 'î' | 'Í' | 'Ì' | 'Ï' | 'Î' => 'i',
        'ó' | 'ò' | 'ö' | 'ô' | 'Ó' | 'Ò' | 'Ö' | 'Ô' => 'o',
        'ú' | 'ù' | 'ü' | 'û' | 'Ú' | 'Ù' | 'Ü' | 'Û' => 'u',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_variants_in_english_and_spanish() {
        for body in [
            "STOP",
            "stop",
            " Stop. ",
            "Baja",
            "ALTO!",
            "cancelar",
            "Unsubscribe",
            "QUIT",
            "end",
            "Cancelár",
        ] {
            assert_eq!(keyword(body), Some(Keyword::Stop), "{body:?}");
        }
    }

    #[test]
    fn start_and_help() {
        assert_eq!(keyword("START"), Some(Keyword::Start));
        assert_eq!(keyword("unstop"), Some(Keyword::Start));
        assert_eq!(keyword("Subscribe"), Some(Keyword::Start));
        assert_eq!(keyword("alta"), Some(Keyword::Start));
        assert_eq!(keyword("Iniciar!"), Some(Keyword::Start));
        assert_eq!(keyword("Help"), Some(Keyword::Help));
        assert_eq!(keyword("¿Ayuda?"), Some(Keyword::Help));
    }

    #[test]
    fn ordinary_messages_are_not_keywords() {
        for body in [
            "please stop texting me",
            "gracias",
            "",
            "STOP IT NOW",
            "stopped",
            "yes",
            "Sí",
        ] {
            assert_eq!(keyword(body), None, "{body:?}");
        }
    }
}
