//! The platforms a source can be created for, with where each one takes the
//! webhook URL and its signing secret. The presets themselves (signature
//! scheme, where the event type and id live) belong to control; this is only
//! what a person needs to read to connect the platform.

use crate::i18n::Lang;

pub struct PresetGuide {
    /// Control's preset name.
    pub slug: &'static str,
    pub label: &'static str,
    /// Whether webhooks are verified with a secret (all but `none`).
    pub needs_secret: bool,
    english: &'static [&'static str],
    spanish: &'static [&'static str],
}

impl PresetGuide {
    pub fn steps(&self, lang: Lang) -> &'static [&'static str] {
        match lang {
            Lang::En => self.english,
            Lang::Es => self.spanish,
        }
    }
}

pub fn guide(slug: &str) -> Option<&'static PresetGuide> {
    GUIDES.iter().find(|guide| guide.slug == slug)
}

/// The label of a preset name; the name itself when it has no guide.
pub fn label(slug: &str) -> &str {
    guide(slug).map_or(slug, |guide| guide.label)
}

pub const GUIDES: &[PresetGuide] = &[
    PresetGuide {
        slug: "shopify",
        label: "Shopify",
        needs_secret: true,
        english: &[
            "In Shopify admin, open Settings › Notifications › Webhooks and click Create webhook.",
            "Choose the event (e.g. Order creation), format JSON, and paste the webhook URL above.",
            "Shopify shows \"Your webhooks will be signed with …\" below the list: copy that secret into the field below.",
        ],
        spanish: &[
            "En el admin de Shopify, abre Configuración › Notificaciones › Webhooks y pulsa Crear webhook.",
            "Elige el evento (p. ej. Creación de pedido), formato JSON, y pega la URL del webhook de arriba.",
            "Shopify muestra «Tus webhooks se firmarán con …» bajo la lista: copia ese secreto en el campo de abajo.",
        ],
    },
    PresetGuide {
        slug: "woocommerce",
        label: "WooCommerce",
        needs_secret: true,
        english: &[
            "In WordPress, open WooCommerce › Settings › Advanced › Webhooks › Add webhook.",
            "Set Status Active, pick the topic (e.g. Order created) and paste the webhook URL above as Delivery URL.",
            "Type a long random Secret there and paste the same value below.",
        ],
        spanish: &[
            "En WordPress, abre WooCommerce › Ajustes › Avanzado › Webhooks › Añadir webhook.",
            "Pon Estado Activo, elige el tema (p. ej. Pedido creado) y pega la URL de arriba como URL de entrega.",
            "Escribe un Secreto largo y aleatorio ahí y pega el mismo valor abajo.",
        ],
    },
    PresetGuide {
        slug: "stripe",
        label: "Stripe",
        needs_secret: true,
        english: &[
            "In the Stripe Dashboard, open Developers › Webhooks › Add endpoint.",
            "Paste the webhook URL above and select the events to send (e.g. checkout.session.completed).",
            "Reveal the endpoint's Signing secret (whsec_…) and paste it below.",
        ],
        spanish: &[
            "En el Dashboard de Stripe, abre Desarrolladores › Webhooks › Añadir endpoint.",
            "Pega la URL de arriba y elige los eventos (p. ej. checkout.session.completed).",
            "Muestra el Secreto de firma del endpoint (whsec_…) y pégalo abajo.",
        ],
    },
    PresetGuide {
        slug: "typeform",
        label: "Typeform",
        needs_secret: true,
        english: &[
            "In your form, open Connect › Webhooks › Add a webhook and paste the webhook URL above.",
            "Open Edit, set a Secret (a long random value) and save; paste the same value below.",
            "Turn the webhook on.",
        ],
        spanish: &[
            "En tu formulario, abre Connect › Webhooks › Add a webhook y pega la URL de arriba.",
            "Abre Edit, define un Secret (un valor largo y aleatorio) y guarda; pega el mismo valor abajo.",
            "Activa el webhook.",
        ],
    },
    PresetGuide {
        slug: "calendly",
        label: "Calendly",
        needs_secret: true,
        english: &[
            "Create a webhook subscription with Calendly's API (POST /webhook_subscriptions) using the webhook URL above.",
            "Give it a signing_key (a long random value) and paste the same value below.",
        ],
        spanish: &[
            "Crea una suscripción de webhook con la API de Calendly (POST /webhook_subscriptions) con la URL de arriba.",
            "Dale un signing_key (un valor largo y aleatorio) y pega el mismo valor abajo.",
        ],
    },
    PresetGuide {
        slug: "hubspot",
        label: "HubSpot",
        needs_secret: true,
        english: &[
            "In your HubSpot app, open Webhooks and set the Target URL to the webhook URL above.",
            "Copy the app's Client secret (Auth tab) and paste it below.",
        ],
        spanish: &[
            "En tu app de HubSpot, abre Webhooks y pon la URL de arriba como Target URL.",
            "Copia el Client secret de la app (pestaña Auth) y pégalo abajo.",
        ],
    },
    PresetGuide {
        slug: "mercadopago",
        label: "Mercado Pago",
        needs_secret: true,
        english: &[
            "In Mercado Pago Developers, open Your integrations › Webhooks and paste the webhook URL above (production mode).",
            "Choose the events (e.g. Payments), save, and paste the generated secret signature below.",
        ],
        spanish: &[
            "En Mercado Pago Developers, abre Tus integraciones › Webhooks y pega la URL de arriba (modo productivo).",
            "Elige los eventos (p. ej. Pagos), guarda y pega abajo la clave secreta generada.",
        ],
    },
    PresetGuide {
        slug: "tiendanube",
        label: "Tiendanube",
        needs_secret: true,
        english: &[
            "Register the webhook through the Tiendanube API (POST /webhooks) with the event (e.g. order/created) and the webhook URL above.",
            "Paste your app's client secret below: Tiendanube signs with it.",
        ],
        spanish: &[
            "Registra el webhook con la API de Tiendanube (POST /webhooks) con el evento (p. ej. order/created) y la URL de arriba.",
            "Pega abajo el client secret de tu app: Tiendanube firma con él.",
        ],
    },
    PresetGuide {
        slug: "hotmart",
        label: "Hotmart",
        needs_secret: true,
        english: &[
            "In Hotmart, open Tools › Webhook (API and notifications) › Register webhook and paste the webhook URL above.",
            "Copy your account's Hottok and paste it below.",
        ],
        spanish: &[
            "En Hotmart, abre Herramientas › Webhook (API y notificaciones) › Registrar webhook y pega la URL de arriba.",
            "Copia el Hottok de tu cuenta y pégalo abajo.",
        ],
    },
    PresetGuide {
        slug: "github",
        label: "GitHub",
        needs_secret: true,
        english: &[
            "In the repository, open Settings › Webhooks › Add webhook and paste the webhook URL above as Payload URL.",
            "Content type application/json; type a long random Secret and paste the same value below.",
        ],
        spanish: &[
            "En el repositorio, abre Settings › Webhooks › Add webhook y pega la URL de arriba como Payload URL.",
            "Content type application/json; escribe un Secret largo y aleatorio y pega el mismo valor abajo.",
        ],
    },
    PresetGuide {
        slug: "standard-webhooks",
        label: "Standard Webhooks",
        needs_secret: true,
        english: &[
            "Paste the webhook URL above into the sending service's endpoint settings.",
            "Copy the endpoint's signing secret (whsec_…) and paste it below.",
        ],
        spanish: &[
            "Pega la URL de arriba en la configuración de endpoints del servicio que envía.",
            "Copia el secreto de firma del endpoint (whsec_…) y pégalo abajo.",
        ],
    },
    PresetGuide {
        slug: "bearer",
        label: "Bearer token (your own code)",
        needs_secret: true,
        english: &[
            "Post JSON to the webhook URL above with the header Authorization: Bearer <token>.",
            "Choose a long random token and paste it below.",
        ],
        spanish: &[
            "Envía JSON a la URL de arriba con la cabecera Authorization: Bearer <token>.",
            "Elige un token largo y aleatorio y pégalo abajo.",
        ],
    },
    PresetGuide {
        slug: "none",
        label: "No signature (testing only)",
        needs_secret: false,
        english: &[
            "Anyone who knows the webhook URL above can post to it: use this only to try Foco out.",
        ],
        spanish: &[
            "Cualquiera que conozca la URL de arriba puede enviarle eventos: úsalo solo para probar Foco.",
        ],
    },
];

/// A sample body per platform for the rule editor's preview, from the
/// examples the project keeps of real webhooks.
pub fn sample_payload(slug: &str) -> &'static str {
    match slug {
        "shopify" => include_str!("../../../examples/webhooks/shopify__orders_create.json"),
        "typeform" => include_str!("../../../examples/webhooks/typeform__form_response.json"),
        _ => "{}",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_guide_has_both_languages() {
        for guide in GUIDES {
            assert!(!guide.steps(Lang::En).is_empty(), "{}", guide.slug);
            assert_eq!(
                guide.steps(Lang::En).len(),
                guide.steps(Lang::Es).len(),
                "{}",
                guide.slug
            );
        }
    }
}
