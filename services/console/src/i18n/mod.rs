//! The console speaks English and Spanish: the language comes from the
//! `foco_lang` cookie (set by the switch in every page's header), else from the
//! browser's `Accept-Language`, else English. Every text a page shows is a key
//! of [`TEXTS`]; templates read them as `t.key`, and a missing key is a render
//! error (the environment's undefined behaviour is strict), which the page
//! tests catch.

mod pages;

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use axum::http::header::{ACCEPT_LANGUAGE, COOKIE};

pub const LANG_COOKIE: &str = "foco_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Es,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Es => "es",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Self::En),
            "es" => Some(Self::Es),
            _ => None,
        }
    }

    /// The cookie's choice, else the first supported language the browser
    /// asks for (by `q`), else English.
    pub fn of_request(headers: &HeaderMap) -> Self {
        let chosen = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == LANG_COOKIE)
            .and_then(|(_, value)| Self::from_code(value));
        if let Some(lang) = chosen {
            return lang;
        }
        headers
            .get(ACCEPT_LANGUAGE)
            .and_then(|value| value.to_str().ok())
            .and_then(Self::from_accept_language)
            .unwrap_or(Self::En)
    }

    fn from_accept_language(header: &str) -> Option<Self> {
        let mut ranked: Vec<(f32, Self)> = header
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let tag = parts.next()?.trim();
                let primary = tag.split('-').next()?;
                let lang = Self::from_code(primary)?;
                let quality = parts
                    .find_map(|param| param.trim().strip_prefix("q="))
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                (quality > 0.0).then_some((quality, lang))
            })
            .collect();
        // Stable: equal weights keep the browser's order.
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranked.first().map(|(_, lang)| *lang)
    }

    /// Every text of the console in this language.
    pub fn texts(self) -> BTreeMap<&'static str, &'static str> {
        all_texts()
            .map(|(key, english, spanish)| {
                (
                    *key,
                    match self {
                        Self::En => *english,
                        Self::Es => *spanish,
                    },
                )
            })
            .collect()
    }

    pub fn text(self, key: &str) -> &'static str {
        all_texts()
            .find(|(candidate, _, _)| *candidate == key)
            .map_or("", |(_, english, spanish)| match self {
                Self::En => english,
                Self::Es => spanish,
            })
    }
}

/// Every text of every table.
fn all_texts() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
    TEXTS.iter().chain(pages::TEXTS)
}

/// (key, English, Spanish).
pub const TEXTS: &[(&str, &str, &str)] = &[
    ("skip_to_content", "Skip to content", "Saltar al contenido"),
    ("nav_label", "Sections", "Secciones"),
    ("nav_overview", "Overview", "Resumen"),
    ("nav_sources", "Sources", "Fuentes"),
    ("nav_messages", "Messages", "Mensajes"),
    ("nav_jobs", "Scheduled", "Programados"),
    ("nav_dead_letters", "Dead letters", "Fallidos"),
    ("nav_opt_outs", "Opt-outs", "Bajas"),
    ("account", "Account", "Cuenta"),
    ("sign_in", "Sign in", "Entrar"),
    ("sign_out", "Sign out", "Salir"),
    ("sign_in_title", "Sign in to Foco", "Entra a Foco"),
    (
        "sign_in_intro",
        "Use an API key of your account. It is kept only in an encrypted cookie of this browser.",
        "Usa una clave de API de tu cuenta. Solo se guarda en una cookie cifrada de este navegador.",
    ),
    ("api_key", "API key", "Clave de API"),
    (
        "api_key_help",
        "An account key (foco_…), or the operator's admin key.",
        "Una clave de cuenta (foco_…) o la clave de administración del operador.",
    ),
    (
        "account_for_admin",
        "Account (admin key only)",
        "Cuenta (solo con clave de administración)",
    ),
    (
        "account_for_admin_help",
        "With the admin key, the account to manage, e.g. tienda-ale. Leave empty with an account key.",
        "Con la clave de administración, la cuenta a gestionar, p. ej. tienda-ale. Déjalo vacío con una clave de cuenta.",
    ),
    (
        "sign_in_refused",
        "That key was not accepted.",
        "Esa clave no fue aceptada.",
    ),
    (
        "sign_in_needs_account",
        "The admin key manages every account: name the one to open.",
        "La clave de administración gestiona todas las cuentas: indica cuál abrir.",
    ),
    (
        "sign_in_no_account",
        "No such account.",
        "No existe esa cuenta.",
    ),
    ("back_home", "Back to the console", "Volver a la consola"),
    ("error_title", "Something went wrong", "Algo salió mal"),
    (
        "error_invalid-argument",
        "The request was not valid.",
        "La solicitud no es válida.",
    ),
    (
        "error_unauthenticated",
        "Please sign in again.",
        "Vuelve a entrar, por favor.",
    ),
    (
        "error_permission-denied",
        "This is not yours to see.",
        "No tienes acceso a esto.",
    ),
    ("error_not-found", "Not found.", "No se encontró."),
    ("error_already-exists", "It exists already.", "Ya existe."),
    (
        "error_gone",
        "It can no longer be changed.",
        "Ya no se puede cambiar.",
    ),
    ("error_payload-too-large", "Too large.", "Demasiado grande."),
    (
        "error_unsupported-media-type",
        "Unsupported content.",
        "Contenido no admitido.",
    ),
    (
        "error_rate-limited",
        "Too many requests; try again shortly.",
        "Demasiadas solicitudes; inténtalo en un momento.",
    ),
    (
        "error_unavailable",
        "Foco is not reachable right now; try again shortly.",
        "Foco no responde ahora; inténtalo en un momento.",
    ),
    (
        "error_internal",
        "Something failed on our side.",
        "Algo falló de nuestro lado.",
    ),
    (
        "csrf_refused",
        "This form has expired. Reload the page and try again.",
        "Este formulario caducó. Recarga la página e inténtalo de nuevo.",
    ),
    (
        "overview_title",
        "Messages in the last 30 days",
        "Mensajes de los últimos 30 días",
    ),
    (
        "overview_intro",
        "Each bar is one day in the account's time zone, split by what became of the messages.",
        "Cada barra es un día en la zona horaria de la cuenta, dividida según lo que pasó con los mensajes.",
    ),
    ("overview_scale", "Busiest day:", "Día con más mensajes:"),
    (
        "overview_truncated",
        "only the latest 1,000 messages are counted",
        "solo se cuentan los últimos 1.000 mensajes",
    ),
    (
        "outcome_delivered",
        "Sent or delivered",
        "Enviados o entregados",
    ),
    (
        "outcome_pending",
        "Queued or sending",
        "En cola o enviándose",
    ),
    (
        "outcome_stopped",
        "Cancelled, opted out or expired",
        "Cancelados, dados de baja o caducados",
    ),
    ("outcome_failed", "Failed", "Fallidos"),
    ("sources_title", "Sources", "Fuentes"),
    (
        "sources_intro",
        "A source is where webhooks come from: your store, form or CRM. Each has its own URL.",
        "Una fuente es de donde llegan los webhooks: tu tienda, formulario o CRM. Cada una tiene su URL.",
    ),
    (
        "no_sources",
        "No sources yet. Create the first one below.",
        "Aún no hay fuentes. Crea la primera abajo.",
    ),
    ("new_source", "New source", "Nueva fuente"),
    ("source_name", "Name", "Nombre"),
    (
        "source_name_help",
        "Lowercase letters, digits, - and _, e.g. my-store.",
        "Minúsculas, dígitos, - y _, p. ej. mi-tienda.",
    ),
    ("platform", "Platform", "Plataforma"),
    (
        "signing_secret_optional",
        "Signing secret (optional now)",
        "Secreto de firma (opcional ahora)",
    ),
    (
        "signing_secret_help",
        "If the platform gives you its secret only after you paste the URL, leave this empty and set it on the next page: until then the source accepts nothing. It is never shown again.",
        "Si la plataforma te da su secreto después de pegar la URL, déjalo vacío y configúralo en la página siguiente: mientras tanto la fuente no acepta nada. Nunca se vuelve a mostrar.",
    ),
    ("create_source", "Create source", "Crear fuente"),
    ("webhook_url", "Webhook URL", "URL del webhook"),
    ("copy", "Copy", "Copiar"),
    ("copied", "Copied", "Copiado"),
    ("disabled", "disabled", "desactivada"),
    ("enabled", "Enabled", "Activa"),
    (
        "no_secret_yet",
        "no signing secret yet",
        "sin secreto de firma",
    ),
    ("connect_title", "Connect it", "Conéctala"),
    (
        "secret_is_set",
        "A signing secret is set.",
        "Hay un secreto de firma configurado.",
    ),
    ("set_secret", "Signing secret", "Secreto de firma"),
    (
        "secret_write_only",
        "Write-only: Foco keeps it encrypted and never shows it. Saving a new one keeps the previous one valid while you rotate.",
        "Solo escritura: Foco lo guarda cifrado y nunca lo muestra. Guardar uno nuevo mantiene válido el anterior mientras rotas.",
    ),
    ("save_secret", "Save secret", "Guardar secreto"),
    ("rules_title", "Rules", "Reglas"),
    (
        "no_rules",
        "No rules yet: events arrive but send nothing.",
        "Aún no hay reglas: los eventos llegan pero no envían nada.",
    ),
    ("new_rule", "New rule", "Nueva regla"),
    ("rule", "Rule", "Regla"),
    ("rule_name", "Rule name", "Nombre de la regla"),
    ("condition", "Condition", "Condición"),
    ("always", "always", "siempre"),
    (
        "condition_help",
        "A CEL expression over event, event_type and headers, e.g. event_type == \"orders/create\". Empty: every event.",
        "Una expresión CEL sobre event, event_type y headers, p. ej. event_type == \"orders/create\". Vacía: todos los eventos.",
    ),
    ("recipients", "Recipients", "Destinatarios"),
    (
        "recipients_help",
        "One per line: a number such as +52 55 1234 5678, or a template such as {{ event.customer.phone }}.",
        "Uno por línea: un número como +52 55 1234 5678, o una plantilla como {{ event.customer.phone }}.",
    ),
    ("body", "Message", "Mensaje"),
    (
        "body_help",
        "A template over the event, e.g. Hola {{ event.customer.first_name }}.",
        "Una plantilla sobre el evento, p. ej. Hola {{ event.customer.first_name }}.",
    ),
    ("encoding", "Encoding", "Codificación"),
    (
        "encoding_unicode",
        "Keep the text as written (accents may switch to UCS-2: 70 characters a segment)",
        "Mantener el texto (los acentos pueden pasar a UCS-2: 70 caracteres por segmento)",
    ),
    (
        "encoding_gsm7",
        "Transliterate to GSM-7 (á → a: 160 characters a segment)",
        "Transliterar a GSM-7 (á → a: 160 caracteres por segmento)",
    ),
    (
        "timing_and_cancel",
        "Timing and cancellation",
        "Tiempo y cancelación",
    ),
    ("delay", "Delay", "Espera"),
    (
        "delay_help",
        "Wait this long before sending, e.g. 30m, 1h, 5d. Empty: at once.",
        "Esperar antes de enviar, p. ej. 30m, 1h, 5d. Vacío: enseguida.",
    ),
    ("send_at", "Send at (template)", "Enviar a las (plantilla)"),
    ("valid_for", "Valid for", "Vigencia"),
    (
        "valid_for_help",
        "How long after its time the message may still go out, e.g. 2h; later it expires unsent. Empty: the account's default.",
        "Cuánto tiempo después de su hora puede salir aún el mensaje, p. ej. 2h; después caduca sin enviarse. Vacío: lo de la cuenta.",
    ),
    ("correlation_key", "Correlation key", "Clave de correlación"),
    (
        "correlation_key_help",
        "Identifies the pending message so a later event can cancel it, e.g. {{ event.token }}.",
        "Identifica el mensaje pendiente para que un evento posterior lo cancele, p. ej. {{ event.token }}.",
    ),
    (
        "cancel_when",
        "Cancel when (condition)",
        "Cancelar cuando (condición)",
    ),
    (
        "cancel_key",
        "Cancel key (template)",
        "Clave de cancelación (plantilla)",
    ),
    (
        "limits_and_sending",
        "Limits and sending",
        "Límites y envío",
    ),
    ("priority", "Priority", "Prioridad"),
    (
        "priority_transactional",
        "Transactional (codes, alerts)",
        "Transaccional (códigos, alertas)",
    ),
    (
        "priority_marketing",
        "Marketing (respects quiet hours)",
        "Marketing (respeta horas de silencio)",
    ),
    (
        "max_segments",
        "Maximum segments (0: no limit)",
        "Segmentos máximos (0: sin límite)",
    ),
    (
        "cap_count",
        "At most this many per recipient (0: no cap)",
        "Como máximo esta cantidad por destinatario (0: sin tope)",
    ),
    ("cap_window", "…within", "…dentro de"),
    ("provider_route", "Provider route", "Ruta de proveedor"),
    ("sender_id", "Sender id", "Remitente"),
    (
        "sample_payload",
        "Sample event (JSON)",
        "Evento de ejemplo (JSON)",
    ),
    (
        "sample_payload_help",
        "Paste a webhook body from the platform; the preview renders the rule against it.",
        "Pega el cuerpo de un webhook de la plataforma; la vista previa aplica la regla sobre él.",
    ),
    ("event_type", "Event type", "Tipo de evento"),
    ("preview", "Preview", "Vista previa"),
    ("save_rule", "Save rule", "Guardar regla"),
    (
        "preview_help",
        "Press Preview (or just type, with JavaScript on) to see the message, its cost and its recipients.",
        "Pulsa Vista previa (o escribe, con JavaScript) para ver el mensaje, su costo y sus destinatarios.",
    ),
    (
        "condition_not_matched",
        "The condition does not match this event: nothing would be sent.",
        "La condición no coincide con este evento: no se enviaría nada.",
    ),
    ("forces_ucs2", "forces UCS-2", "obliga a UCS-2"),
    ("segments", "Segments", "Segmentos"),
    ("characters", "Characters", "Caracteres"),
    ("sends_at", "Sends at", "Se envía"),
    (
        "ucs2_explained",
        "These characters are not in GSM-7, so every segment holds 70 characters instead of 160:",
        "Estos caracteres no están en GSM-7, así que cada segmento lleva 70 caracteres en vez de 160:",
    ),
    (
        "transliterate_offer",
        "Transliterate to GSM-7",
        "Transliterar a GSM-7",
    ),
    ("invalid", "invalid", "inválido"),
    ("rule_saved", "Rule saved.", "Regla guardada."),
    (
        "source_created",
        "Source created. Paste its URL into the platform.",
        "Fuente creada. Pega su URL en la plataforma.",
    ),
    ("secret_saved", "Secret saved.", "Secreto guardado."),
    (
        "job_cancelled",
        "Scheduled message cancelled.",
        "Mensaje programado cancelado.",
    ),
    (
        "message_cancelled",
        "Message cancelled.",
        "Mensaje cancelado.",
    ),
    (
        "dead_letter_retried",
        "Sent back to the queue.",
        "Devuelto a la cola.",
    ),
    ("opt_out_added", "Number opted out.", "Número dado de baja."),
    ("recent_events", "Recent events", "Eventos recientes"),
    (
        "recent_events_help",
        "Events that made a rule act (send, schedule, cancel, fail). Open one for its decision trace.",
        "Eventos que hicieron actuar a una regla (enviar, programar, cancelar, fallar). Abre uno para ver su traza.",
    ),
    (
        "no_events",
        "No events have made a rule act yet.",
        "Ningún evento ha hecho actuar a una regla aún.",
    ),
    ("when", "When", "Cuándo"),
    ("event", "Event", "Evento"),
    ("outcome", "Outcome", "Resultado"),
    (
        "event_trace_intro",
        "What each rule decided for this event, and the messages it produced.",
        "Lo que cada regla decidió para este evento y los mensajes que produjo.",
    ),
    ("decisions", "Decisions", "Decisiones"),
    (
        "no_reports",
        "No rule left a note (immediate sends appear under Messages).",
        "Ninguna regla dejó nota (los envíos inmediatos aparecen en Mensajes).",
    ),
    ("no_rule", "(no rule)", "(sin regla)"),
    (
        "no_messages_for_event",
        "This event produced no messages.",
        "Este evento no produjo mensajes.",
    ),
    ("report_error", "could not render", "no se pudo generar"),
    (
        "report_invalid_recipient",
        "invalid recipient",
        "destinatario inválido",
    ),
    ("report_scheduled", "scheduled", "programado"),
    (
        "report_replaced",
        "replaced a pending message",
        "reemplazó un mensaje pendiente",
    ),
    (
        "report_cancelled",
        "cancelled a pending message",
        "canceló un mensaje pendiente",
    ),
    (
        "report_capped",
        "over the frequency cap",
        "sobre el tope de frecuencia",
    ),
    (
        "report_kept_first",
        "kept the first pending message",
        "conservó el primer mensaje pendiente",
    ),
    (
        "report_unreadable",
        "payload is not JSON",
        "el cuerpo no es JSON",
    ),
    ("report_sent", "message created", "mensaje creado"),
    ("messages_title", "Messages", "Mensajes"),
    ("filter_messages", "Filter messages", "Filtrar mensajes"),
    ("status", "Status", "Estado"),
    ("state", "State", "Estado"),
    ("any", "Any", "Cualquiera"),
    ("number", "Phone number", "Número"),
    ("date_from", "From", "Desde"),
    ("date_until", "Until", "Hasta"),
    ("filter", "Filter", "Filtrar"),
    ("to", "To", "Para"),
    (
        "no_messages",
        "No messages match.",
        "Ningún mensaje coincide.",
    ),
    ("status_queued", "queued", "en cola"),
    ("status_sending", "sending", "enviando"),
    ("status_sent", "sent", "enviado"),
    ("status_failed", "failed", "falló"),
    ("status_unknown", "unknown", "incierto"),
    ("status_delivered", "delivered", "entregado"),
    ("status_undelivered", "undelivered", "no entregado"),
    ("status_cancelled", "cancelled", "cancelado"),
    ("status_opted-out", "opted out", "dado de baja"),
    ("status_expired", "expired", "caducado"),
    ("status_unspecified", "unspecified", "sin estado"),
    ("message", "Message", "Mensaje"),
    ("price", "Price", "Precio"),
    ("error", "Error", "Error"),
    (
        "cancel_message",
        "Cancel this message",
        "Cancelar este mensaje",
    ),
    ("timeline", "Timeline", "Historia"),
    ("step_event", "Event received", "Evento recibido"),
    (
        "step_created",
        "Rule matched: message created",
        "La regla coincidió: mensaje creado",
    ),
    ("step_sent", "Sent to the provider", "Enviado al proveedor"),
    ("jobs_title", "Scheduled messages", "Mensajes programados"),
    (
        "jobs_intro",
        "Messages waiting for their time (a delay or send-at). Cancel one to stop it.",
        "Mensajes esperando su hora (una espera o envío programado). Cancela uno para detenerlo.",
    ),
    ("due", "Due", "Vence"),
    ("actions", "Actions", "Acciones"),
    ("cancel", "Cancel", "Cancelar"),
    (
        "no_jobs",
        "Nothing is scheduled.",
        "No hay nada programado.",
    ),
    ("dead_letters_title", "Dead letters", "Mensajes fallidos"),
    (
        "dead_letters_intro",
        "Messages that failed every attempt. Retry one once the cause is fixed.",
        "Mensajes que fallaron en todos los intentos. Reinténtalo cuando la causa esté resuelta.",
    ),
    ("reason", "Reason", "Motivo"),
    ("attempts", "Attempts", "Intentos"),
    ("retry", "Retry", "Reintentar"),
    (
        "no_dead_letters",
        "No dead letters.",
        "No hay mensajes fallidos.",
    ),
    ("opt_outs_title", "Opt-outs", "Bajas"),
    (
        "opt_outs_intro",
        "Numbers that asked not to receive messages (STOP, BAJA…). Foco never sends to them.",
        "Números que pidieron no recibir mensajes (STOP, BAJA…). Foco nunca les envía.",
    ),
    ("add_opt_out", "Opt a number out", "Dar de baja un número"),
    ("origin", "Origin", "Origen"),
    ("no_opt_outs", "No opt-outs.", "No hay bajas."),
];

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_cookie_wins_then_the_browser_then_english() {
        assert_eq!(Lang::of_request(&headers(&[])), Lang::En);
        assert_eq!(
            Lang::of_request(&headers(&[("accept-language", "es-MX,es;q=0.9,en;q=0.8")])),
            Lang::Es
        );
        assert_eq!(
            Lang::of_request(&headers(&[("accept-language", "fr, en;q=0.5, es;q=0.7")])),
            Lang::Es
        );
        assert_eq!(
            Lang::of_request(&headers(&[
                ("accept-language", "es"),
                ("cookie", "a=b; foco_lang=en")
            ])),
            Lang::En
        );
    }

    #[test]
    fn keys_are_unique_and_translated() {
        let mut seen = std::collections::BTreeSet::new();
        for (key, english, spanish) in all_texts() {
            assert!(seen.insert(key), "{key} twice");
            assert!(!english.is_empty() && !spanish.is_empty(), "{key}");
        }
    }
}
