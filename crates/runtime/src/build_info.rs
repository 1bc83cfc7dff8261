//! What a binary is: the workspace version and the git revision it was built from
//! (stamped by this crate's build script), for `--version` and for the
//! `foco_build_info` gauge that every service's admin endpoint exports.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The workspace version (every crate shares it).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit the build came from, abbreviated; "unknown" without git.
pub const REVISION: &str = env!("FOCO_GIT_REVISION");

/// `0.1.0 (revision 0123456789ab)`: what `--version` prints after the binary's name.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("FOCO_GIT_REVISION"),
    ")"
);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    service: &'static str,
    version: &'static str,
    revision: &'static str,
}

/// Registers `foco_build_info{service,version,revision} 1` in `registry`, which
/// must have no prefix of its own.
pub fn register(registry: &mut Registry, service: &'static str) {
    let info = Family::<BuildLabels, Gauge>::default();
    info.get_or_create(&BuildLabels {
        service,
        version: VERSION,
        revision: REVISION,
    })
    .set(1);
    registry.register(
        "foco_build_info",
        "Always 1; the labels say which service, version and git revision is running",
        info,
    );
}

/// For a service's `main`, before anything else: when the first argument is
/// `--version` (or `-V`), prints `<binary> <VERSION_LINE>` and exits with 0.
/// Services take no other arguments; their configuration is the environment.
pub fn exit_if_version_requested(binary: &str) {
    if std::env::args()
        .nth(1)
        .is_some_and(|argument| argument == "--version" || argument == "-V")
    {
        println!("{binary} {VERSION_LINE}");
        std::process::exit(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_is_one_series_with_the_version() {
        let mut registry = Registry::default();
        register(&mut registry, "foco-test");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let expected = format!(
            "foco_build_info{{service=\"foco-test\",version=\"{VERSION}\",revision=\"{REVISION}\"}} 1\n"
        );
        assert!(text.contains(&expected), "{text}");
        assert!(!REVISION.is_empty());
        assert!(VERSION_LINE.starts_with(VERSION));
    }
}
