//! `byok ticket`: list, show, comment.

use byok_api as api;
use clap::Subcommand;

use super::rfc3339;
use crate::client::Client;
use crate::error::CliError;

#[derive(Debug, Subcommand)]
pub(crate) enum TicketCommand {
    List,
    Show {
        id: i64,
    },
    /// Comment on a ticket (a tenant admin's "ready" starts restoration).
    Comment {
        id: i64,
        #[arg(long)]
        body: String,
    },
}

pub(crate) async fn run(client: Client, command: TicketCommand) -> Result<(), CliError> {
    match command {
        TicketCommand::List => {
            let tickets: Vec<api::Ticket> = client.tickets().await?;
            for t in tickets {
                println!("#{} [{}] {} (tenant {}, updated {})", t.id, t.status, t.title, t.tenant, rfc3339(t.updated_at));
            }
            Ok(())
        }
        TicketCommand::Show { id } => {
            let detail: api::TicketDetail = client.ticket(id).await?;
            let t = &detail.ticket;
            println!("#{} [{}] {}", t.id, t.status, t.title);
            for c in &detail.comments {
                println!("\n--- {} at {}\n{}", c.author, rfc3339(c.created_at), c.body);
            }
            Ok(())
        }
        TicketCommand::Comment { id, body } => {
            let answer = client.comment(id, body).await?;
            match answer.restoration {
                Some(r) if r.restored => println!("access restored"),
                Some(r) => {
                    println!("not restored yet:");
                    for m in &r.missing {
                        println!("- {m}");
                    }
                }
                None => println!("comment added"),
            }
            Ok(())
        }
    }
}
