//! Stamps the git revision the binaries are built from into `FOCO_GIT_REVISION`
//! (read by `build_info`). An explicit `FOCO_GIT_REVISION` in the environment wins
//! (an image build without `.git` passes it as a build argument); without either,
//! the revision is "unknown".
//!
//! A commit moves HEAD, so it rebuilds this crate and everything above it; to
//! iterate without that, pin the stamp: `FOCO_GIT_REVISION=dev cargo test`.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=FOCO_GIT_REVISION");
    let revision = std::env::var("FOCO_GIT_REVISION")
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .or_else(revision_from_git)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=FOCO_GIT_REVISION={revision}");
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_owned())
}

/// HEAD's abbreviated commit id, and the files that move when HEAD does (HEAD
/// itself, the branch it points to, packed refs), so that a commit or a checkout
/// rebuilds the stamp and nothing else does.
fn revision_from_git() -> Option<String> {
    let revision = git(&["rev-parse", "--short=12", "HEAD"])?;
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &name])
            && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(revision)
}
