//! The sign-in logs (entra-facts §12): what the sign-in pages and the token endpoint record, and
//! `GET /v1.0/auditLogs/signIns` and `GET /beta/auditLogs/signIns` with `$filter`, `$top` and paging.
//!
//! Every sign-in on the pages (password, MFA, conditional access), every code or refresh-token
//! redemption and every client-credentials request for a known tenant and app is logged, failures
//! included. Unlike Microsoft's, the simulator's entries appear at once (Microsoft's take minutes).
//! The entry shape follows Microsoft's `signIn` resource; fields no captured response shows are
//! UNVERIFIED (entra-facts §12), in particular `enforcedGrantControls`' values and
//! `failureReason` on success (`null` here).

use std::net::IpAddr;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::model::{EntraIdPlan, User};
use crate::state::{CaEvaluation, SignInEventType, SignInRecord, State as SimState};

/// Directory roles whose members may read the sign-in logs with a delegated token: Global
/// Administrator, Global Reader, Security Administrator, Security Reader and Reports Reader
/// (Microsoft's list for `signIn: list`).
const LOG_READER_ROLES: &[&str] = &[
    crate::wellknown::ROLE_GLOBAL_ADMIN,
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
    "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "5d6b6bb7-de71-4623-b4af-96380a352509",
    "4a5d8f65-41da-4de4-8968-e035b65339cf",
];

/// The most entries one page holds (`$top`'s ceiling and default).
const MAX_TOP: usize = 1000;

/// Records an interactive sign-in on the pages: `error` is the AADSTS code and failure reason of a
/// refused one, `ca` the conditional access evaluation when it was made.
pub(crate) fn record_interactive(
    st: &mut SimState,
    t: usize,
    user: &User,
    client_id: Uuid,
    ip: IpAddr,
    error: Option<(u32, &str)>,
    ca: Option<CaEvaluation>,
) {
    let app_display_name = st
        .app(client_id)
        .map_or_else(|| client_id.to_string(), |a| a.display_name.clone());
    let r = st.graph_idx();
    let (ca_status, policies) = match &ca {
        Some(ca) => (ca.status(), ca.policies.clone()),
        None => ("notApplied", Vec::new()),
    };
    let record = SignInRecord {
        id: Uuid::new_v4(),
        created: st.now(),
        tenant_id: st.tenants[t].id,
        app_id: client_id,
        app_display_name,
        user: Some((user.id, user.upn.clone(), user.display_name.clone())),
        ip,
        event_type: SignInEventType::InteractiveUser,
        error_code: error.map_or(0, |(c, _)| c),
        failure_reason: error.map(|(_, m)| m.to_owned()),
        ca_status,
        policies,
        resource_display_name: st.resources[r].display_name.clone(),
        resource_id: st.resources[r].app_id,
        correlation_id: Uuid::new_v4(),
    };
    st.record_sign_in(record);
}

/// A refusal of the listing: status, Graph error code and message.
pub(crate) type ListError = (StatusCode, &'static str, String);

/// Who asks (from the access token).
pub(crate) struct Reader<'a> {
    pub tenant: usize,
    pub user: Option<Uuid>,
    pub scopes: &'a [String],
    pub roles: &'a [String],
}

/// `GET /{version}/auditLogs/signIns`: the tenant's entries, newest first.
pub(crate) fn list(
    st: &SimState,
    reader: &Reader<'_>,
    version: &str,
    base: &str,
    query: &std::collections::HashMap<String, String>,
) -> Result<Value, ListError> {
    let tenant = &st.tenants[reader.tenant];
    let allowed = match reader.user {
        None => reader.roles.iter().any(|r| r == "AuditLog.Read.All"),
        Some(user) => {
            reader.scopes.iter().any(|s| s == "AuditLog.Read.All")
                && tenant.users.iter().any(|u| {
                    u.id == user
                        && u.roles
                            .iter()
                            .any(|r| LOG_READER_ROLES.contains(&r.as_str()))
                })
        }
    };
    if !allowed {
        return Err((
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.".into(),
        ));
    }
    if tenant.entra_id_plan == EntraIdPlan::Free {
        // entra-facts §12 ([V-obs]): a tenant without Entra ID P1/P2.
        return Err((
            StatusCode::FORBIDDEN,
            "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
            "Neither tenant is B2C or tenant doesn't have premium license".into(),
        ));
    }
    let beta = version == "beta";
    let filter = match query.get("$filter") {
        Some(f) => Filter::parse(f, beta).map_err(|m| {
            (
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("Invalid filter clause: {m}"),
            )
        })?,
        None => Filter::default(),
    };
    let top = match query.get("$top") {
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_TOP).contains(n))
            .ok_or_else(|| {
                (
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!(
                        "Invalid $top value '{t}': it must be a whole number from 1 to {MAX_TOP}."
                    ),
                )
            })?,
        None => MAX_TOP,
    };
    let before = match query.get("$skiptoken") {
        Some(t) => Some(decode_skiptoken(t).ok_or_else(|| {
            (
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "The $skiptoken is not valid; start again from the first page.".into(),
            )
        })?),
        None => None,
    };
    let tenant_id = tenant.id;
    let mut matching = st
        .sign_ins
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, r)| r.tenant_id == tenant_id && filter.matches(r))
        .map(|(i, r)| (st.sign_ins_dropped + i as u64, r))
        .filter(|(seq, _)| before.is_none_or(|b| *seq < b));
    let page: Vec<(u64, &SignInRecord)> = matching.by_ref().take(top).collect();
    let more = matching.next().is_some();
    let value: Vec<Value> = page.iter().map(|(_, r)| entry_json(r, beta)).collect();
    let mut body = json!({
        "@odata.context": format!("{base}/{version}/$metadata#auditLogs/signIns"),
        "value": value,
    });
    if more && let Some((last, _)) = page.last() {
        let mut next =
            url::Url::parse(&format!("{base}/{version}/auditLogs/signIns")).map_err(|e| {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "generalException",
                    e.to_string(),
                )
            })?;
        {
            let mut q = next.query_pairs_mut();
            if let Some(f) = query.get("$filter") {
                q.append_pair("$filter", f);
            }
            q.append_pair("$top", &top.to_string());
            q.append_pair("$skiptoken", &encode_skiptoken(*last));
        }
        body["@odata.nextLink"] = json!(next.to_string());
    }
    Ok(body)
}

fn encode_skiptoken(seq: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("signins:{seq}"))
}

fn decode_skiptoken(token: &str) -> Option<u64> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    text.strip_prefix("signins:")?.parse().ok()
}

fn entry_json(r: &SignInRecord, beta: bool) -> Value {
    let (user_id, upn, name) = match &r.user {
        Some((id, upn, name)) => (json!(id), json!(upn), json!(name)),
        None => (Value::Null, Value::Null, Value::Null),
    };
    let policies: Vec<Value> = r
        .policies
        .iter()
        .map(|p| {
            let enforced: Vec<&str> = if p.result == "notApplied" || p.result == "notEnabled" {
                Vec::new()
            } else {
                vec![p.grant_control]
            };
            json!({
                "id": p.id,
                "displayName": p.display_name,
                "enforcedGrantControls": enforced,
                "enforcedSessionControls": [],
                "result": p.result,
            })
        })
        .collect();
    let interactive = r.event_type == SignInEventType::InteractiveUser;
    let mut v = json!({
        "id": r.id,
        "createdDateTime": r.created.format(&Rfc3339).unwrap_or_default(),
        "userDisplayName": name,
        "userPrincipalName": upn,
        "userId": user_id,
        "appId": r.app_id,
        "appDisplayName": r.app_display_name,
        "ipAddress": r.ip.to_string(),
        "clientAppUsed": if interactive { "Browser" } else { "Mobile Apps and Desktop clients" },
        "correlationId": r.correlation_id,
        "conditionalAccessStatus": r.ca_status,
        "isInteractive": interactive,
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes_v2": [],
        "resourceDisplayName": r.resource_display_name,
        "resourceId": r.resource_id,
        "status": {
            "errorCode": r.error_code,
            "failureReason": r.failure_reason,
            "additionalDetails": Value::Null,
        },
        "deviceDetail": {"deviceId": "", "displayName": "", "operatingSystem": "", "browser": "", "isCompliant": false, "isManaged": false, "trustType": ""},
        "location": {"city": Value::Null, "state": Value::Null, "countryOrRegion": Value::Null},
        "appliedConditionalAccessPolicies": policies,
    });
    if beta {
        v["signInEventTypes"] = json!([r.event_type.as_str()]);
        if r.event_type == SignInEventType::ServicePrincipal {
            v["servicePrincipalName"] = json!(r.app_display_name);
        }
    }
    v
}

/// A parsed `$filter`: clauses joined by `and`.
#[derive(Debug, Default, PartialEq)]
struct Filter {
    app_id: Option<Uuid>,
    upn: Option<String>,
    user_id: Option<Uuid>,
    error_code: Option<(bool, u32)>,
    after: Vec<(bool, OffsetDateTime)>,
    before: Vec<(bool, OffsetDateTime)>,
    /// `None`: interactive user sign-ins only (the default of both versions).
    event_types: Option<Vec<SignInEventType>>,
}

impl Filter {
    /// Parses `appId eq '…'`, `userPrincipalName eq '…'`, `userId eq '…'`,
    /// `createdDateTime ge|gt|le|lt <date>`, `status/errorCode eq|ne N` and, on beta,
    /// `signInEventTypes/any(t: t eq '…' or t eq '…')`, joined by `and`.
    fn parse(text: &str, beta: bool) -> Result<Self, String> {
        let mut f = Filter::default();
        for clause in split_and(text)? {
            let clause = strip_parens(clause.trim());
            if let Some(rest) = clause.strip_prefix("signInEventTypes/any(") {
                if !beta {
                    return Err(
                        "signInEventTypes is a property of the beta API only (use /beta/auditLogs/signIns)".into(),
                    );
                }
                f.event_types = Some(parse_any(rest)?);
                continue;
            }
            let mut parts = clause.splitn(3, ' ');
            let (Some(prop), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(format!("'{clause}' is not a comparison"));
            };
            let quoted = || {
                value
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .map(|v| v.replace("''", "'"))
                    .ok_or_else(|| format!("{prop} compares with a quoted string"))
            };
            match (prop, op) {
                ("appId", "eq") => {
                    f.app_id = Some(
                        Uuid::parse_str(&quoted()?)
                            .map_err(|_| "appId is not a GUID".to_owned())?,
                    );
                }
                ("userId", "eq") => {
                    f.user_id = Some(
                        Uuid::parse_str(&quoted()?)
                            .map_err(|_| "userId is not a GUID".to_owned())?,
                    );
                }
                ("userPrincipalName", "eq") => f.upn = Some(quoted()?.to_ascii_lowercase()),
                ("status/errorCode", "eq" | "ne") => {
                    let n = value
                        .parse()
                        .map_err(|_| "status/errorCode compares with a number".to_owned())?;
                    f.error_code = Some((op == "eq", n));
                }
                ("createdDateTime", "ge" | "gt" | "le" | "lt") => {
                    let t = OffsetDateTime::parse(value, &Rfc3339)
                        .map_err(|_| format!("'{value}' is not an ISO 8601 date and time"))?;
                    match op {
                        "ge" => f.after.push((true, t)),
                        "gt" => f.after.push((false, t)),
                        "le" => f.before.push((true, t)),
                        _ => f.before.push((false, t)),
                    }
                }
                _ => return Err(format!("'{prop} {op}' is not supported here")),
            }
        }
        Ok(f)
    }

    fn matches(&self, r: &SignInRecord) -> bool {
        let types = self
            .event_types
            .as_deref()
            .unwrap_or(&[SignInEventType::InteractiveUser]);
        types.contains(&r.event_type)
            && self.app_id.is_none_or(|a| a == r.app_id)
            && self
                .user_id
                .is_none_or(|u| r.user.as_ref().is_some_and(|x| x.0 == u))
            && self
                .upn
                .as_ref()
                .is_none_or(|u| r.user.as_ref().is_some_and(|x| x.1.eq_ignore_ascii_case(u)))
            && self
                .error_code
                .is_none_or(|(eq, c)| (r.error_code == c) == eq)
            && self
                .after
                .iter()
                .all(|(inclusive, t)| r.created > *t || (*inclusive && r.created == *t))
            && self
                .before
                .iter()
                .all(|(inclusive, t)| r.created < *t || (*inclusive && r.created == *t))
    }
}

/// Splits on ` and ` outside parentheses and quotes.
fn split_and(text: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0usize);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => depth -= 1,
            b' ' if !quoted && depth == 0 && text[i..].starts_with(" and ") => {
                out.push(&text[start..i]);
                i += 5;
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if depth != 0 || quoted {
        return Err("unbalanced parentheses or quotes".into());
    }
    out.push(&text[start..]);
    Ok(out)
}

fn strip_parens(mut s: &str) -> &str {
    while let Some(inner) = s.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
        s = inner.trim();
    }
    s
}

/// `t: t eq 'a' or t eq 'b')` → the event types.
fn parse_any(rest: &str) -> Result<Vec<SignInEventType>, String> {
    let body = rest
        .strip_suffix(')')
        .ok_or("signInEventTypes/any(…) is not closed")?;
    let (var, cond) = body
        .split_once(':')
        .ok_or("signInEventTypes/any needs a lambda, e.g. any(t: t eq 'nonInteractiveUser')")?;
    let var = var.trim();
    let mut types = Vec::new();
    for part in cond.split(" or ") {
        let part = strip_parens(part.trim());
        let value = part
            .strip_prefix(var)
            .map(str::trim_start)
            .and_then(|p| p.strip_prefix("eq "))
            .map(str::trim)
            .and_then(|v| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .ok_or_else(|| format!("'{part}' is not `{var} eq '<event type>'`"))?;
        let t = [
            SignInEventType::InteractiveUser,
            SignInEventType::NonInteractiveUser,
            SignInEventType::ServicePrincipal,
        ]
        .into_iter()
        .find(|t| t.as_str() == value)
        .ok_or_else(|| {
            format!("unknown sign-in event type '{value}' (interactiveUser, nonInteractiveUser, servicePrincipal)")
        })?;
        types.push(t);
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_the_documented_forms_and_refuse_others() {
        let f = Filter::parse(
            "appId eq 'c0de0000-0000-4000-8000-00000000000d' and userPrincipalName eq 'A@Contoso.com' and createdDateTime ge 2026-01-01T00:00:00Z and (signInEventTypes/any(t: t eq 'interactiveUser' or t eq 'nonInteractiveUser'))",
            true,
        )
        .expect("parses");
        assert_eq!(f.upn.as_deref(), Some("a@contoso.com"));
        assert_eq!(
            f.event_types,
            Some(vec![
                SignInEventType::InteractiveUser,
                SignInEventType::NonInteractiveUser
            ])
        );
        assert_eq!(f.after.len(), 1);
        assert!(Filter::parse("signInEventTypes/any(t: t eq 'servicePrincipal')", false).is_err());
        assert!(Filter::parse("displayName eq 'x'", true).is_err());
        assert!(Filter::parse("appId eq 'x", true).is_err());
        assert!(Filter::parse("createdDateTime ge yesterday", true).is_err());
        assert!(Filter::parse("signInEventTypes/any(t: t eq 'robot')", true).is_err());
    }

    #[test]
    fn skiptoken_round_trips_and_refuses_garbage() {
        assert_eq!(decode_skiptoken(&encode_skiptoken(42)), Some(42));
        assert_eq!(decode_skiptoken("not-a-token"), None);
    }
}
