//! Stamps the revision the binaries are built from into `FOCO_GIT_REVISION`
//! (read by `build_info`), taken from the `FOCO_GIT_REVISION` environment
//! variable: `make build` and `make run` set it from git, an
//! image build passes it as a build argument. Without it the revision is
//! "unknown".
//!
//! The build does not ask git itself: a stamp that follows HEAD would rebuild
//! this crate, and every crate of the workspace above it, after every commit.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=FOCO_GIT_REVISION");
    let revision = std::env::var("FOCO_GIT_REVISION")
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=FOCO_GIT_REVISION={revision}");
}
