//! What travels end to end: the webhook fields the rules read, the SMS text they
//! render, and how the fake provider reads that text back.
//!
//! Every webhook of a phase carries an id `<tag>-<sequence>` (the phase's tag, so
//! that a late SMS of one phase is never counted in another) and a timestamp in
//! microseconds since the Unix epoch. The SMS body is `<word> <id> t=<timestamp>`.

/// The Foco rule's template for immediate orders; the bare pipe renders the same
/// text with [`order_text`].
pub const ORDER_TEMPLATE: &str = "Pedido {{ event.order }} t={{ event.sent_at_us }}";

/// The abandoned-cart rule's template: the timestamp is the job's due time.
pub const CART_TEMPLATE: &str = "Carrito {{ event.token }} t={{ event.due_us }}";

/// The owner's number every SMS goes to.
pub const OWNER_NUMBER: &str = "+52 55 1234 5678";

/// The text the order template renders, for the bare pipe.
pub fn order_text(order: &str, sent_at_us: u64) -> String {
    format!("Pedido {order} t={sent_at_us}")
}

/// `<tag>-<sequence>`: the id of one webhook of a phase.
pub fn webhook_id(tag: &str, sequence: u64) -> String {
    format!("{tag}-{sequence}")
}

/// What the fake provider reads from one SMS body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsMark<'a> {
    pub tag: &'a str,
    pub sequence: u64,
    pub stamp_us: u64,
}

/// Reads `<tag>-<sequence>` and `t=<timestamp>` from an SMS body; `None` when
/// either is missing.
pub fn parse_sms(text: &str) -> Option<SmsMark<'_>> {
    let mut id = None;
    let mut stamp_us = None;
    for word in text.split_whitespace() {
        if let Some(stamp) = word.strip_prefix("t=") {
            stamp_us = stamp.parse().ok();
        } else if let Some((tag, sequence)) = word.rsplit_once('-')
            && !tag.is_empty()
            && tag.bytes().all(|byte| byte.is_ascii_alphanumeric())
            && let Ok(sequence) = sequence.parse()
        {
            id = Some((tag, sequence));
        }
    }
    let (tag, sequence) = id?;
    Some(SmsMark {
        tag,
        sequence,
        stamp_us: stamp_us?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_text_reads_back() {
        let text = order_text(&webhook_id("p3", 41), 1_700_000_000_123_456);
        assert_eq!(
            parse_sms(&text),
            Some(SmsMark {
                tag: "p3",
                sequence: 41,
                stamp_us: 1_700_000_000_123_456
            })
        );
        let cart = "Carrito d9-7 t=1700000010000000";
        assert_eq!(parse_sms(cart).map(|mark| mark.sequence), Some(7));
    }

    #[test]
    fn text_without_id_or_stamp_is_not_read() {
        assert_eq!(parse_sms("Pedido p3-41"), None);
        assert_eq!(parse_sms("Pedido t=12"), None);
        assert_eq!(parse_sms("Pedido x_y-1 t=12"), None);
    }
}
