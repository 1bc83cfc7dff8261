//! The shape of a catalog entry: what one provider kind is made of.

/// Everything Foco knows about one provider kind, as data: control validates
/// routes with it, the CLI reads manifests and prints help with it, the sender
/// picks adapters and defaults with it, and ingress serves its callbacks at
/// the paths it names.
#[derive(Debug)]
pub struct ProviderSpec {
    /// The `kind` of a route (`twilio`), also the metrics label and the
    /// segment of callback paths.
    pub id: &'static str,
    /// How people write it (`Twilio`).
    pub display_name: &'static str,
    /// The product or API the adapter speaks, in a few words.
    pub summary: &'static str,
    /// The kind's own settings and credentials, in the order help lists them.
    pub keys: &'static [Key],
    /// Whether any other credential is a request header (`headers:` in a
    /// manifest), as for the generic `http` kind.
    pub header_credentials: bool,
    /// Settings a route of this kind must not have, with the reason given.
    pub refused_settings: &'static [(&'static str, &'static str)],
    /// Settings any one of which gives a route a sender for every message
    /// (`from`, Twilio's `messaging_service_sid`). When a kind lists some and a
    /// route sets none of them, each rule sending through that route must give
    /// its own `from` (control refuses the rule otherwise). Empty: the kind
    /// sends without one.
    pub sender_settings: &'static [&'static str],
    /// Whether the provider deduplicates on the job id sent as its idempotency
    /// key, so that a call whose outcome is unknown may be made again.
    pub idempotency: Idempotency,
    /// The callbacks ingress receives for routes of this kind.
    pub callbacks: &'static [Callback],
}

impl ProviderSpec {
    /// The key of that name, if the kind has one.
    pub fn key(&self, name: &str) -> Option<&'static Key> {
        self.keys.iter().find(|key| key.name == name)
    }

    /// The default of a key (`base_url`, `currency`), if it has one.
    pub fn default_of(&self, name: &str) -> Option<&'static str> {
        self.key(name).and_then(|key| key.default)
    }

    /// Where a value of that name is kept: names the kind does not know (the
    /// route settings every kind takes) are settings.
    pub fn storage_of(&self, name: &str) -> Storage {
        self.key(name).map_or(Storage::Setting, |key| key.storage)
    }

    /// Whether the provider sends delivery receipts to ingress.
    pub fn has_receipts(&self) -> bool {
        self.callbacks
            .iter()
            .any(|callback| callback.carries.receipts())
    }

    /// Whether the provider forwards customers' messages to ingress.
    pub fn has_inbound(&self) -> bool {
        self.callbacks
            .iter()
            .any(|callback| callback.carries.inbound())
    }

    /// The credentials ingress verifies callbacks with.
    pub fn callback_credentials(&self) -> impl Iterator<Item = &'static Key> {
        self.keys.iter().filter(|key| key.verifies_callbacks)
    }
}

/// One setting or credential of a provider kind.
#[derive(Debug)]
pub struct Key {
    pub name: &'static str,
    pub storage: Storage,
    /// A route cannot be saved without it (a required credential may also be
    /// given as a non-blank setting when it is not secret, such as an account id).
    pub required: bool,
    /// What control checks of its value when a route is saved.
    pub check: Check,
    /// What the sender uses when the route leaves it out.
    pub default: Option<&'static str>,
    /// Ingress verifies the kind's callbacks with it.
    pub verifies_callbacks: bool,
    /// One line for help texts.
    pub about: &'static str,
}

impl Key {
    /// An optional setting without checks or default.
    pub const fn setting(name: &'static str, about: &'static str) -> Self {
        Self {
            name,
            storage: Storage::Setting,
            required: false,
            check: Check::None,
            default: None,
            verifies_callbacks: false,
            about,
        }
    }

    /// An optional credential without checks.
    pub const fn credential(name: &'static str, about: &'static str) -> Self {
        Self {
            storage: Storage::Credential,
            ..Self::setting(name, about)
        }
    }

    pub const fn required(self) -> Self {
        Self {
            required: true,
            ..self
        }
    }

    pub const fn checked(self, check: Check) -> Self {
        Self { check, ..self }
    }

    pub const fn defaults_to(self, default: &'static str) -> Self {
        Self {
            default: Some(default),
            ..self
        }
    }

    pub const fn verifying_callbacks(self) -> Self {
        Self {
            verifies_callbacks: true,
            ..self
        }
    }
}

/// Where a key's value is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Plain route settings, returned by the API.
    Setting,
    /// Sealed at rest, never returned, never logged.
    Credential,
}

/// A check of a key's value that needs no provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    None,
    /// An `http` or `https` URL with a host.
    HttpUrl,
    /// One of these words, compared trimmed and without regard to ASCII case.
    OneOf(&'static [&'static str]),
    /// Base64 of exactly `bytes` bytes; `what` names it in the refusal.
    Base64 {
        bytes: usize,
        what: &'static str,
    },
}

/// Whether a call whose outcome is unknown may be made again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// The provider has no idempotency key: an unknown outcome stays unknown.
    Never,
    /// The provider deduplicates on the key the sender sends.
    Always,
    /// The route says so in this boolean setting.
    WhenSetting(&'static str),
}

/// One callback URL of a provider kind. Each is served twice: for a named
/// route and for the account's default route (see [`crate::callback_path`]).
#[derive(Debug)]
pub struct Callback {
    /// The last segment of the path (`status`, `inbound`, `events`).
    pub name: &'static str,
    pub carries: Carries,
    /// The methods the provider may call it with.
    pub methods: &'static [CallbackMethod],
}

/// What a callback URL receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carries {
    Receipts,
    Inbound,
    /// One URL for both, told apart by the body (Telnyx).
    ReceiptsAndInbound,
}

impl Carries {
    pub fn receipts(self) -> bool {
        matches!(self, Self::Receipts | Self::ReceiptsAndInbound)
    }

    pub fn inbound(self) -> bool {
        matches!(self, Self::Inbound | Self::ReceiptsAndInbound)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallbackMethod {
    Get,
    Post,
}

impl CallbackMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}
