//! The IIS release notes' "Simple Send Mail Sample" (Active Messaging), in Rust.
//!
//! ```text
//! Session.Logon "Friendly Name", "someone@microsoft.com"
//! Set Outbox = Session.GetDefaultFolder(ActMsgFolderOutbox)
//! Set MailItem = Outbox.Items.Add("Subject", "Message Text", ActMsgHigh)
//! MailItem.Recipients.Add "Friendly Name", "someone@microsoft.com", ActMsgTo
//! MailItem.Send
//! ```
//!
//! Run: `cargo run --example send_mail -- [MAILROOT_DIR | HOST:PORT] [ADDRESS]`
//! (default `./mailroot` and `someone@localhost`): a directory sends through its Pickup
//! folder, `HOST:PORT` over SMTP (e.g. `127.0.0.1:2525`, the embedded default server).

use mailroot::client::{Importance, Kind, Session, SmtpServer, Transport};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_else(|| "./mailroot".to_owned());
    let address = args.next().unwrap_or_else(|| "someone@localhost".to_owned());

    // logon, logon name is used as from address
    let session = match target.rsplit_once(':').and_then(|(h, p)| Some((h, p.parse().ok()?))) {
        Some((host, port)) => {
            Session::logon("Friendly Name", &address, Transport::Smtp(SmtpServer::new(host, port)))?
        }
        None => Session::logon_mailroot("Friendly Name", &address, target.as_ref())?,
    };
    // open outbox, create message
    let mut mail_item = session.outbox().add("Subject", "Message Text", Importance::High);
    // create To recipient
    mail_item.recipients_mut().add("Friendly Name", &address, Kind::To)?;
    // send message (the objects are released when they go out of scope)
    let report = mail_item.send()?;
    println!("sent to {}", report.accepted.join(", "));
    Ok(())
}
