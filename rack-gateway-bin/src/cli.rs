//! The command line: `rack-gateway <command>`.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::client::{GatewayUrl, RackName};

/// An access gateway for Convox racks: sign-in, per-route RBAC, audit, and forwarding.
#[derive(Debug, Parser)]
#[command(name = "rack-gateway", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway from environment configuration.
    Serve,
    /// One-command trial: embedded store, in-process mock rack, ready-made tokens.
    Dev(DevArgs),
    /// Run a fake Convox rack API for demos, tests and benchmarks.
    MockRack(MockRackArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect the access model.
    #[command(subcommand)]
    Rbac(RbacCommand),
    /// Verify or export the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Sign in to a gateway in the browser and store the session as RACK (which becomes current).
    Login(LoginArgs),
    /// End the session of a rack on its gateway and forget it here.
    Logout(RackChoice),
    /// List the racks signed in to; `*` marks the current one.
    Racks,
    /// Make RACK the current rack.
    Switch {
        /// A rack signed in to with `rack-gateway login`.
        rack: RackName,
    },
    /// Run the installed Convox CLI against a rack through its gateway, e.g. `rack-gateway convox apps`.
    ///
    /// Everything after `convox` goes to the Convox CLI as it is (`--help` included), except a
    /// leading `--rack RACK`, which picks the rack here, and a leading `--`, which ends this
    /// command's options. The Convox CLI is $RACK_GATEWAY_CONVOX_BIN, else `convox` on PATH.
    #[command(disable_help_flag = true)]
    Convox(ConvoxArgs),
}

/// Options of `login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// A short name for this gateway's rack, chosen here: lower-case letters, digits and '-'.
    pub rack: RackName,
    /// The gateway's base URL: https, or http for localhost only.
    pub url: GatewayUrl,
    /// Only print the sign-in URL; do not open a browser.
    #[arg(long)]
    pub no_browser: bool,
}

/// The rack a client command works on.
#[derive(Debug, Args)]
pub struct RackChoice {
    /// The rack to use instead of the current one.
    #[arg(long, value_name = "RACK")]
    pub rack: Option<RackName>,
}

/// Options of `convox`.
#[derive(Debug, Args)]
pub struct ConvoxArgs {
    /// Which rack; must come right after `convox`.
    #[command(flatten)]
    pub choice: RackChoice,
    /// The Convox CLI's arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CONVOX ARGS"
    )]
    pub args: Vec<OsString>,
}

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every MAC, check the links and the anchors: exit 0 intact, 1 tampered, 2 cannot verify.
    Verify {
        /// Print a JSON report.
        #[arg(long)]
        json: bool,
    },
    /// Stream the audit log to stdout, oldest first.
    Export {
        /// jsonl (default) or csv.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Only records at or after this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Only records before this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        until: Option<String>,
    },
}

/// Options of `dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8447")]
    pub listen: SocketAddr,
    /// Directory of the embedded store.
    #[arg(long, default_value = "./.rack-gateway-dev")]
    pub data_dir: PathBuf,
}

/// Options of `mock-rack`.
#[derive(Debug, Args)]
pub struct MockRackArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:5443")]
    pub listen: SocketAddr,
    /// The rack token clients must send as the Basic password.
    #[arg(long, env = "MOCK_RACK_TOKEN")]
    pub token: String,
}

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (the only time it is shown).
    Create {
        /// Unique name.
        #[arg(long)]
        name: String,
        /// Role whose permissions the token gets (viewer, ops, deployer, cicd, admin, auditor).
        #[arg(long, required_unless_present = "permission")]
        role: Option<String>,
        /// Explicit permission (repeatable), e.g. convox:app:list or convox:app:*.
        #[arg(long, conflicts_with = "role")]
        permission: Vec<String>,
        /// Owning user's email; the token stops working when its owner is locked or deleted.
        #[arg(long)]
        owner: Option<String>,
        /// Lifetime such as 30d, 12h, 90m (default: no expiry).
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List active tokens.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by name or id.
    Revoke {
        /// Token name or public id.
        name_or_id: String,
    },
}

/// `user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user.
    Add {
        /// Email the user signs in with.
        email: String,
        /// Role (repeatable): viewer, ops, deployer, admin, auditor.
        #[arg(long, required = true)]
        role: Vec<String>,
        /// Display name (default: the email's local part).
        #[arg(long)]
        name: Option<String>,
    },
    /// List users.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Lock a user: their sessions and tokens stop working at once.
    Lock {
        /// The user's email.
        email: String,
        /// Why (shown to administrators).
        #[arg(long, default_value = "locked by operator")]
        reason: String,
    },
    /// Unlock a user.
    Unlock {
        /// The user's email.
        email: String,
    },
}

/// `rbac` subcommands.
#[derive(Debug, Subcommand)]
pub enum RbacCommand {
    /// Explain whether a role (or permission list) may call METHOD PATH, and why.
    Explain {
        /// Role to check (repeatable).
        #[arg(long, required_unless_present = "permission")]
        role: Vec<String>,
        /// Token permission to check instead of roles (repeatable).
        #[arg(long, conflicts_with = "role")]
        permission: Vec<String>,
        /// Treat the request as a websocket upgrade.
        #[arg(long)]
        websocket: bool,
        /// Allow destructive actions (as the allow_destructive_actions setting does).
        #[arg(long)]
        allow_destructive: bool,
        /// HTTP method, e.g. GET.
        method: String,
        /// Convox API path, e.g. /apps/web/restart (a /api/v1/rack-proxy prefix is removed).
        path: String,
    },
}
