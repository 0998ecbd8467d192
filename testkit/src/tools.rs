//! The pinned Restate tools the project installs with npm (`npm ci --prefix tools`).
//!
//! `node_modules/.bin/restate-server` is a Node.js launcher that starts the platform's native
//! binary as a child process. Whoever must stop the server for real (tests killing it with
//! SIGKILL, the benchmark) runs the native binary itself, so that no orphan is left behind.

use std::path::{Path, PathBuf};

/// The native binary behind the npm launcher `launcher` (e.g.
/// `tools/node_modules/.bin/restate-server` →
/// `tools/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server`), or
/// `launcher` itself when it is not an npm launcher or no native package is installed.
pub fn native_binary(launcher: &Path) -> PathBuf {
    let Some(name) = launcher.file_name().and_then(|n| n.to_str()) else {
        return launcher.to_path_buf();
    };
    let Some(modules) = launcher.parent().and_then(Path::parent) else {
        return launcher.to_path_buf();
    };
    let platform = format!("{name}-{}", npm_platform());
    let native = modules
        .join("@restatedev")
        .join(platform)
        .join("bin")
        .join(name);
    if native.is_file() {
        native
    } else {
        launcher.to_path_buf()
    }
}

/// How npm packages name this platform: `linux-x64`, `darwin-arm64`, …
fn npm_platform() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        os => os,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        arch => arch,
    };
    format!("{os}-{arch}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_platform_as_npm_does() {
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            assert_eq!(npm_platform(), "linux-x64");
        }
        if cfg!(all(target_os = "macos", target_arch = "aarch64")) {
            assert_eq!(npm_platform(), "darwin-arm64");
        }
    }

    #[test]
    fn finds_the_native_binary_next_to_the_launcher() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("node_modules/.bin");
        std::fs::create_dir_all(&bin).unwrap();
        let launcher = bin.join("restate-server");
        std::fs::write(&launcher, "#!/usr/bin/env node").unwrap();
        assert_eq!(
            native_binary(&launcher),
            launcher,
            "no native package: the launcher"
        );
        let native = dir.path().join(format!(
            "node_modules/@restatedev/restate-server-{}/bin",
            npm_platform()
        ));
        std::fs::create_dir_all(&native).unwrap();
        std::fs::write(native.join("restate-server"), "ELF").unwrap();
        assert_eq!(native_binary(&launcher), native.join("restate-server"));
    }
}
