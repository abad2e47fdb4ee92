//! Profiles, `extends:` targets, images and certificates that are not regular files, and
//! links that loop under a profile folder: each gets an error naming it, at once.
//! (A fuzzer cannot make FIFOs or links, so these are tested here.)

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rclab_emulator::profile::{self, Profile, ProfileError};

/// Long enough for a loaded machine, short enough that a hang fails instead of stalling.
const PATIENCE: Duration = Duration::from_secs(20);

fn scratch(name: &str) -> PathBuf {
    crate::common::scratch_dir("hostile", name)
}

fn valid(name: &str) -> PathBuf {
    crate::common::valid_path(name)
}

#[allow(unsafe_code)] // one mkfifo call, proven below
fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Runs `f` on a thread; a result that does not come within [`PATIENCE`] fails the test.
fn within_patience<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("{what} did not return within {PATIENCE:?}"))
}

fn load(path: PathBuf) -> Result<Profile, ProfileError> {
    within_patience("profile::load", move || profile::load(&path))
}

#[test]
fn a_fifo_as_profile_extends_target_image_or_certificate_is_refused_at_once() {
    let dir = scratch("fifos");
    let fifo = dir.join("fifo.yaml");
    mkfifo(&fifo);
    let err = load(fifo.clone()).unwrap_err();
    assert!(err.file.ends_with("fifo.yaml"), "{err}");
    assert!(err.message.contains("not a regular file (a FIFO)"), "{err}");

    let base = valid("gen1-residence.yaml");
    let cases = [
        (
            "extends.yaml",
            "extends: fifo.yaml\n".to_owned(),
            "extends",
            (1, 1),
        ),
        (
            "image.yaml",
            format!("extends: {}\nimages:\n  face: fifo.yaml\n", base.display()),
            "images.face",
            (3, 3),
        ),
        (
            "certificate.yaml",
            format!(
                "extends: {}\nsignature:\n  certificate: fifo.yaml\n",
                base.display()
            ),
            "signature.certificate",
            (3, 3),
        ),
    ];
    for (name, text, field, position) in cases {
        std::fs::write(dir.join(name), text).unwrap();
        let err = load(dir.join(name)).unwrap_err();
        assert_eq!(err.field.as_deref(), Some(field), "{name}: {err}");
        assert_eq!(err.location, Some(position), "{name}: {err}");
        assert!(err.file.ends_with(name), "{name}: {err}");
        assert!(err.message.contains("fifo.yaml"), "{name}: {err}");
        assert!(
            err.message.contains("not a regular file (a FIFO)"),
            "{name}: {err}"
        );
    }
}

#[test]
fn a_fifo_in_a_profile_folder_is_an_error_naming_it_not_a_hang() {
    let dir = scratch("fifo-folder");
    std::fs::copy(valid("gen1-residence.yaml"), dir.join("ok.yaml")).unwrap();
    // The copy's relative image paths point nowhere: extend the original instead.
    std::fs::write(
        dir.join("ok.yaml"),
        format!("extends: {}\n", valid("gen1-residence.yaml").display()),
    )
    .unwrap();
    mkfifo(&dir.join("stuck.yaml"));
    let folder = dir.clone();
    let errors = within_patience("load_dir", move || profile::load_dir(&folder)).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].file.ends_with("stuck.yaml"), "{}", errors[0]);
    assert!(errors[0].message.contains("a FIFO"), "{}", errors[0]);
}

/// Two `ln -s . x` links once made the walk exponential; one link loaded each profile again
/// under another name. Folder links are not followed; a link to a file is a profile.
#[test]
fn links_to_folders_are_not_followed() {
    let dir = scratch("links");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("sub/one.yaml"),
        format!("extends: {}\n", valid("gen2-residence.yaml").display()),
    )
    .unwrap();
    std::os::unix::fs::symlink(".", dir.join("x")).unwrap();
    std::os::unix::fs::symlink(".", dir.join("y")).unwrap();
    std::os::unix::fs::symlink("..", dir.join("sub/up")).unwrap();
    std::os::unix::fs::symlink("sub/one.yaml", dir.join("alias.yaml")).unwrap();
    let folder = dir.clone();
    let paths = within_patience("profile_paths", move || profile::profile_paths(&folder)).unwrap();
    let names: Vec<_> = paths
        .iter()
        .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["alias.yaml", "sub/one.yaml"]);
    let folder = dir.clone();
    let profiles = within_patience("load_dir", move || profile::load_dir(&folder)).unwrap();
    assert_eq!(profiles.len(), 2);
}
