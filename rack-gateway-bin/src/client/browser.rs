//! Opening the sign-in page in the user's browser, when there is one to open.

use std::process::{Command, Stdio};

use url::Url;

/// What became of the attempt to open a browser.
#[derive(Debug)]
pub enum BrowserOutcome {
    /// The opener was started.
    Opened,
    /// No graphical session to open a browser in (an SSH session, a container, CI).
    NoDisplay,
    /// The opener could not be started; the user opens the printed URL instead.
    Failed(String),
}

/// The program that hands a URL to the desktop's browser.
#[cfg(target_os = "macos")]
const OPENER: &str = "open";
#[cfg(not(target_os = "macos"))]
const OPENER: &str = "xdg-open";

/// Whether a browser can be shown: always on macOS, elsewhere when an X11 or Wayland
/// session is there (DISPLAY or WAYLAND_DISPLAY set).
fn has_display() -> bool {
    if cfg!(target_os = "macos") {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

/// Asks the desktop to open `url`, without waiting for the browser and without ever failing
/// the sign-in: the URL is printed too.
pub fn open(url: &Url) -> BrowserOutcome {
    if !has_display() {
        return BrowserOutcome::NoDisplay;
    }
    // The URL is one argument, never text for a shell.
    let spawned = Command::new(OPENER)
        .arg(url.as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(mut child) => {
            // Reaped in the background: some openers only return when the browser exits.
            std::thread::spawn(move || child.wait());
            BrowserOutcome::Opened
        }
        Err(error) => BrowserOutcome::Failed(format!("{OPENER}: {error}")),
    }
}
