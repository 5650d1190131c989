//! What the next hop advertised in its EHLO reply, as the client needs it.
//!
//! TRUST: the EHLO reply is peer text. Unknown keywords are ignored, a malformed `SIZE`
//! value counts as "SIZE without a fixed limit"; nothing here fails.
//!
//! STANDARDS: RFC 5321 §4.1.1.1 (`ehlo-line = ehlo-keyword *( SP ehlo-param )`, keywords
//! case-insensitive), RFC 2920 (PIPELINING), RFC 1870 §4 (SIZE), RFC 6152 (8BITMIME),
//! RFC 6531 (SMTPUTF8), RFC 3030 (CHUNKING), RFC 3461 (DSN), RFC 2034
//! (ENHANCEDSTATUSCODES), RFC 3207 (STARTTLS), RFC 4954 §3 (AUTH).

use crate::smtp::reply::Reply;

/// Service extensions of the server, from its EHLO reply. All `false`/`None` after HELO.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerExtensions {
    /// PIPELINING: MAIL, RCPT... and DATA go out in one write (RFC 2920).
    pub pipelining: bool,
    /// SIZE and its value: `Some(0)` means advertised without a fixed limit.
    pub size: Option<u64>,
    /// 8BITMIME: `BODY=8BITMIME` accepted.
    pub eight_bit_mime: bool,
    /// SMTPUTF8: UTF-8 addresses and headers accepted.
    pub smtputf8: bool,
    /// CHUNKING: BDAT accepted (used unless `ClientConfig::use_bdat` is off).
    pub chunking: bool,
    /// DSN: NOTIFY/ORCPT/RET/ENVID accepted.
    pub dsn: bool,
    /// ENHANCEDSTATUSCODES.
    pub enhanced_status_codes: bool,
    /// STARTTLS offered (RFC 3207); used as `ClientConfig::tls` says.
    pub starttls: bool,
    /// AUTH offered, with any mechanism (RFC 4954).
    pub auth: bool,
    /// AUTH PLAIN offered.
    pub auth_plain: bool,
    /// AUTH LOGIN offered.
    pub auth_login: bool,
}

impl PeerExtensions {
    /// Parse the lines after the first of a `250` EHLO reply.
    #[must_use]
    pub fn from_ehlo(reply: &Reply) -> Self {
        let mut ext = PeerExtensions::default();
        for line in reply.text.split('\n').skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else { continue };
            let is = |k: &str| keyword.eq_ignore_ascii_case(k);
            if is("PIPELINING") {
                ext.pipelining = true;
            } else if is("SIZE") {
                ext.size = Some(words.next().and_then(|v| v.parse().ok()).unwrap_or(0));
            } else if is("8BITMIME") {
                ext.eight_bit_mime = true;
            } else if is("SMTPUTF8") {
                ext.smtputf8 = true;
            } else if is("CHUNKING") {
                ext.chunking = true;
            } else if is("DSN") {
                ext.dsn = true;
            } else if is("ENHANCEDSTATUSCODES") {
                ext.enhanced_status_codes = true;
            } else if is("STARTTLS") {
                ext.starttls = true;
            } else if is("AUTH")
                || keyword.get(..5).is_some_and(|k| k.eq_ignore_ascii_case("AUTH="))
            {
                // `AUTH PLAIN LOGIN`, or the pre-RFC `AUTH=PLAIN LOGIN` some servers still send.
                ext.auth = true;
                let first = keyword.get(5..).filter(|m| !m.is_empty());
                for mech in first.into_iter().chain(words) {
                    ext.auth_plain |= mech.eq_ignore_ascii_case("PLAIN");
                    ext.auth_login |= mech.eq_ignore_ascii_case("LOGIN");
                }
            }
        }
        ext
    }

    /// The fixed size limit in bytes, if the server advertised one.
    #[must_use]
    pub fn size_limit(&self) -> Option<u64> {
        self.size.filter(|&n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ehlo(lines: &str) -> PeerExtensions {
        PeerExtensions::from_ehlo(&Reply { code: 250, status: None, text: lines.to_owned().into() })
    }

    #[test]
    fn table() {
        let none = PeerExtensions::default();
        let cases: &[(&str, PeerExtensions)] = &[
            ("mx.example", none),
            // The first line is the greeting, never a keyword.
            ("PIPELINING", none),
            ("mx\npipelining", PeerExtensions { pipelining: true, ..none }),
            ("mx\nSIZE 1000", PeerExtensions { size: Some(1000), ..none }),
            ("mx\nSIZE", PeerExtensions { size: Some(0), ..none }),
            ("mx\nSIZE junk", PeerExtensions { size: Some(0), ..none }),
            ("mx\nSIZE 99999999999999999999999", PeerExtensions { size: Some(0), ..none }),
            (
                "mx\n8BITMIME\nSMTPUTF8",
                PeerExtensions { eight_bit_mime: true, smtputf8: true, ..none },
            ),
            (
                "mx\nCHUNKING\nDSN\nENHANCEDSTATUSCODES\nSTARTTLS\nAUTH PLAIN\nX-FOO\n",
                PeerExtensions {
                    chunking: true,
                    dsn: true,
                    enhanced_status_codes: true,
                    starttls: true,
                    auth: true,
                    auth_plain: true,
                    ..none
                },
            ),
            ("mx\nauth login cram-md5", PeerExtensions { auth: true, auth_login: true, ..none }),
            (
                "mx\nAUTH=LOGIN PLAIN",
                PeerExtensions { auth: true, auth_login: true, auth_plain: true, ..none },
            ),
            ("mx\nAUTH CRAM-MD5", PeerExtensions { auth: true, ..none }),
            ("mx\nAUTHX PLAIN", none),
        ];
        for (text, want) in cases {
            assert_eq!(ehlo(text), *want, "{text:?}");
        }
        assert_eq!(ehlo("mx\nSIZE 0").size_limit(), None);
        assert_eq!(ehlo("mx\nSIZE 7").size_limit(), Some(7));
    }
}
