//! The owner's scenario in a real browser: Debian's Chromium, headless, driven
//! over WebDriver by chromedriver. Sign in, create a Shopify source, write a
//! rule with an accent and watch the live preview switch to UCS-2 (the accent
//! marked) and back to GSM-7 with the transliteration offer, save it, post a
//! signed order to the URL the page shows, and find the SMS in Messages with
//! its timeline; preview the rule against that real order; send a test SMS from the providers page and follow it to its
//! message. Skipped, saying why, where /usr/bin/chromedriver is absent.
//!
//! Every page it visits is checked with axe-core inside the same Chromium
//! session: a violation of impact "serious" or "critical" fails the test,
//! naming the rule, its help and the elements. axe-core comes from the npm
//! registry, pinned in `tests/axe/package-lock.json` and installed by `make
//! console-axe` (which `make test` runs); where it is not installed the
//! scenario runs and says that it skipped the checks.
//!
//! With `FOCO_CONSOLE_SCREENSHOTS=<dir>` (see `make console-screenshots`) a PNG
//! of each page is written there.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use foco_harness::{ACCOUNT, TestSystem};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::harness::{Console, account_with_key};
use crate::scenario::{ORDER, SECRET, shopify_signature};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Where `make console-axe` installs axe-core (`npm ci`).
const AXE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/axe/node_modules/axe-core/axe.min.js"
);
/// Runs axe on the page and answers its serious and critical violations.
const RUN_AXE: &str = r"
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ['violations'] })
  .then((results) => done(results.violations
    .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
    .map((violation) => ({
      id: violation.id, impact: violation.impact, help: violation.help,
      nodes: violation.nodes.map((node) => node.target.join(' ') + ' ' + node.html),
    }))))
  .catch((error) => done([{ id: 'axe-error', impact: 'critical', help: String(error), nodes: [] }]));
";
/// Longest wait for one page or preview; a wait, never an assertion on time.
const PATIENCE: Duration = Duration::from_secs(30);

/// chromedriver on a port it chose itself (read from its first lines).
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Self {
        let mut child = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let port = loop {
            let line = lines
                .next_line()
                .await
                .expect("chromedriver output")
                .expect("chromedriver exited before it said its port");
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                break rest.trim_end_matches('.').trim().to_owned();
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn browser(&self) -> Client {
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1280,1000",
                ],
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

struct Screenshots {
    dir: Option<PathBuf>,
}

impl Screenshots {
    fn from_env() -> Self {
        let dir = std::env::var_os("FOCO_CONSOLE_SCREENSHOTS").map(PathBuf::from);
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).expect("screenshot directory");
        }
        Self { dir }
    }

    async fn take(&self, browser: &Client, name: &str) {
        if let Some(dir) = &self.dir {
            let png = browser.screenshot().await.expect("screenshot");
            std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
        }
    }
}

/// axe-core's checks of each page the scenario visits, gathered so that one
/// run reports every page's violations.
struct Accessibility {
    axe: Option<String>,
    violations: Vec<String>,
    pages_checked: usize,
}

impl Accessibility {
    fn load() -> Self {
        let axe = std::fs::read_to_string(AXE).ok();
        if axe.is_none() {
            eprintln!(
                "accessibility checks skipped: {AXE} is absent; run `make console-axe` \
                 (npm ci of services/console/tests/axe) to check every page with axe-core"
            );
        }
        Self {
            axe,
            violations: Vec::new(),
            pages_checked: 0,
        }
    }

    /// Injects axe-core into the page as it is now and runs it.
    async fn check(&mut self, browser: &Client, page: &str) {
        let Some(axe) = &self.axe else {
            return;
        };
        browser
            .execute(axe, Vec::new())
            .await
            .unwrap_or_else(|error| panic!("{page}: injecting axe-core failed: {error}"));
        let found = browser
            .execute_async(RUN_AXE, Vec::new())
            .await
            .unwrap_or_else(|error| panic!("{page}: axe.run failed: {error}"));
        self.pages_checked += 1;
        for violation in found.as_array().cloned().unwrap_or_default() {
            let nodes: Vec<String> = violation["nodes"]
                .as_array()
                .map(|nodes| {
                    nodes
                        .iter()
                        .map(|node| format!("    {}", node.as_str().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            self.violations.push(format!(
                "{page}: {} ({}): {}\n{}",
                violation["id"].as_str().unwrap_or("?"),
                violation["impact"].as_str().unwrap_or("?"),
                violation["help"].as_str().unwrap_or("?"),
                nodes.join("\n")
            ));
        }
    }

    fn assert_none(&self) {
        assert!(
            self.violations.is_empty(),
            "axe-core found serious or critical violations:\n{}",
            self.violations.join("\n")
        );
        if self.axe.is_some() {
            eprintln!(
                "axe-core: {} pages checked, no serious or critical violations",
                self.pages_checked
            );
        }
    }
}

async fn fill(browser: &Client, id: &str, text: &str) {
    let field = browser.find(Locator::Id(id)).await.expect(id);
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("{css} never appeared: {error}"))
}

/// Waits until the element `css` shows `expected`. The live preview renders
/// again as it refreshes, so the element is found afresh on each try.
async fn wait_for_text(browser: &Client, css: &str, expected: &str) {
    let mut last = String::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if let Ok(element) = browser.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            if text == expected {
                return;
            }
            last = text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{css} never showed {expected:?}; it showed {last:?}");
}

#[tokio::test]
#[allow(clippy::too_many_lines, reason = "one scenario, step by step")]
async fn the_owner_connects_a_store_writes_a_rule_and_follows_the_sms_in_a_browser() {
    if !Path::new(CHROMEDRIVER).exists() {
        eprintln!(
            "skipped: {CHROMEDRIVER} is absent; install Debian's chromium and chromium-driver \
             (apt-get install -y chromium chromium-driver) to run the browser scenario"
        );
        return;
    }
    let system = TestSystem::start().await;
    let key = account_with_key(&mut system.admin(), ACCOUNT).await;
    let console = Console::start(&system.control.grpc_url, &system.ingress_url).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    let shots = Screenshots::from_env();
    let mut axe = Accessibility::load();
    let url = |path: &str| format!("{}{path}", console.url);

    browser.goto(&url("/sources")).await.unwrap();
    wait_for(&browser, "#api_key").await;
    shots.take(&browser, "01-sign-in").await;
    axe.check(&browser, "sign-in").await;
    fill(&browser, "api_key", &key).await;
    browser
        .find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&browser, "#source_name").await;
    axe.check(&browser, "sources").await;

    fill(&browser, "source_name", "shop").await;
    browser
        .find(Locator::Css("input[name=preset][value=shopify]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(&browser, "source_secret", SECRET).await;
    browser
        .find(Locator::Css(
            "form[aria-labelledby=new-source] button[type=submit]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let url_field = wait_for(&browser, "#webhook-url").await;
    let webhook_url = url_field
        .prop("value")
        .await
        .unwrap()
        .expect("the webhook URL");
    assert!(webhook_url.starts_with(&format!("{}/v1/hooks/src_", system.ingress_url)));
    shots.take(&browser, "02-source").await;
    axe.check(&browser, "source").await;

    browser.goto(&url("/sources/shop/rules/new")).await.unwrap();
    wait_for(&browser, "#rule-form").await;
    fill(&browser, "name", "owner-alert").await;
    fill(&browser, "when", "event_type == \"orders/create\"").await;
    fill(&browser, "to", "+52 55 1234 5678").await;
    fill(&browser, "payload", ORDER).await;
    fill(
        &browser,
        "body",
        "{{ event.customer.first_name }} compró {{ event.total_price }}",
    )
    .await;
    // Typing refreshes the preview: the accent forces UCS-2 and is marked.
    wait_for_text(&browser, "#preview [data-encoding='UCS-2']", "UCS-2").await;
    wait_for_text(&browser, "#preview mark", "ó").await;
    shots.take(&browser, "03-rule-ucs2").await;
    axe.check(&browser, "rule editor with its preview").await;

    browser
        .find(Locator::Css("#preview button[value=use_gsm7]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&browser, "#preview [data-encoding='GSM-7']").await;
    wait_for_text(&browser, "#preview .sms", "Ana compro 404.95").await;
    shots.take(&browser, "04-rule-gsm7").await;
    browser
        .find(Locator::Css("button[value=save]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&browser, ".flash").await;

    let posted = crate::harness::http_client()
        .post(&webhook_url)
        .header("content-type", "application/json")
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-event-id", "browser-1")
        .header("x-shopify-hmac-sha256", shopify_signature(ORDER))
        .body(ORDER)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);

    let row = foco_testkit::wait_for("the SMS in Messages", PATIENCE, || {
        let browser = browser.clone();
        let list = url("/messages?status=sent");
        async move {
            browser.goto(&list).await.ok()?;
            browser.find(Locator::Css("tbody tr td a")).await.ok()
        }
    })
    .await;
    shots.take(&browser, "05-messages").await;
    axe.check(&browser, "messages").await;
    row.click().await.unwrap();
    let timeline = wait_for(&browser, "ol.timeline").await;
    let story = timeline.text().await.unwrap();
    for step in [
        "Event received",
        "Rule matched: message created",
        "sent · fake",
    ] {
        assert!(story.contains(step), "{step} missing from {story}");
    }
    shots.take(&browser, "06-message").await;
    axe.check(&browser, "message").await;
    browser
        .find(Locator::Css("a[href^='/events/']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&browser, "ol.timeline, p.empty").await;
    shots.take(&browser, "07-event").await;
    axe.check(&browser, "event").await;
    browser.goto(&url("/overview")).await.unwrap();
    wait_for(&browser, "figure.chart svg").await;
    shots.take(&browser, "08-overview").await;
    axe.check(&browser, "overview").await;

    // A test SMS from the providers page, through the harness's `fake` route,
    // followed to its message once the sender has recorded it.
    browser.goto(&url("/providers")).await.unwrap();
    wait_for(&browser, "#test-to").await;
    axe.check(&browser, "providers").await;
    fill(&browser, "test-to", "+52 55 8765 4321").await;
    browser
        .find(Locator::Css("#test-route option[value=fake]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find(Locator::Css(
            "form[aria-labelledby=test-send] button[type=submit]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let sent_link = wait_for(&browser, "#test-sent a").await;
    shots.take(&browser, "09-test-sent").await;
    let message_path = sent_link.attr("href").await.unwrap().expect("a link");
    assert!(message_path.starts_with("/messages/"), "{message_path}");
    let sent_page = url(&message_path);
    let status = foco_testkit::wait_for("the test SMS sent", PATIENCE, || {
        let browser = browser.clone();
        let sent_page = sent_page.clone();
        async move {
            browser.goto(&sent_page).await.ok()?;
            let status = browser.find(Locator::Css("dd .status-sent")).await.ok()?;
            status.text().await.ok()
        }
    })
    .await;
    assert_eq!(status, "sent");
    axe.check(&browser, "message of a test send").await;

    // The order posted above is kept as a real event of the source (sampled
    // by rules, off the event's path): the editor previews the rule with it.
    let editor = url("/sources/shop/rules/owner-alert");
    foco_testkit::wait_for(
        "the order among the source's recent events",
        PATIENCE,
        || {
            let browser = browser.clone();
            let editor = editor.clone();
            async move {
                browser.goto(&editor).await.ok()?;
                browser.find(Locator::Css("#sample option")).await.ok()
            }
        },
    )
    .await;
    browser
        .find(Locator::Css("button[value=use_sample]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&browser, "#preview .sms", "Ana compro 404.95").await;
    shots.take(&browser, "10-rule-real-event").await;
    axe.check(&browser, "rule editor with a real event").await;

    for (page, ready) in [
        ("/providers/new?kind=twilio", "#route-form"),
        ("/providers/routes/fake", "#route-form"),
        ("/jobs", "main h1"),
        ("/dead-letters", "main h1"),
        ("/opt-outs", "#phone"),
        ("/no-such-page", "main h1"),
    ] {
        browser.goto(&url(page)).await.unwrap();
        wait_for(&browser, ready).await;
        axe.check(&browser, page).await;
    }
    axe.assert_none();

    browser.close().await.unwrap();
    drop(driver);
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
