//! Parsing of identity-platform and Graph error bodies, redirect errors, `Retry-After`, and the
//! mapping of AADSTS codes to causes. Bodies follow the real responses quoted in entra-facts.

use std::time::{Duration, SystemTime};

use consentry_entra::{
    Cause, GraphError, GraphErrorKind, IdentityError, OAuthError, RedirectResponse, SubError,
    parse_redirect_error, parse_retry_after,
};

fn identity(status: u16, body: &str) -> IdentityError {
    IdentityError::from_json(Some(status), body.as_bytes()).expect("an identity error body")
}

#[test]
fn revoked_grant_50173_with_crlf_description() {
    let body = r#"{"error":"invalid_grant","error_description":"AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '2021-01-12T09:27:39.9590000Z' and the TokensValidFrom date (before which tokens are not valid) for this user is '2021-01-28T04:33:17.0000000Z'.\r\nTrace ID: 5b2c1f3a-1b1e-4a55-9d0c-0e8f5a7c2d00\r\nCorrelation ID: 8e0c3b1f-2a4d-4c6e-8f10-123456789abc\r\nTimestamp: 2021-01-31 05:56:19Z","error_codes":[50173],"timestamp":"2021-01-31 05:56:19Z","trace_id":"5b2c1f3a-1b1e-4a55-9d0c-0e8f5a7c2d00","correlation_id":"8e0c3b1f-2a4d-4c6e-8f10-123456789abc","error_uri":"https://login.microsoftonline.com/error?code=50173"}"#;
    let e = identity(400, body);
    assert_eq!(e.error, OAuthError::InvalidGrant);
    assert_eq!(e.error_codes, vec![50173]);
    assert_eq!(e.primary_code(), Some(50173));
    assert_eq!(e.cause(), Cause::PasswordResetOrRevoked);
    assert!(!e.is_transient());
    assert_eq!(
        e.trace_id.as_deref(),
        Some("5b2c1f3a-1b1e-4a55-9d0c-0e8f5a7c2d00")
    );
    assert_eq!(e.timestamp.as_deref(), Some("2021-01-31 05:56:19Z"));
    assert_eq!(
        e.error_uri.as_deref(),
        Some("https://login.microsoftonline.com/error?code=50173")
    );
    assert!(
        e.summary()
            .starts_with("AADSTS50173: The provided grant has expired")
    );
    assert!(!e.summary().contains("Trace ID"));
    let shown = e.to_string();
    assert!(
        shown.starts_with("AADSTS50173 (invalid_grant): "),
        "{shown}"
    );
    assert!(
        shown.contains("8e0c3b1f-2a4d-4c6e-8f10-123456789abc"),
        "{shown}"
    );
}

#[test]
fn user_disabled_50057() {
    let body = r#"{"error":"invalid_grant","error_description":"AADSTS50057: The user account is disabled. Trace ID: 0a1b2c3d-0000-4000-8000-000000000001 Correlation ID: 0a1b2c3d-0000-4000-8000-000000000002 Timestamp: 2021-08-10 12:00:01Z","error_codes":[50057],"timestamp":"2021-08-10 12:00:01Z","trace_id":"0a1b2c3d-0000-4000-8000-000000000001","correlation_id":"0a1b2c3d-0000-4000-8000-000000000002","error_uri":"https://login.microsoftonline.com/error?code=50057"}"#;
    let e = identity(400, body);
    assert_eq!(e.cause(), Cause::UserDisabled);
    assert_eq!(e.summary(), "AADSTS50057: The user account is disabled.");
}

#[test]
fn conditional_access_53003() {
    let body = r#"{"error":"invalid_grant","error_description":"AADSTS53003: Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.\r\nTrace ID: 11111111-1111-4111-8111-111111111111\r\nCorrelation ID: 22222222-2222-4222-8222-222222222222\r\nTimestamp: 2019-10-21 07:34:02Z","error_codes":[53003],"timestamp":"2019-10-21 07:34:02Z","trace_id":"11111111-1111-4111-8111-111111111111","correlation_id":"22222222-2222-4222-8222-222222222222"}"#;
    let e = identity(400, body);
    assert_eq!(e.cause(), Cause::ConditionalAccess);
    assert_eq!(e.error_uri, None);
}

#[test]
fn consent_missing_65001_with_suberror() {
    let body = r#"{"error":"invalid_grant","error_description":"AADSTS65001: The user or administrator has not consented to use the application with ID '6731de76-14a6-49ae-97bc-6eba6914391e' named 'Contoso Backup'. Send an interactive authorization request for this user and resource.\r\nTrace ID: 33333333-3333-4333-8333-333333333333\r\nCorrelation ID: 44444444-4444-4444-8444-444444444444\r\nTimestamp: 2019-07-19 13:13:03Z","error_codes":[65001],"timestamp":"2019-07-19 13:13:03Z","trace_id":"33333333-3333-4333-8333-333333333333","correlation_id":"44444444-4444-4444-8444-444444444444","suberror":"consent_required"}"#;
    let e = identity(400, body);
    assert_eq!(e.suberror, Some(SubError::ConsentRequired));
    assert_eq!(e.cause(), Cause::ConsentMissing);
}

#[test]
fn app_not_in_tenant_700016_and_7000229() {
    let e = identity(
        400,
        r#"{"error":"unauthorized_client","error_description":"AADSTS700016: Application with identifier '6731de76-14a6-49ae-97bc-6eba6914391e' was not found in the directory 'Contoso'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant. Trace ID: a Correlation ID: b Timestamp: 2024-03-01 10:00:00Z","error_codes":[700016]}"#,
    );
    assert_eq!(e.error, OAuthError::UnauthorizedClient);
    assert_eq!(e.cause(), Cause::AppNotInTenant);

    let e = identity(
        401,
        r#"{"error":"invalid_client","error_description":"AADSTS7000229: The client application 6731de76-14a6-49ae-97bc-6eba6914391e is missing service principal in the tenant 84841066-274d-4ec0-a5c1-276be684bdd3. Trace ID: a Correlation ID: b Timestamp: 2024-09-30 08:00:00Z","error_codes":[7000229]}"#,
    );
    assert_eq!(e.error, OAuthError::InvalidClient);
    assert_eq!(e.status, Some(401));
    assert_eq!(e.cause(), Cause::AppNotInTenant);
}

#[test]
fn certificate_and_assertion_errors() {
    let e = identity(
        401,
        r#"{"error":"invalid_client","error_description":"AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '8BDE0C6E4B0F4A8B9C1D2E3F405162738495A6B7', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '6731de76-14a6-49ae-97bc-6eba6914391e'.] Trace ID: a Correlation ID: b Timestamp: 2023-05-01 10:00:00Z","error_codes":[700027],"error_uri":"https://login.microsoftonline.com/error?code=700027"}"#,
    );
    assert_eq!(e.cause(), Cause::CertificateNotRegistered);

    let e = identity(
        401,
        r#"{"error":"invalid_client","error_description":"AADSTS700024: Client assertion is not within its valid time range. Current time: 2022-01-01T10:00:00.0000000Z, assertion valid from 1970-01-01T00:00:00.0000000Z, expiry time of assertion 2021-12-31T10:00:00.0000000Z. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .\r\nTrace ID: a\r\nCorrelation ID: b\r\nTimestamp: 2022-01-01 10:00:00Z","error_codes":[700024]}"#,
    );
    assert_eq!(e.cause(), Cause::AssertionTimeRange);
}

#[test]
fn vendor_secret_errors() {
    let e = identity(
        401,
        r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '6731de76-14a6-49ae-97bc-6eba6914391e'. Trace ID: 9a1c Correlation ID: 7f2e Timestamp: 2024-07-10 09:12:45Z","error_codes":[7000215],"timestamp":"2024-07-10 09:12:45Z","trace_id":"9a1c","correlation_id":"7f2e","error_uri":"https://login.microsoftonline.com/error?code=7000215"}"#,
    );
    assert_eq!(e.status, Some(401));
    assert_eq!(e.cause(), Cause::VendorSecretInvalid);

    let e = identity(
        401,
        r#"{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys for app '6731de76-14a6-49ae-97bc-6eba6914391e' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.","error_codes":[7000222]}"#,
    );
    assert_eq!(e.cause(), Cause::VendorSecretExpired);
}

#[test]
fn tenant_not_found_90002() {
    let e = identity(
        400,
        r#"{"error":"invalid_tenant","error_description":"AADSTS90002: Tenant 'secrets' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant. Trace ID: 1 Correlation ID: 2 Timestamp: 2024-05-05 05:05:05Z","error_codes":[90002],"timestamp":"2024-05-05 05:05:05Z","trace_id":"1","correlation_id":"2","error_uri":"https://login.microsoftonline.com/error?code=90002"}"#,
    );
    assert_eq!(e.error, OAuthError::InvalidTenant);
    assert_eq!(e.cause(), Cause::TenantNotFound);
    // The 2018 form used `invalid_request`: the code decides, not the class.
    let old = identity(
        400,
        r#"{"error":"invalid_request","error_description":"AADSTS90002: Tenant 'x' not found.","error_codes":[90002]}"#,
    );
    assert_eq!(old.cause(), Cause::TenantNotFound);
}

#[test]
fn inactive_refresh_token_700082_with_camel_case_suberror() {
    let e = identity(
        400,
        r#"{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2020-03-09T15:40:40.8402893Z and was inactive for 90.00:00:00.\r\nTrace ID: 1\r\nCorrelation ID: 2\r\nTimestamp: 2020-06-19 09:16:28Z","error_codes":[700082],"timestamp":"2020-06-19 09:16:28Z","trace_id":"1","correlation_id":"2","error_uri":"https://login.microsoftonline.com/error?code=700082","subError":"bad_token"}"#,
    );
    assert_eq!(e.suberror, Some(SubError::BadToken));
    assert_eq!(e.cause(), Cause::RefreshTokenInactive);
}

#[test]
fn multi_code_body_keeps_every_code_in_order() {
    let e = identity(
        401,
        r#"{"error":"invalid_client","error_description":"AADSTS70002: Error validating credentials. AADSTS500133: Assertion is not within its valid time range.\r\nTrace ID: 1\r\nCorrelation ID: 2\r\nTimestamp: 2018-10-19 10:00:00Z","error_codes":[70002,500133],"timestamp":"2018-10-19 10:00:00Z"}"#,
    );
    assert_eq!(e.error_codes, vec![70002, 500133]);
    assert_eq!(e.primary_code(), Some(70002));
    assert!(e.has_code(500133));
    // Neither code has a profile meaning of its own (500133 is the on-behalf-of user assertion).
    assert_eq!(e.cause(), Cause::Other);
}

#[test]
fn missing_error_codes_are_read_from_the_description() {
    // AzureAD/microsoft-authentication-library-for-go#398: no `error_codes` member.
    let e = identity(
        400,
        r#"{"error":"invalid_grant","error_description":"AADSTS50076: Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '00000003-0000-0000-c000-000000000000'. Trace ID: 6e0ef8ca-0c6d-4a65-a3c8-07e1d2f76400 Correlation ID: 2f6f0b6a-6a5e-4c4e-9d44-ef8e2e0e7a45 Timestamp: 2021-05-28 15:53:49Z","error_uri":"https://login.microsoftonline.com/error?code=50076","suberror":"basic_action"}"#,
    );
    assert_eq!(e.error_codes, vec![50076]);
    assert_eq!(e.suberror, Some(SubError::BasicAction));
    assert_eq!(e.cause(), Cause::MfaRequired);
    // New space-separated layout: IDs are still found.
    assert_eq!(
        e.trace_id.as_deref(),
        Some("6e0ef8ca-0c6d-4a65-a3c8-07e1d2f76400")
    );
    assert_eq!(
        e.correlation_id.as_deref(),
        Some("2f6f0b6a-6a5e-4c4e-9d44-ef8e2e0e7a45")
    );
    assert_eq!(e.timestamp.as_deref(), Some("2021-05-28 15:53:49Z"));
}

#[test]
fn old_crlf_layout_yields_ids_without_json_fields() {
    let e = identity(
        400,
        r#"{"error":"invalid_grant","error_description":"AADSTS70000: The provided value for the 'code' parameter is not valid. The code has expired.\r\nTrace ID: aaaaaaaa-0000-4000-8000-000000000000\r\nCorrelation ID: bbbbbbbb-0000-4000-8000-000000000000\r\nTimestamp: 2020-04-20 10:10:10Z"}"#,
    );
    assert_eq!(e.error_codes, vec![70000]);
    assert_eq!(
        e.trace_id.as_deref(),
        Some("aaaaaaaa-0000-4000-8000-000000000000")
    );
    assert_eq!(
        e.correlation_id.as_deref(),
        Some("bbbbbbbb-0000-4000-8000-000000000000")
    );
    assert_eq!(e.timestamp.as_deref(), Some("2020-04-20 10:10:10Z"));
    assert_eq!(e.cause(), Cause::CodeInvalid);
}

#[test]
fn claims_challenge_is_kept() {
    let e = identity(
        400,
        r#"{"error":"interaction_required","error_description":"AADSTS50079: Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication.","error_codes":[50079],"claims":"{\"access_token\":{\"capolids\":{\"essential\":true,\"values\":[\"6b3a0e0c-0000-4000-8000-000000000000\"]}}}"}"#,
    );
    assert_eq!(e.error, OAuthError::InteractionRequired);
    assert_eq!(e.cause(), Cause::MfaRequired);
    assert!(e.claims.as_deref().unwrap().contains("capolids"));
}

#[test]
fn non_error_bodies_are_not_identity_errors() {
    assert!(IdentityError::from_json(Some(400), b"<html>Bad gateway</html>").is_none());
    assert!(IdentityError::from_json(Some(400), br#"{"access_token":"x"}"#).is_none());
    assert!(IdentityError::from_json(Some(400), br#"{"error":{"code":"x"}}"#).is_none());
}

#[test]
fn transient_classification_follows_entra_facts() {
    for code in [50033, 90006, 90024, 90033] {
        let e = identity(
            400,
            &format!(r#"{{"error":"invalid_request","error_codes":[{code}]}}"#),
        );
        assert!(e.is_transient(), "{code} is documented as transient");
        assert_eq!(e.cause(), Cause::Transient);
    }
    for class in ["temporarily_unavailable", "server_error"] {
        let e = identity(400, &format!(r#"{{"error":"{class}"}}"#));
        assert!(e.is_transient(), "{class}");
        assert_eq!(e.cause(), Cause::Transient);
    }
    // Loop detection must not be retried.
    let e = identity(
        400,
        r#"{"error":"invalid_grant","error_description":"AADSTS50196: The server terminated an operation because it encountered a loop while processing a request.","error_codes":[50196]}"#,
    );
    assert!(!e.is_transient());
    assert_eq!(e.cause(), Cause::Other);
}

#[test]
fn every_mapped_code_gives_its_cause() {
    let table: &[(u32, Cause)] = &[
        (50173, Cause::PasswordResetOrRevoked),
        (50133, Cause::PasswordResetOrRevoked),
        (50132, Cause::PasswordResetOrRevoked),
        (70008, Cause::PasswordResetOrRevoked),
        (50089, Cause::PasswordResetOrRevoked),
        (50055, Cause::PasswordResetOrRevoked),
        (70043, Cause::SignInFrequency),
        (700084, Cause::SignInFrequency),
        (50057, Cause::UserDisabled),
        (50034, Cause::UserNotFound),
        (51004, Cause::UserNotFound),
        (50020, Cause::WrongTenantAccount),
        (50105, Cause::UserNotAssigned),
        (50076, Cause::MfaRequired),
        (50079, Cause::MfaRequired),
        (50074, Cause::MfaRequired),
        (53003, Cause::ConditionalAccess),
        (53000, Cause::ConditionalAccess),
        (53001, Cause::ConditionalAccess),
        (53002, Cause::ConditionalAccess),
        (530032, Cause::ConditionalAccess),
        (530035, Cause::ConditionalAccess),
        (50131, Cause::ConditionalAccess),
        (65001, Cause::ConsentMissing),
        (650057, Cause::ConsentMissing),
        (65004, Cause::ConsentDeclined),
        (90094, Cause::AdminConsentRequired),
        (700016, Cause::AppNotInTenant),
        (7000229, Cause::AppNotInTenant),
        (7000112, Cause::AppDisabled),
        (700027, Cause::CertificateNotRegistered),
        (7000214, Cause::CertificateRejected),
        (700024, Cause::AssertionTimeRange),
        (7000215, Cause::VendorSecretInvalid),
        (7000222, Cause::VendorSecretExpired),
        (700082, Cause::RefreshTokenInactive),
        (90002, Cause::TenantNotFound),
        (70000, Cause::CodeInvalid),
        (54005, Cause::CodeInvalid),
        (501481, Cause::CodeInvalid),
        (90033, Cause::Transient),
        (12345, Cause::Other),
    ];
    for &(code, cause) in table {
        // Both through `error_codes` and through the description alone.
        let with_codes = identity(
            400,
            &format!(r#"{{"error":"invalid_grant","error_codes":[{code}]}}"#),
        );
        assert_eq!(with_codes.cause(), cause, "error_codes [{code}]");
        let text_only = identity(
            400,
            &format!(r#"{{"error":"invalid_grant","error_description":"AADSTS{code}: text"}}"#),
        );
        assert_eq!(text_only.cause(), cause, "description AADSTS{code}");
    }
}

#[test]
fn class_decides_when_no_code_is_known() {
    assert_eq!(
        identity(400, r#"{"error":"invalid_tenant"}"#).cause(),
        Cause::TenantNotFound
    );
    assert_eq!(
        identity(400, r#"{"error":"consent_required"}"#).cause(),
        Cause::ConsentMissing
    );
    assert_eq!(
        identity(
            400,
            r#"{"error":"invalid_grant","suberror":"consent_required"}"#
        )
        .cause(),
        Cause::ConsentMissing
    );
    assert_eq!(
        identity(400, r#"{"error":"invalid_grant"}"#).cause(),
        Cause::Other
    );
    assert_eq!(
        identity(400, r#"{"error":"something_new"}"#).error,
        OAuthError::Other("something_new".into())
    );
}

#[test]
fn redirect_cancel_with_subcode() {
    let e = parse_redirect_error("?error=access_denied&error_subcode=cancel&state=abc").unwrap();
    assert_eq!(e.error, OAuthError::AccessDenied);
    assert_eq!(e.suberror, Some(SubError::Cancel));
    assert!(e.is_cancel());
    assert_eq!(e.status, None);
    assert_eq!(e.cause(), Cause::ConsentDeclined);
}

#[test]
fn redirect_admin_consent_cancel_65004() {
    // MicrosoftDocs/azure-docs#114009: no `tenant` parameter, `admin_consent=True`.
    let q = "error=access_denied&error_description=AADSTS65004%3a+User+declined+to+consent+to+access+the+app.%0d%0aTrace+ID%3a+0f1e2d3c-0000-4000-8000-000000000001%0d%0aCorrelation+ID%3a+0f1e2d3c-0000-4000-8000-000000000002%0d%0aTimestamp%3a+2023-07-01+10%3a11%3a12Z&error_uri=https%3a%2f%2flogin.microsoftonline.com%2ferror%3fcode%3d65004&admin_consent=True&state=s123";
    let e = parse_redirect_error(q).unwrap();
    assert_eq!(e.error_codes, vec![65004]);
    assert!(e.is_cancel());
    assert_eq!(e.cause(), Cause::ConsentDeclined);
    assert_eq!(
        e.correlation_id.as_deref(),
        Some("0f1e2d3c-0000-4000-8000-000000000002")
    );
    assert_eq!(e.timestamp.as_deref(), Some("2023-07-01 10:11:12Z"));
    assert_eq!(
        e.error_uri.as_deref(),
        Some("https://login.microsoftonline.com/error?code=65004")
    );
    match RedirectResponse::parse(q).unwrap() {
        RedirectResponse::Error { error, state } => {
            assert_eq!(state.as_deref(), Some("s123"));
            assert!(error.is_cancel());
        }
        other => panic!("expected an error redirect, got {other:?}"),
    }
}

#[test]
fn redirect_foreign_account_50020_is_not_a_cancel() {
    let q = "error=access_denied&error_description=AADSTS50020%3a+User+account+%27%7bEmailHidden%7d%27+from+identity+provider+%27live.com%27+does+not+exist+in+tenant+%27Contoso%27.&error_uri=https%3a%2f%2flogin.microsoftonline.com%2ferror%3fcode%3d50020&admin_consent=True&state=s";
    let e = parse_redirect_error(q).unwrap();
    assert!(!e.is_cancel());
    assert_eq!(e.cause(), Cause::WrongTenantAccount);
    assert!(e.summary().contains("does not exist in tenant"));
}

#[test]
fn redirect_success_forms() {
    assert!(parse_redirect_error("code=abc&state=1").is_none());
    match RedirectResponse::parse(
        "?code=0.AXoA-code&state=12345&session_state=4f984c6b-0000-4000-8000-000000000000",
    )
    .unwrap()
    {
        RedirectResponse::Code { state, .. } => assert_eq!(state.as_deref(), Some("12345")),
        other => panic!("expected a code, got {other:?}"),
    }
    match RedirectResponse::parse(
        "admin_consent=True&tenant=84841066-274d-4ec0-a5c1-276be684bdd3&scope=https%3a%2f%2fgraph.microsoft.com%2fUser.Read+https%3a%2f%2fgraph.microsoft.com%2fSites.Read.All&state=st",
    )
    .unwrap()
    {
        RedirectResponse::AdminConsent {
            tenant,
            scope,
            state,
        } => {
            assert_eq!(
                tenant.as_deref(),
                Some("84841066-274d-4ec0-a5c1-276be684bdd3")
            );
            assert_eq!(
                scope.as_deref(),
                Some("https://graph.microsoft.com/User.Read https://graph.microsoft.com/Sites.Read.All")
            );
            assert_eq!(state.as_deref(), Some("st"));
        }
        other => panic!("expected admin consent, got {other:?}"),
    }
    assert!(RedirectResponse::parse("state=only").is_err());
    // The code itself is never shown by Debug.
    let r = RedirectResponse::parse("code=SECRETCODE&state=1").unwrap();
    assert!(!format!("{r:?}").contains("SECRETCODE"));
}

#[test]
fn graph_error_bodies() {
    let body = br#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation.","innerError":{"date":"2023-02-20T05:06:48","request-id":"7c4b5f4e-0000-4000-8000-000000000001","client-request-id":"7c4b5f4e-0000-4000-8000-000000000002"}}}"#;
    let e = GraphError::from_json(403, body).unwrap();
    assert_eq!(e.kind, GraphErrorKind::AccessDenied);
    assert_eq!(e.cause(), Cause::GraphAccessDenied);
    assert_eq!(
        e.request_id.as_deref(),
        Some("7c4b5f4e-0000-4000-8000-000000000001")
    );
    assert_eq!(e.date.as_deref(), Some("2023-02-20T05:06:48"));

    let body = br#"{"error":{"code":"Request_ResourceNotFound","message":"Resource '6731de76-14a6-49ae-97bc-6eba6914391e' does not exist or one of its queried reference-property objects are not present.","innererror":{"request-id":"r"}}}"#;
    let e = GraphError::from_json(404, body).unwrap();
    assert_eq!(e.kind, GraphErrorKind::NotFound);
    assert_eq!(e.request_id.as_deref(), Some("r"));
    assert_eq!(e.cause(), Cause::Other);

    let body = br#"{"error":{"code":"TooManyRequests","innerError":{"code":"429","date":"2020-08-18T12:51:51","message":"Please retry after","request-id":"94fb3b52-452a-4535-a601-69e0a90e3aa2","status":"429"},"message":"Please retry again later."}}"#;
    let e = GraphError::from_json(429, body).unwrap();
    assert_eq!(e.kind, GraphErrorKind::TooManyRequests);
    assert_eq!(e.cause(), Cause::Transient);

    let e = GraphError::from_json(401, br#"{"error":{"code":"InvalidAuthenticationToken","message":"Access token has expired or is not yet valid."}}"#).unwrap();
    assert_eq!(e.kind, GraphErrorKind::InvalidAuthenticationToken);
    assert!(GraphError::from_json(400, br#"{"error":"invalid_grant"}"#).is_none());
}

#[test]
fn retry_after_forms() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00 UTC
    assert_eq!(parse_retry_after("60", now), Some(Duration::from_secs(60)));
    assert_eq!(
        parse_retry_after(" 10 ", now),
        Some(Duration::from_secs(10))
    );
    assert_eq!(
        parse_retry_after("2.128", now),
        Some(Duration::from_millis(2128))
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("-1", now), None);
    assert_eq!(parse_retry_after("soon", now), None);
    assert_eq!(parse_retry_after("NaN", now), None);
}
