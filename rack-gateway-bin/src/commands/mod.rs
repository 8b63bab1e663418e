//! One module per command of the binary.

pub mod audit;
pub mod dev;
pub mod mock_rack;
pub mod rbac;
pub mod serve;
pub mod token;
pub mod user;

use crate::cli::Command;
use crate::config::{Env, StoreConfig};
use crate::failure::Failure;

/// Runs a parsed command.
pub async fn run(command: Command) -> Result<(), Failure> {
    let env = Env::from_process();
    match command {
        Command::Serve => serve::run(&env).await,
        Command::Dev(args) => dev::run(args).await,
        Command::MockRack(args) => mock_rack::run(args).await,
        Command::Migrate => {
            let store = StoreConfig::from_env(&env)?.open().await?;
            println!("migrations applied ({} store)", store.backend());
            Ok(())
        }
        Command::Token(command) => token::run(&env, command).await,
        Command::User(command) => user::run(&env, command).await,
        Command::Rbac(command) => rbac::run(command),
        Command::Audit(command) => audit::run(&env, command).await,
    }
}
