//! Device codes of the device authorization grant (RFC 8628, Microsoft's variant): what a device
//! code stands for and how the verification page moves it along. The endpoints are in
//! `devicelogin` (the device authorization endpoint and the verification page) and the grant is
//! redeemed by the token endpoint (`token::device_code`); the sign-in in between is the one of
//! `/authorize` (`pages`, flow kind `DeviceCode`).

use std::net::IpAddr;

use serde::Serialize;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// `grant_type` of the device code grant (RFC 8628 §3.4).
pub(crate) const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Where a device code stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) enum DeviceStatus {
    /// The user has not finished signing in.
    Pending,
    /// The user signed in (and consented): the next poll gets the tokens.
    Approved {
        tenant_id: Uuid,
        user_id: Uuid,
        sign_in_ip: IpAddr,
        mfa_done: bool,
        #[serde(with = "time::serde::rfc3339")]
        auth_time: OffsetDateTime,
    },
    /// The user declined on the consent page.
    Declined,
    /// The tokens were issued.
    Redeemed,
}

/// A device code and its user code (not persisted, like authorization codes).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeviceCode {
    pub client_id: Uuid,
    /// The tenant segment of the request (`organizations`, a GUID, a domain, …): the verification
    /// page signs the user in on that authority.
    pub tenant_segment: String,
    /// The tenant named by the segment (`None` for `common` / `organizations`).
    pub path_tenant: Option<Uuid>,
    pub scopes: Vec<String>,
    pub user_code: String,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// Seconds between polls; grows by 5 at each `slow_down` (RFC 8628 §3.5).
    pub interval_secs: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_poll: Option<OffsetDateTime>,
    pub status: DeviceStatus,
}

impl DeviceCode {
    /// Whether `expires_in` has passed at `now`.
    pub fn expired(&self, now: OffsetDateTime, lifetime_secs: i64) -> bool {
        now >= self.issued_at + Duration::seconds(lifetime_secs)
    }
}

/// A user code as Microsoft shows them: nine capital letters and digits (e.g. `FRWQDE7YL`),
/// without the easily confused `0`, `O`, `1` and `I`.
pub(crate) fn new_user_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..9)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A user code as typed: case, spaces and dashes do not matter.
pub(crate) fn normalize_user_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Why the verification page refuses a user code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserCodeProblem {
    /// No device code has this user code.
    Unknown,
    /// Its `expires_in` has passed.
    Expired,
    /// It was already used to sign in, or declined.
    AlreadyUsed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_look_like_microsofts_and_are_read_leniently() {
        let code = new_user_code();
        assert_eq!(code.len(), 9);
        assert!(
            code.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
        assert_eq!(normalize_user_code(" frwq-de7yl "), "FRWQDE7YL");
    }
}
