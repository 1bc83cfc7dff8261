//! A real control on a fresh database, an account with an API key, and the
//! console in-process on port 0, with a cookie-keeping client that does not
//! follow redirects (tests look at them).

use std::time::Duration;

use foco_console::{App, Config};
use foco_control_client::ControlApi;
use foco_harness::{Crashes, Running, TestControl, assert_no_crash};
use foco_proto::v1::CreateApiKeyRequest;
use reqwest::redirect::Policy;
use tokio_util::sync::CancellationToken;

pub const ACCOUNT: &str = "tienda-ale";

pub struct Console {
    pub url: String,
    running: Running,
    crashes: Crashes,
}

impl Console {
    /// The console in front of the control at `control_url`, showing webhook
    /// URLs under `ingress_url`.
    pub async fn start(control_url: &str, ingress_url: &str) -> Self {
        let config = Config {
            http_listen: "127.0.0.1:0".parse().expect("address"),
            admin_listen: "127.0.0.1:0".parse().expect("address"),
            control_url: control_url.to_owned(),
            ingress_url: ingress_url.to_owned(),
            session_key: axum_extra_key(),
            session_ttl: Duration::from_secs(3600),
            secure_cookies: false,
            shutdown_grace: Duration::from_secs(5),
        };
        let shutdown = CancellationToken::new();
        let app = App::build(config, shutdown.clone())
            .await
            .expect("build console");
        let url = format!("http://{}", app.http_addr());
        let crashes = Crashes::default();
        let running = Running::spawn("console", &crashes, shutdown, app.run());
        Self {
            url,
            running,
            crashes,
        }
    }
}

/// A console that failed or quit during the test fails it.
impl Drop for Console {
    fn drop(&mut self) {
        self.running.shutdown.cancel();
        if !std::thread::panicking() {
            assert_no_crash(&self.crashes);
        }
    }
}

fn axum_extra_key() -> foco_console::SessionKey {
    use base64::Engine as _;
    let bytes: Vec<u8> = (0..foco_console::SESSION_KEY_BYTES)
        .map(|_| rand::random::<u8>())
        .collect();
    foco_console::parse_session_key(&base64::engine::general_purpose::STANDARD.encode(bytes))
        .expect("session key")
}

/// Creates `account` (MX, Mexico City) and returns a new API key of it.
pub async fn account_with_key(admin: &mut ControlApi, account: &str) -> String {
    foco_harness::create_test_account(admin, account).await;
    admin
        .create_api_key(CreateApiKeyRequest {
            account: account.to_owned(),
            description: "console tests".to_owned(),
            ..Default::default()
        })
        .await
        .expect("create key")
        .into_inner()
        .key
}

/// A plain client, e.g. for posting webhooks.
pub fn http_client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::new()
}

fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A browser: keeps cookies, does not follow redirects.
pub fn browser() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// Control, one account with a key, the console.
pub struct Setup {
    pub control: TestControl,
    pub console: Console,
    pub key: String,
}

impl Setup {
    pub async fn start() -> Self {
        let control = TestControl::start().await;
        let key = account_with_key(&mut control.admin(), ACCOUNT).await;
        let console = Console::start(&control.grpc_url, "https://hooks.example.com").await;
        Self {
            control,
            console,
            key,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.console.url)
    }

    /// A browser signed in with the account's key.
    pub async fn signed_in(&self) -> reqwest::Client {
        let browser = browser();
        sign_in(&browser, &self.console.url, &self.key, "").await;
        browser
    }
}

/// Signs `browser` in; panics unless the console redirects away from sign-in.
pub async fn sign_in(browser: &reqwest::Client, console_url: &str, key: &str, account: &str) {
    let response = post_sign_in(browser, console_url, key, account).await;
    assert_eq!(response.status(), 303, "sign-in refused");
}

pub async fn post_sign_in(
    browser: &reqwest::Client,
    console_url: &str,
    key: &str,
    account: &str,
) -> reqwest::Response {
    let page = browser
        .get(format!("{console_url}/sign-in"))
        .send()
        .await
        .expect("sign-in page")
        .text()
        .await
        .expect("body");
    let csrf = csrf_token(&page);
    browser
        .post(format!("{console_url}/sign-in"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("api_key", key),
            ("account", account),
            ("next", "/sources"),
        ])
        .send()
        .await
        .expect("sign in")
}

/// The CSRF token of the first form on `page`.
pub fn csrf_token(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a form with a CSRF token") + marker.len();
    let end = page[start..].find('"').expect("end of token") + start;
    page[start..end].to_owned()
}

/// GET `path`, expecting 200; the body.
pub async fn page(browser: &reqwest::Client, url: &str) -> String {
    let response = browser.get(url).send().await.expect("get");
    let status = response.status();
    let body = text(response).await;
    assert_eq!(status, 200, "{url}: {body}");
    body
}

/// The body, with the slashes the templates escape (`&#x2f;`) as they read.
pub async fn text(response: reqwest::Response) -> String {
    response.text().await.expect("body").replace("&#x2f;", "/")
}

/// POST a form with the CSRF token of the page at `form_page`; the response.
pub async fn submit(
    browser: &reqwest::Client,
    form_page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = csrf_token(&page(browser, form_page).await);
    let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    browser.post(action).form(&form).send().await.expect("post")
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
