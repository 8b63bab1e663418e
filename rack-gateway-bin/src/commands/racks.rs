//! `rack-gateway racks`: the racks signed in to.

use chrono::Utc;

use crate::client::ConfigStore;
use crate::failure::Failure;

/// Prints one line per stored rack: `*` for the current one, the email, the expiry (and
/// "expired" when past), and the gateway.
pub fn run() -> Result<(), Failure> {
    let store = ConfigStore::from_env()?;
    let config = store.load()?;
    if config.racks.is_empty() {
        println!("No racks yet: sign in with `rack-gateway login RACK URL`.");
        return Ok(());
    }
    let now = Utc::now();
    let rows: Vec<[String; 5]> = config
        .racks
        .iter()
        .map(|(name, credential)| {
            let marker = if config.current.as_ref() == Some(name) {
                "*"
            } else {
                " "
            };
            let mut expires = credential
                .expires_at
                .format("%Y-%m-%d %H:%M UTC")
                .to_string();
            if credential.is_expired_at(now) {
                expires.push_str(" (expired)");
            }
            [
                marker.to_owned(),
                name.to_string(),
                credential.email.clone(),
                expires,
                credential.url.to_string(),
            ]
        })
        .collect();
    let header = [
        String::new(),
        "RACK".to_owned(),
        "EMAIL".to_owned(),
        "EXPIRES".to_owned(),
        "GATEWAY".to_owned(),
    ];
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let [marker, name, email, expires, url] = row;
        println!(
            "{marker:<w0$} {name:<w1$}  {email:<w2$}  {expires:<w3$}  {url}",
            w0 = widths[0].max(1),
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
    }
    Ok(())
}
