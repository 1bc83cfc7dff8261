//! Twilio's callbacks: the route (`route.rs`), reading its fields (`parse.rs`)
//! and verifying its requests (`signature.rs`).

pub(crate) mod parse;
mod route;
pub(crate) mod signature;

pub(crate) use route::endpoints;
