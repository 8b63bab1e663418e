//! `rack-gateway audit verify|export`.

use anyhow::Context as _;
use futures_util::StreamExt as _;
use tokio::io::AsyncWriteExt as _;

use crate::audit::{export, parse_time, verify_chain, ExportFormat};
use crate::cli::AuditCommand;
use crate::config::{AuditKeys, Env, StoreConfig};
use crate::failure::Failure;

/// Runs an audit subcommand.
pub async fn run(env: &Env, command: AuditCommand) -> Result<(), Failure> {
    let store_config = StoreConfig::from_env(env)?;
    match command {
        AuditCommand::Verify { json } => {
            let keys = AuditKeys::from_env(env, &store_config)?;
            // Exit 2 when verification cannot run: store unreachable, anchors unreadable.
            let cannot = |what: String| Failure::Usage(format!("cannot verify: {what}"));
            let store = store_config
                .open_existing()
                .await
                .map_err(|e| cannot(e.to_string()))?;
            let anchors = crate::anchors::claims_for_verify(env, store.as_ref())
                .await
                .map_err(|e| cannot(e.to_string()))?;
            let report = verify_chain(store.as_ref(), &keys.keyring(), Some(&anchors))
                .await
                .map_err(|e| cannot(e.to_string()))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).context("encoding the report")?
                );
            } else if report.intact {
                println!(
                    "audit chain intact: {} records checked (seq {}..={}), {} anchors checked",
                    report.checked,
                    report.start_seq + 1,
                    report.head_seq,
                    report.anchors_checked
                );
            } else {
                println!(
                    "audit chain TAMPERED at seq {}: {}",
                    report.first_bad_seq.unwrap_or_default(),
                    report.problem.as_deref().unwrap_or_default()
                );
            }
            if report.intact {
                Ok(())
            } else {
                Err(Failure::Failed(anyhow::anyhow!(
                    "tampering found at seq {}",
                    report.first_bad_seq.unwrap_or_default()
                )))
            }
        }
        AuditCommand::Export {
            format,
            since,
            until,
        } => {
            let format: ExportFormat = format.parse().map_err(Failure::Usage)?;
            let since = since
                .as_deref()
                .map(parse_time)
                .transpose()
                .map_err(Failure::Usage)?;
            let until = until
                .as_deref()
                .map(parse_time)
                .transpose()
                .map_err(Failure::Usage)?;
            let store = store_config.open_existing().await?;
            let mut stdout = tokio::io::stdout();
            let mut chunks = std::pin::pin!(export(store, since, until, format));
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.context("reading the audit log")?;
                stdout
                    .write_all(&chunk)
                    .await
                    .context("writing to stdout")?;
            }
            stdout.flush().await.context("writing to stdout")?;
            Ok(())
        }
    }
}
