//! E.164 normalisation lives in `foco-phone`, shared with the rules service.

pub use foco_phone::{PhoneError, normalize_e164};
