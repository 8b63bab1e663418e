//! `rack-gateway mock-rack`.

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::cli::MockRackArgs;
use crate::failure::Failure;
use crate::gateway::shutdown_signal;
use crate::mock_rack::MockRack;

/// Serves the mock rack until SIGINT/SIGTERM; prints its URL first.
pub async fn run(args: MockRackArgs) -> Result<(), Failure> {
    crate::logging::init(false);
    if args.token.trim().is_empty() {
        return Err(Failure::Usage("--token must not be empty".into()));
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let address = listener.local_addr().context("reading the bound address")?;
    println!("mock rack listening on http://{address}");
    MockRack::new(args.token)
        .serve(listener, shutdown_signal())
        .await
        .context("serving the mock rack")?;
    Ok(())
}
