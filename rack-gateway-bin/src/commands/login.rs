//! `rack-gateway login RACK URL`: sign in in the browser, then store the session as RACK.

use anyhow::anyhow;

use crate::cli::LoginArgs;
use crate::client::browser::{self, BrowserOutcome};
use crate::client::http::GatewayHttp;
use crate::client::one_line::one_line;
use crate::client::revoke::revoke;
use crate::client::sign_in::{self, SignedIn};
use crate::client::{ConfigStore, RackCredential};
use crate::failure::Failure;

/// Signs in to the gateway at `args.url` and makes `args.rack` the current rack.
pub async fn run(args: LoginArgs) -> Result<(), Failure> {
    let store = ConfigStore::from_env()?;
    // An exposed or broken file is reported before the user spends time in the browser.
    store.load()?;
    let gateway = GatewayHttp::new(args.url.clone())?;
    let started = sign_in::start(&gateway, &device_name()).await?;
    let auth_url = started.auth_url()?;
    eprintln!("To sign in to {}, open this URL in a browser:", args.rack);
    println!("{auth_url}");
    if !args.no_browser {
        match browser::open(&auth_url) {
            BrowserOutcome::Opened => eprintln!("(opening it in your browser)"),
            BrowserOutcome::NoDisplay => {}
            BrowserOutcome::Failed(why) => {
                eprintln!("Could not open a browser ({why}); open the URL above yourself.");
            }
        }
    }
    eprintln!(
        "Waiting for the sign-in to finish (until {})...",
        started.expires_at.format("%H:%M:%S UTC")
    );
    let signed_in = sign_in::wait_until_signed_in(&gateway, &started).await?;
    let shown_who = who(&signed_in);
    let expires = signed_in
        .expires_at
        .format("%Y-%m-%d %H:%M UTC")
        .to_string();
    let token = signed_in.token.clone();
    if let Err(error) = store_session(&store, &args, signed_in) {
        // A session nobody holds any more is only a risk: end it rather than leave it open.
        let ended = revoke(&gateway, &token).await.is_ok();
        let state = if ended {
            "the new session was ended again"
        } else {
            "the new session could not be ended; it lapses on its own"
        };
        return Err(Failure::Failed(anyhow!(
            "signed in, but cannot store the session ({error}); {state}"
        )));
    }
    println!(
        "Signed in to {} as {shown_who}; the session expires {expires}. {} is the current rack.",
        args.url, args.rack
    );
    Ok(())
}

/// Adds the session to the stored configuration, read again now: the user may have changed it
/// from another terminal while this command waited for the browser.
fn store_session(
    store: &ConfigStore,
    args: &LoginArgs,
    signed_in: SignedIn,
) -> Result<(), Failure> {
    let mut config = store.load()?;
    config.remember(
        args.rack.clone(),
        RackCredential {
            url: args.url.clone(),
            token: signed_in.token,
            email: signed_in.email,
            expires_at: signed_in.expires_at,
            session_id: signed_in.session_id,
            unknown: Default::default(),
        },
    );
    store.save(&config)?;
    Ok(())
}

/// "Name <email>", or the email alone.
fn who(signed_in: &SignedIn) -> String {
    let name = one_line(&signed_in.name);
    let email = one_line(&signed_in.email);
    if name.is_empty() {
        email
    } else {
        format!("{name} <{email}>")
    }
}

/// This machine's name, as the gateway lists the session under it.
fn device_name() -> String {
    whoami::hostname()
        .map(|name| one_line(&name))
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown device".to_owned())
}
