//! `mh admin`: bootstrap and manage an installation on its data directory.

use anyhow::Context;
use clap::{Args, Subcommand};
use mh_auth::KeyRing;
use mh_store::{AccountKind, AccountStore, MetadataStore, SqliteStore};
use serde::Serialize;

use crate::DataDirArg;

#[derive(Args)]
pub struct AdminCommand {
    #[command(subcommand)]
    command: AdminSubcommand,
}

#[derive(Subcommand)]
enum AdminSubcommand {
    /// Accounts (tenants).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Client credentials of accounts.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account with one client credential; prints {"account","client_id","client_secret"}.
    Create {
        /// 3-64 lowercase letters, digits and '-'.
        name: String,
        /// An organization account rather than a personal one.
        #[arg(long)]
        organization: bool,
        /// The account may review other accounts' handler packages.
        #[arg(long)]
        reviewer: bool,
        #[command(flatten)]
        data: DataDirArg,
    },
    /// List accounts as a JSON array.
    List {
        #[command(flatten)]
        data: DataDirArg,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Add a client credential to an account (name or identifier); prints it once.
    Create {
        account: String,
        #[command(flatten)]
        data: DataDirArg,
    },
    /// Revoke a client: it cannot obtain tokens, its refresh tokens die at once and its access
    /// tokens stop working within a second on a running server.
    Revoke {
        client_id: String,
        #[command(flatten)]
        data: DataDirArg,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Sign new tokens with a fresh key; tokens signed with the old one stay valid until they expire.
    Rotate {
        #[command(flatten)]
        data: DataDirArg,
    },
}

async fn open_store(data: &DataDirArg) -> anyhow::Result<SqliteStore> {
    mh_server::prepare_data_dir(&data.data_dir)?;
    Ok(SqliteStore::open(&data.data_dir).await?)
}

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string(value).context("cannot render the result")?
    );
    Ok(())
}

#[derive(Serialize)]
struct AccountLine {
    identifier: String,
    name: String,
    kind: &'static str,
    reviewer: bool,
}

pub async fn run(command: AdminCommand) -> anyhow::Result<()> {
    match command.command {
        AdminSubcommand::Account(AccountCommand::Create {
            name,
            organization,
            reviewer,
            data,
        }) => {
            let store = open_store(&data).await?;
            let kind = if organization {
                AccountKind::Organization
            } else {
                AccountKind::Personal
            };
            let created = mh_api::accounts::create_account(&store, &name, kind, reviewer).await;
            store.close().await;
            print_json(&created?)
        }
        AdminSubcommand::Account(AccountCommand::List { data }) => {
            let store = open_store(&data).await?;
            let accounts = store.list_accounts().await;
            store.close().await;
            let lines: Vec<AccountLine> = accounts?
                .into_iter()
                .map(|a| AccountLine {
                    identifier: a.id.to_string(),
                    name: a.name,
                    kind: a.kind.as_str(),
                    reviewer: a.reviewer,
                })
                .collect();
            print_json(&lines)
        }
        AdminSubcommand::Client(ClientCommand::Create { account, data }) => {
            let store = open_store(&data).await?;
            let created = mh_api::accounts::create_client(&store, &account).await;
            store.close().await;
            print_json(&created?)
        }
        AdminSubcommand::Client(ClientCommand::Revoke { client_id, data }) => {
            let store = open_store(&data).await?;
            let revoked = mh_api::accounts::revoke_client(&store, &client_id).await;
            store.close().await;
            revoked?;
            print_json(&serde_json::json!({ "revoked": client_id }))
        }
        AdminSubcommand::Keys(KeysCommand::Rotate { data }) => {
            mh_server::prepare_data_dir(&data.data_dir)?;
            let key = KeyRing::rotate(&data.data_dir)?;
            print_json(&serde_json::json!({ "current_key": key }))
        }
    }
}
