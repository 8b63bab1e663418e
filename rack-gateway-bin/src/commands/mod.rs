//! One module per command of the binary.

pub mod audit;
pub mod convox;
pub mod dev;
pub mod login;
pub mod logout;
pub mod mock_rack;
pub mod racks;
pub mod rbac;
pub mod serve;
pub mod switch;
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
        Command::Login(args) => login::run(args).await,
        Command::Logout(choice) => logout::run(choice).await,
        Command::Racks => racks::run(),
        Command::Switch { rack } => switch::run(rack),
        Command::Convox(args) => convox::run(args),
    }
}
