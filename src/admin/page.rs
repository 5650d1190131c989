//! The web admin page: HTML, CSS and JavaScript compiled into the binary (`include_str!`,
//! no build step, no CDN), served at `GET /`, `/admin.css` and `/admin.js`.
//!
//! WHAT: an operator's console in the spirit of IIS's Internet Service Manager: live
//! counters (from `/api/stats`, every 2 s), sites with pause/resume, the event log, the
//! queue grouped by destination domain with per-message details and
//! delete/bounce/hold/release buttons, flush, and the effective configuration with
//! secrets masked (`/api/config`). The bearer
//! token for the POSTs is typed into the page and kept in `sessionStorage`.
//!
//! SECURITY: everything that comes from the queue (addresses, HELO names, error texts)
//! reaches the DOM only through `textContent` / `createTextNode` in `admin.js`, never
//! through `innerHTML`; and the page is served with [`CSP`], which allows only this
//! script and this style sheet, so even a mistake there could not run injected script.

/// Content type of the page.
pub(super) const HTML: &str = "text/html; charset=utf-8";
/// Content-Security-Policy of the page: its own script, style and API, nothing inline,
/// nothing from elsewhere, no framing.
pub(super) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The page.
const INDEX_HTML: &str = include_str!("page/index.html");
/// Its style sheet.
const ADMIN_CSS: &str = include_str!("page/admin.css");
/// Its script.
const ADMIN_JS: &str = include_str!("page/admin.js");

/// The asset at `path` as (status, content type, body), if `path` names one.
pub(super) fn asset(path: &str) -> Option<(u16, &'static str, String)> {
    let (ctype, body) = match path {
        super::PATH_PAGE | "/index.html" => (HTML, INDEX_HTML),
        "/admin.css" => ("text/css; charset=utf-8", ADMIN_CSS),
        "/admin.js" => ("text/javascript; charset=utf-8", ADMIN_JS),
        _ => return None,
    };
    Some((200, ctype, body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_and_no_inner_html() {
        for path in ["/", "/index.html", "/admin.css", "/admin.js"] {
            assert!(asset(path).is_some_and(|(s, _, b)| s == 200 && !b.is_empty()), "{path}");
        }
        assert!(asset("/admin.jsx").is_none());
        // The page loads its own script and style only, no inline script.
        assert!(INDEX_HTML.contains("<script src=\"/admin.js\""));
        assert!(!INDEX_HTML.contains("<script>"));
        // Data reaches the DOM as text only.
        for bad in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
            assert!(!ADMIN_JS.contains(bad), "admin.js uses {bad}");
        }
    }
}
