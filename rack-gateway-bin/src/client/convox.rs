//! Finding the installed Convox CLI and handing the terminal over to it.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The variable naming the Convox CLI to run.
pub const CONVOX_BIN_VAR: &str = "RACK_GATEWAY_CONVOX_BIN";

/// The variable the Convox CLI reads its rack endpoint from.
pub const RACK_URL_VAR: &str = "RACK_URL";

/// The program name looked up on PATH when the variable is unset.
const DEFAULT_PROGRAM: &str = "convox";

/// The Convox CLI is not installed where it was looked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Convox CLI was not found ({looked}): install it (https://docs.convox.com/installation/cli) or set {CONVOX_BIN_VAR} to its path")]
pub struct ConvoxMissing {
    looked: String,
}

/// The Convox CLI could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot run {program}: {error}")]
pub struct ConvoxFailed {
    program: String,
    error: std::io::Error,
}

/// The Convox CLI to run: `$RACK_GATEWAY_CONVOX_BIN` (a path, or a name looked up on PATH),
/// else `convox` on PATH.
pub fn locate(
    configured: Option<OsString>,
    path_var: Option<OsString>,
) -> Result<PathBuf, ConvoxMissing> {
    let configured = configured.filter(|value| !value.is_empty());
    let program = configured.as_deref().unwrap_or(OsStr::new(DEFAULT_PROGRAM));
    let as_path = Path::new(program);
    if as_path.components().count() > 1 {
        return if is_executable(as_path) {
            Ok(as_path.to_path_buf())
        } else {
            Err(ConvoxMissing {
                looked: format!(
                    "{CONVOX_BIN_VAR}={} is not an executable file",
                    as_path.display()
                ),
            })
        };
    }
    path_var
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| ConvoxMissing {
            looked: match configured {
                Some(_) => format!("{CONVOX_BIN_VAR}={} is not on PATH", as_path.display()),
                None => "no `convox` on PATH".to_owned(),
            },
        })
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Runs `program ARGS` with `RACK_URL` set and everything else inherited (environment,
/// standard streams, working directory), and returns its exit status when it ends.
///
/// On Unix the process becomes the Convox CLI (exec), so signals from the terminal, job
/// control and the exit status are exactly the Convox CLI's, and this only returns on failure.
pub fn run(program: &Path, args: &[OsString], rack_url: &str) -> Result<u8, ConvoxFailed> {
    let mut command = Command::new(program);
    command.args(args).env(RACK_URL_VAR, rack_url);
    let failed = |error| ConvoxFailed {
        program: program.display().to_string(),
        error,
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        Err(failed(command.exec()))
    }
    #[cfg(not(unix))]
    {
        let status = command.status().map_err(failed)?;
        // Outside Unix an exit code always exists; the low byte is what a shell sees.
        Ok(status.code().map_or(1, |code| (code & 0xff) as u8))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn script(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn finds_convox_on_path_or_where_the_variable_points() {
        let dir = tempfile::tempdir().expect("tempdir");
        let on_path = script(dir.path(), "convox", 0o755);
        let elsewhere = script(dir.path(), "convox-3.21", 0o755);
        let path_var = Some(OsString::from(format!(
            "/nonexistent:{}",
            dir.path().display()
        )));
        assert_eq!(locate(None, path_var.clone()), Ok(on_path));
        assert_eq!(locate(Some(elsewhere.clone().into()), None), Ok(elsewhere));
        assert!(locate(Some("convox-3.21".into()), path_var).is_ok());
    }

    #[test]
    fn says_what_it_looked_for_when_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let not_executable = script(dir.path(), "convox", 0o644);
        let path_var = Some(dir.path().as_os_str().to_owned());
        let missing = locate(None, path_var).expect_err("not executable");
        assert!(
            missing.to_string().contains("no `convox` on PATH"),
            "{missing}"
        );
        assert!(missing.to_string().contains(CONVOX_BIN_VAR), "{missing}");
        let missing = locate(Some(not_executable.into()), None).expect_err("not executable");
        assert!(
            missing.to_string().contains("is not an executable file"),
            "{missing}"
        );
    }
}
