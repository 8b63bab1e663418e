//! `rack-gateway dev`: a complete gateway on this machine in one command.
//!
//! It uses the embedded store in `./.rack-gateway-dev/`, starts a mock rack in-process on a
//! free loopback port, makes an admin and a viewer user, replaces their `dev-admin` and
//! `dev-viewer` tokens with fresh ones, makes a one-time sign-in link that opens a browser
//! session for the admin (no identity provider needed), and prints everything needed to try it.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use rack_gateway_core::identity::{ApiTokenSecret, NewApiToken, NewUser};
use rack_gateway_core::rbac::Role;
use rack_gateway_core::store::Store;
use rack_gateway_layers::forward::{RackTarget, RackTls};
use rand::RngCore as _;
use tokio::net::TcpListener;

use crate::cli::DevArgs;
use crate::config::{AuditKeys, DevSecrets, RackConfig, Secret, ServeConfig, StoreConfig};
use crate::failure::Failure;
use crate::gateway::{shutdown_signal, Gateway};
use crate::mock_rack::MockRack;
use crate::signin::DevLink;

const DEV_USERS: [(&str, &str, Role); 2] = [
    ("admin@dev.local", "dev-admin", Role::Admin),
    ("viewer@dev.local", "dev-viewer", Role::Viewer),
];

/// Runs the dev gateway until Ctrl-C.
pub async fn run(args: DevArgs) -> Result<(), Failure> {
    crate::logging::init(false);
    let store_config = StoreConfig {
        database_url: None,
        data_dir: args.data_dir.clone(),
        max_connections: 4,
    };
    let store = store_config.open().await.context("opening the dev store")?;

    let rack_token = random_text(24);
    let rack_listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("binding the mock rack")?;
    let rack_address = rack_listener.local_addr().context("mock rack address")?;
    let mock = MockRack::new(rack_token.clone());
    tokio::spawn(async move {
        if let Err(error) = mock.serve(rack_listener, std::future::pending()).await {
            tracing::error!(%error, "mock rack stopped");
        }
    });

    let secrets = dev_secrets(&args.data_dir)?;
    let config = dev_config(
        args.listen,
        store_config,
        rack_address,
        rack_token,
        &secrets,
    )?;
    let tokens = issue_dev_tokens(store.as_ref(), &config.audit_keys()).await?;
    // The web UI is not served yet: the link lands on the signed-in principal.
    let (link, link_path) = DevLink::new(DEV_USERS[0].0, "/api/v1/me");
    let gateway = Gateway::build_dev(&config, store, link).await?;
    let listener = crate::server::listen::bind(args.listen)
        .with_context(|| format!("binding {} (choose another with --listen)", args.listen))?;
    let address = listener.local_addr().context("gateway address")?;
    print_banner(address, rack_address, &args, &tokens, &link_path);
    gateway
        .serve(listener, shutdown_signal())
        .await
        .context("serving")?;
    Ok(())
}

fn dev_config(
    listen: SocketAddr,
    store: StoreConfig,
    rack_address: SocketAddr,
    rack_token: String,
    secrets: &DevSecrets,
) -> Result<ServeConfig, Failure> {
    let decode = |text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .context("dev-secrets.json is corrupt; delete it")
    };
    let base = format!("http://{rack_address}")
        .parse()
        .context("mock rack URL")?;
    // Settings overrides and the connection cap apply to a dev gateway as to a real one.
    let process_env = crate::config::Env::from_process();
    Ok(ServeConfig {
        listen,
        dev_mode: true,
        domain: None,
        app_secret_key: Secret::new(decode(&secrets.app_secret_key)?),
        audit_hmac_secret: Secret::new(decode(&secrets.audit_hmac_secret)?),
        audit_hmac_previous: Vec::new(),
        store,
        rack: RackConfig {
            target: RackTarget {
                base,
                username: "convox".to_owned(),
                token: rack_token,
                tls: RackTls::Insecure,
                connect_timeout: Duration::from_secs(2),
                header_timeout: Duration::from_secs(30),
            },
            alias: "dev".to_owned(),
            display_name: "Dev (mock rack)".to_owned(),
        },
        tls: None,
        bootstrap_users: Vec::new(),
        settings_env: std::sync::Arc::new(process_env.settings_overrides()?),
        json_logs: false,
        trusted_proxies: Vec::new(),
        log_retention_days: 400,
        secret_env_vars: Vec::new(),
        anchors: None,
        max_connections: crate::config::max_connections(&process_env)?,
        sign_in: None,
    })
}

/// The dev secrets of this data directory, made once so the audit chain survives restarts.
fn dev_secrets(data_dir: &std::path::Path) -> Result<DevSecrets, Failure> {
    if let Some(secrets) = DevSecrets::load(data_dir) {
        return Ok(secrets);
    }
    let encode = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
    let secrets = DevSecrets {
        app_secret_key: encode(random_bytes()),
        audit_hmac_secret: encode(random_bytes()),
    };
    let text = serde_json::to_string_pretty(&secrets).context("encoding dev secrets")?;
    write_private(&DevSecrets::path(data_dir), text.as_bytes())
        .context("writing dev-secrets.json")?;
    Ok(secrets)
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

async fn issue_dev_tokens(
    store: &dyn Store,
    keys: &AuditKeys,
) -> Result<Vec<(Role, String)>, Failure> {
    let mut issued = Vec::new();
    for (email, token_name, role) in DEV_USERS {
        let user = store
            .ensure_user(&NewUser {
                email: email.to_owned(),
                name: format!("Dev {}", role.label()),
                roles: vec![role],
            })
            .await?;
        // Only hashes are stored, so a fresh token is issued on every start.
        store.revoke_token(token_name).await?;
        let secret = ApiTokenSecret::generate();
        store
            .insert_token(&NewApiToken {
                name: token_name.to_owned(),
                hash: secret.hash(),
                owner_id: Some(user.id),
                permissions: role.permissions().iter().map(|p| (*p).to_owned()).collect(),
                role: Some(role.name().to_owned()),
                created_by: Some("dev".to_owned()),
                expires_at: None,
            })
            .await?;
        crate::audit::record_operator_action(
            store,
            keys,
            "token.create",
            token_name,
            &format!("dev token for {email} with role {role}"),
        )
        .await?;
        issued.push((role, secret.expose().to_owned()));
    }
    Ok(issued)
}

fn print_banner(
    address: SocketAddr,
    rack: SocketAddr,
    args: &DevArgs,
    tokens: &[(Role, String)],
    link_path: &str,
) {
    let token_for = |wanted: Role| {
        tokens
            .iter()
            .find(|(role, _)| *role == wanted)
            .map(|(_, token)| token.as_str())
            .unwrap_or_default()
    };
    let admin = token_for(Role::Admin);
    println!(
        "rack-gateway dev is running (embedded store in {})",
        args.data_dir.display()
    );
    println!("  gateway:      http://{address}");
    println!("  rack proxy:   http://{address}/api/v1/rack-proxy  (mock rack on http://{rack})");
    println!("  admin token:  {admin}");
    println!("  viewer token: {}", token_for(Role::Viewer));
    println!("  sign in:      http://{address}{link_path}  (admin, one use)");
    println!("try:");
    println!("  curl -u convox:{admin} http://{address}/api/v1/rack-proxy/apps");
    println!("  RACK_URL=http://convox:{admin}@{address}/api/v1/rack-proxy convox apps");
    println!(
        "manage it from another shell with RGW_DATA_DIR={} rack-gateway token list",
        args.data_dir.display()
    );
}

fn random_bytes() -> Vec<u8> {
    let mut bytes = vec![0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

fn random_text(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
