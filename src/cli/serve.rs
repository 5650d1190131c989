//! `mailroot serve`: load the configuration, settle the account to run as (`[service]`),
//! lay out the Mailroot, then hand over to `relay::serve` until shutdown.

use std::path::Path;

use super::{
    EXIT_FAILURE, EXIT_OK, EXIT_USAGE, check_certificates, create_mailroot, init_logging,
    load_config, reload_config, report,
};

/// `serve`: lay out the Mailroot, then hand over to `relay::serve` until shutdown.
pub(super) fn serve(path: Option<&Path>) -> i32 {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    init_logging(&config);
    if let Err(code) = check_certificates(&config) {
        return code;
    }
    // `[service]`: who we run as once the listeners are bound (exit 2 for a bad account).
    // The embedded default (no file) is the quick start on 127.0.0.1:2525: it runs as
    // whoever starts it, root included (with a warning); a file must say how to run as root.
    let account = match crate::relay::privilege::plan(&config.service) {
        Ok(crate::relay::privilege::Plan::Switch(a)) => Some(a),
        Ok(crate::relay::privilege::Plan::Stay) => None,
        Err(crate::relay::privilege::PrivilegeError::RootRefused) if path.is_none() => {
            log::warn!(
                "running as root on the embedded default configuration (loopback only); \
                 with a configuration file set [service] user, or allow_root = true"
            );
            None
        }
        Err(e) => {
            report(&e);
            return if e.is_config() { EXIT_USAGE } else { EXIT_FAILURE };
        }
    };
    if let Err(e) = create_mailroot(&config) {
        report(format_args!("cannot create Mailroot {}: {e}", config.mailroot.display()));
        return EXIT_FAILURE;
    }
    if let Some(a) = &account
        && let Err(e) = crate::relay::privilege::prepare_mailroot(&config, a)
    {
        report(&e);
        return EXIT_FAILURE;
    }
    let mut opts = match path {
        Some(p) => {
            let file = p.to_owned();
            let loader: crate::relay::Loader = Box::new(move || reload_config(&file));
            crate::relay::ServeOptions { config_file: Some(p.to_owned()), loader, account: None }
        }
        None => crate::relay::ServeOptions::fixed(&config),
    };
    opts.account = account;
    match crate::relay::serve(config, opts) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            report(&e);
            EXIT_FAILURE
        }
    }
}
