//! The IIS release notes' "Simple Read Mail Sample" (Active Messaging), in Rust.
//!
//! ```text
//! Session.Logon "Friendly Name", "someone@microsoft.com"
//! Set Inbox = Session.GetDefaultFolder(ActMsgFolderInbox)
//! If 0 < Inbox.Items.Count Then
//!     Set oMailItem = Inbox.Items.GetFirst
//!     strSubject = MailItem.Subject       ' sic: the sample reads MailItem, not oMailItem
//!     strText = MailItem.Text
//!     strSender = MailItem.Sender.Name
//! End If
//! ```
//!
//! The original reads properties of `MailItem` after fetching `oMailItem`; here the types
//! make that mistake impossible, and a missing property is an `Option`, not E_UNEXPECTED.
//!
//! Run: `cargo run --example read_mail -- [MAILROOT_DIR] [ADDRESS]` (default `./mailroot`
//! and `someone@localhost`): the newest message for ADDRESS in the Drop folder.

use mailroot::client::Session;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mailroot = args.next().unwrap_or_else(|| "./mailroot".to_owned());
    let address = args.next().unwrap_or_else(|| "someone@localhost".to_owned());

    // logon, logon name is used as the address whose mail is read
    let session = Session::logon_mailroot("Friendly Name", &address, mailroot.as_ref())?;
    // open inbox
    let inbox = session.inbox()?;
    // open first message
    if let Some(mail_item) = inbox.first() {
        let subject = mail_item.subject().unwrap_or("");
        let text = mail_item.text().unwrap_or("");
        let sender = mail_item.sender().map_or("", |p| p.name.as_str());
        println!("Count: {}", inbox.len());
        println!("Subject: {subject}");
        println!("Sender: {sender}");
        println!("Text: {}", text.trim_end());
    } else {
        println!("Count: 0");
    }
    Ok(())
}
