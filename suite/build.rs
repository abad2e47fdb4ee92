//! Links the PC/SC library (pcsc-lite) on Linux; see `.cargo/config.toml`, which turns
//! the `pcsc-sys` crate's own build script off for the Linux targets listed there.
//!
//! Order: `PCSC_LIB_DIR` (+ `PCSC_LIB_NAME`, as pcsc-sys reads them) → `pkg-config
//! libpcsclite` (the `PKG_CONFIG` variable names another pkg-config) → the runtime library
//! `libpcsclite.so.1` in the distribution's library folders → a build error naming the
//! package to install. Other systems: nothing to do here (pcsc-sys links macOS's PCSC
//! framework or Windows' winscard).

use std::path::{Path, PathBuf};
use std::process::Command;

const RUNTIME_LIBRARY: &str = "libpcsclite.so.1";

fn main() {
    for variable in [
        "PCSC_LIB_DIR",
        "PCSC_LIB_NAME",
        "PKG_CONFIG",
        "PKG_CONFIG_PATH",
    ] {
        println!("cargo:rerun-if-env-changed={variable}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    if let Ok(dir) = std::env::var("PCSC_LIB_DIR") {
        let name = std::env::var("PCSC_LIB_NAME").unwrap_or_else(|_| "pcsclite".into());
        link(Path::new(&dir), &name, "PCSC_LIB_DIR");
        return;
    }
    if let Some(dir) = pkg_config_libdir() {
        link(&dir, "dylib=pcsclite", "pkg-config");
        return;
    }
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let folders = library_folders(&arch);
    if let Some(dir) = folders.iter().find(|d| d.join(RUNTIME_LIBRARY).is_file()) {
        link(
            dir,
            &format!("dylib:+verbatim={RUNTIME_LIBRARY}"),
            "multiarch",
        );
        return;
    }
    let searched: Vec<String> = folders.iter().map(|d| d.display().to_string()).collect();
    eprintln!(
        "error: rclab needs the PC/SC library pcsc-lite ({RUNTIME_LIBRARY}), and found it neither \
         through pkg-config nor in {}.\n\
         Install it:\n  \
           Debian/Ubuntu:  sudo apt install libpcsclite1   (or libpcsclite-dev pkg-config)\n  \
           Fedora:         sudo dnf install pcsc-lite-libs (or pcsc-lite-devel)\n  \
           Arch:           sudo pacman -S pcsclite\n\
         or point PCSC_LIB_DIR at the folder holding it (with \
         PCSC_LIB_NAME=dylib:+verbatim={RUNTIME_LIBRARY} for the runtime file).",
        searched.join(", ")
    );
    std::process::exit(1);
}

fn link(dir: &Path, name: &str, how: &str) {
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib={name}");
    // Visible with `cargo build -vv`: which way the library was found.
    println!("cargo:rclab-pcsc={how}:{}", dir.display());
}

/// `pkg-config --variable=libdir libpcsclite`, when pkg-config and the -dev package exist.
fn pkg_config_libdir() -> Option<PathBuf> {
    let program = std::env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into());
    let output = Command::new(program)
        .args(["--variable=libdir", "libpcsclite"])
        .output()
        .ok()?;
    let dir = String::from_utf8(output.stdout).ok()?;
    let dir = PathBuf::from(dir.trim());
    (output.status.success() && dir.is_dir()).then_some(dir)
}

/// Where distributions put shared libraries for `arch`: Debian/Ubuntu multiarch folders,
/// then Fedora/openSUSE's lib64, then the plain ones.
fn library_folders(arch: &str) -> Vec<PathBuf> {
    let multiarch = match arch {
        "x86_64" => Some("x86_64-linux-gnu"),
        "aarch64" => Some("aarch64-linux-gnu"),
        "arm" => Some("arm-linux-gnueabihf"),
        "x86" => Some("i386-linux-gnu"),
        "riscv64" => Some("riscv64-linux-gnu"),
        _ => None,
    };
    let mut folders = Vec::new();
    if let Some(triple) = multiarch {
        folders.push(PathBuf::from("/usr/lib").join(triple));
        folders.push(PathBuf::from("/lib").join(triple));
    }
    for plain in ["/usr/lib64", "/lib64", "/usr/lib", "/lib"] {
        folders.push(PathBuf::from(plain));
    }
    folders
}
