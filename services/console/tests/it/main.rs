//! foco-console over HTTP against a real control (fresh database and bus
//! prefix): sessions, CSRF, security headers, every page, and the path from a
//! signed webhook to its message's timeline with all four services, also in a
//! real browser (Chromium over WebDriver) where chromedriver is installed.

mod browser;
mod harness;
mod pages;
mod providers;
mod scenario;
mod security;
