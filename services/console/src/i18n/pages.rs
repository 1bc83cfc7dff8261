//! Texts of the provider routes page and the test send, the rule editor's
//! error positions and event samples, and amounts: (key, English, Spanish).

pub const TEXTS: &[(&str, &str, &str)] = &[
    ("nav_providers", "Providers", "Proveedores"),
    ("providers_title", "Provider routes", "Rutas de proveedor"),
    (
        "providers_intro",
        "Where your SMS go out: each route is an SMS provider account. Credentials are write-only: once saved they are never shown again.",
        "Por dónde salen tus SMS: cada ruta es una cuenta de un proveedor de SMS. Las credenciales son de solo escritura: una vez guardadas no se vuelven a mostrar.",
    ),
    ("route", "Route", "Ruta"),
    ("route_name", "Route name", "Nombre de la ruta"),
    ("provider_kind", "Provider", "Proveedor"),
    ("settings", "Settings", "Ajustes"),
    ("credentials", "Credentials", "Credenciales"),
    ("credentials_set", "set", "guardadas"),
    ("credential_is_set", "Saved", "Guardada"),
    ("default_route", "Default route", "Ruta predeterminada"),
    (
        "no_routes",
        "No provider routes yet.",
        "Aún no hay rutas de proveedor.",
    ),
    ("new_route", "New route", "Nueva ruta"),
    ("continue", "Continue", "Continuar"),
    ("required", "required", "obligatorio"),
    ("extra_settings", "Other settings", "Otros ajustes"),
    (
        "extra_settings_help",
        "One name=value per line, e.g. rate_per_second=5.",
        "Un nombre=valor por línea, p. ej. rate_per_second=5.",
    ),
    (
        "header_credentials",
        "Request headers (credentials)",
        "Cabeceras de la petición (credenciales)",
    ),
    (
        "header_credentials_help",
        "One Header-Name=value per line, sent with every request and kept encrypted.",
        "Una Cabecera=valor por línea; se envían en cada petición y se guardan cifradas.",
    ),
    (
        "make_default_route",
        "Make this the account's default route",
        "Usar como ruta predeterminada de la cuenta",
    ),
    (
        "credentials_write_only",
        "Credentials are encrypted and never shown again after saving.",
        "Las credenciales se cifran y no se vuelven a mostrar después de guardarlas.",
    ),
    (
        "credentials_write_only_kept",
        "Credentials are never shown. Leave every credential field empty to keep the saved ones; entering any replaces them all.",
        "Las credenciales nunca se muestran. Deja vacíos todos los campos de credenciales para conservar las guardadas; si escribes alguno, se reemplazan todas.",
    ),
    ("save_route", "Save route", "Guardar ruta"),
    ("route_saved", "Route saved.", "Ruta guardada."),
    (
        "test_send_title",
        "Send a test SMS",
        "Enviar un SMS de prueba",
    ),
    (
        "test_send_help",
        "Sends one SMS now through the route you choose, as the API would.",
        "Envía un SMS ahora por la ruta que elijas, como lo haría la API.",
    ),
    ("test_send_button", "Send test SMS", "Enviar SMS de prueba"),
    (
        "test_send_default_body",
        "Foco test message.",
        "Mensaje de prueba de Foco.",
    ),
    ("test_sent", "Test SMS queued:", "SMS de prueba en cola:"),
    (
        "sent_through_api",
        "None: sent through the API",
        "Ninguno: enviado por la API",
    ),
    ("older_messages", "Older messages", "Mensajes anteriores"),
    ("recent_event", "Recent event", "Evento reciente"),
    ("use_event", "Use this event", "Usar este evento"),
    (
        "recent_event_help",
        "A real event this source received (a few recent ones are kept, for 7 days): its body and type replace the sample below.",
        "Un evento real que recibió esta fuente (se guardan algunos recientes, 7 días): su cuerpo y su tipo reemplazan la muestra de abajo.",
    ),
    (
        "no_samples_yet",
        "No real event of this source yet: preview with the sample below, or paste one.",
        "Aún no hay eventos reales de esta fuente: previsualiza con la muestra de abajo o pega uno.",
    ),
    (
        "sample_gone",
        "That event is no longer kept; choose another.",
        "Ese evento ya no se guarda; elige otro.",
    ),
    ("error_line", "line", "línea"),
    ("error_column", "column", "columna"),
];
