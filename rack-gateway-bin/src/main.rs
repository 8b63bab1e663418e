//! The `rack-gateway` binary: parses the command line and runs the command.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use rack_gateway_bin::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One TLS provider for the whole process, chosen explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(rack_gateway_bin::commands::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if failure.has_message() {
                eprintln!("error: {failure}");
            }
            ExitCode::from(failure.exit_code())
        }
    }
}
