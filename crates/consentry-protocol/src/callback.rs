//! The query of Microsoft's redirect to the OAuth callback (`GET /oauth/callback`), parsed into the
//! domain's [`CallbackParams`] before it reaches the re-authorization.

use consentry_domain::CallbackParams;

/// Longest callback query accepted (Microsoft's error descriptions are a few hundred bytes).
pub const MAX_CALLBACK_QUERY: usize = 16 * 1024;

/// Why a callback query is refused before it reaches the re-authorization.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackQueryError {
    /// Longer than [`MAX_CALLBACK_QUERY`].
    #[error("the callback address is longer than {MAX_CALLBACK_QUERY} bytes")]
    TooLong,
    /// A parameter Consentry reads is given twice (a tampered address).
    #[error("the callback's `{0}` parameter is given more than once")]
    Repeated(&'static str),
    /// A parameter holds control characters.
    #[error("the callback's `{0}` parameter holds control characters")]
    ControlCharacters(&'static str),
}

/// Parses the query of Microsoft's redirect to the callback (a pure function; fuzzed). Unknown
/// parameters (`session_state`, `error_uri`, …) are ignored; each known one may appear once;
/// values must be free of control characters (the error description's line breaks excepted).
pub fn parse_callback_query(query: &str) -> Result<CallbackParams, CallbackQueryError> {
    if query.len() > MAX_CALLBACK_QUERY {
        return Err(CallbackQueryError::TooLong);
    }
    let mut p = CallbackParams::default();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let (name, slot): (&'static str, &mut Option<String>) = match k.as_ref() {
            "state" => ("state", &mut p.state),
            "code" => ("code", &mut p.code),
            "error" => ("error", &mut p.error),
            "error_description" => ("error_description", &mut p.error_description),
            "error_subcode" => ("error_subcode", &mut p.error_subcode),
            "admin_consent" => ("admin_consent", &mut p.admin_consent),
            "tenant" => ("tenant", &mut p.tenant),
            _ => continue,
        };
        if slot.is_some() {
            return Err(CallbackQueryError::Repeated(name));
        }
        let allowed = |c: char| name == "error_description" && matches!(c, '\r' | '\n' | '\t');
        if v.chars().any(|c| c.is_control() && !allowed(c)) {
            return Err(CallbackQueryError::ControlCharacters(name));
        }
        *slot = Some(v.into_owned());
    }
    Ok(p)
}
