//! The consenting account's sign-in: the code redeemed, the tenant and nonce checked, and the
//! account's roles, licenses, group ownership (and Viva Engage Verified Admin) against the catalog
//! rules that apply to the profile.

use consentry_catalog::{AppType, Catalog, ConsentMethod, Requirement, UserFacts};
use secrecy::SecretString;

use super::Reauthorizer;
use super::decide::{SignInResult, StepError};
use super::explain::{Failure, explain_platform};
use super::secrets::PendingSecrets;
use crate::model::{AppProfile, ConsentUser, PendingAuthorization};
use crate::platform::{ClientRef, PlatformError, SignedIn, VivaEngageFacts};

impl Reauthorizer {
    /// Redeems the sign-in's `code` and checks who signed in against the catalog's rules.
    pub(super) async fn signed_in(
        &self,
        code: Option<&str>,
        profile: &AppProfile,
        app: &AppType,
        pending: &PendingAuthorization,
        client: &ClientRef,
        secrets: &PendingSecrets,
    ) -> Result<SignInResult, StepError> {
        let explain =
            |e: PlatformError| StepError::Failed(explain_platform(&e, app, app.custom_app));
        let code = code_of(code)?;
        let scopes: Vec<String> = app.delegated_scopes().map(|p| p.name.clone()).collect();
        let signed = self
            .platform
            .redeem(
                &profile.tenant_at(),
                client,
                code,
                &SecretString::from(secrets.code_verifier.clone()),
                &scopes,
            )
            .await
            .map_err(explain)?;
        check_identity(&signed, profile, pending)?;
        // The consenting user's roles, licenses and group ownership against the catalog.
        let mut facts: UserFacts = self
            .platform
            .user_facts(&profile.tenant_at(), &signed.access_token)
            .await
            .map_err(explain)?;
        let requirement = app.requirement_for(
            pending.method,
            Some(&profile.service),
            &pending.functions,
            &pending.scan_targets,
        );
        let mut resource_scopes = Vec::new();
        if let Some(req) = requirement.as_ref().filter(|r| r.mentions_verified_admin()) {
            let viva = self
                .viva_engage(profile, app, client, &signed, req, &mut facts)
                .await?;
            resource_scopes = viva.granted_scopes;
        }
        if let Some(req) = requirement {
            check_requirement(
                self.core.catalog(),
                &req,
                &facts,
                &signed,
                pending.method,
                app,
            )?;
        }
        let granted_scopes = consented_scopes(&signed);
        Ok(SignInResult {
            user: ConsentUser {
                object_id: signed.object_id,
                upn: signed.upn,
            },
            ip: signed.ip,
            refresh_token: signed.refresh_token,
            granted_scopes,
            resource_scopes,
        })
    }

    /// Asks Viva Engage whether the signed-in user is a Verified Admin (Microsoft Graph does not
    /// say) and records it in `facts`. Viva Engage's transient failure is never taken as "not
    /// verified": when the user lacks something else the rule needs, that refusal stands (it is
    /// definitive whatever Viva Engage says); otherwise the re-authorization fails as transient
    /// and the profile keeps its status.
    async fn viva_engage(
        &self,
        profile: &AppProfile,
        app: &AppType,
        client: &ClientRef,
        signed: &SignedIn,
        req: &Requirement,
        facts: &mut UserFacts,
    ) -> Result<VivaEngageFacts, StepError> {
        let Some(refresh_token) = signed.refresh_token.as_ref() else {
            return Err(StepError::Failed(Failure::new(
                "Microsoft returned no refresh token for this sign-in, so Consentry could not ask Viva Engage whether the account is a Verified Admin.",
                vec!["Re-authorize again and accept every permission the app asks for (including offline access).".into()],
            )));
        };
        match self
            .platform
            .viva_engage_facts(&profile.tenant_at(), client, refresh_token)
            .await
        {
            Ok(v) => {
                facts.verified_admin = v.verified_admin;
                Ok(v)
            }
            Err(e) if e.is_transient() => Ok(verified_admin_unknown(
                self.core.catalog(),
                req,
                facts,
                signed,
            )?),
            Err(e) => Err(StepError::Failed(viva_engage_refused(app, signed, &e))),
        }
    }
}

/// The authorization code of Microsoft's answer.
fn code_of(code: Option<&str>) -> Result<&str, Failure> {
    code.filter(|c| !c.is_empty() && c.len() <= 4096)
        .ok_or_else(|| {
            Failure::new(
                "Microsoft's answer had no authorization code.",
                vec!["Start the re-authorization again.".into()],
            )
        })
}

/// The account signed in to the profile's tenant, for this re-authorization. The nonce is
/// mandatory: an ID token without it (or with another) was not issued for this re-authorization (a
/// replayed or injected code).
fn check_identity(
    signed: &SignedIn,
    profile: &AppProfile,
    pending: &PendingAuthorization,
) -> Result<(), Failure> {
    if signed.tenant != profile.tenant_id {
        return Err(Failure::new(
            format!(
                "The account {} belongs to another tenant than this app profile's.",
                signed.upn
            ),
            vec!["Re-authorize with an account of the profile's tenant.".into()],
        ));
    }
    if signed.nonce.as_deref() != Some(pending.nonce.as_str()) {
        return Err(Failure::new(
            "Microsoft's answer did not match this re-authorization (nonce mismatch).",
            vec!["Start the re-authorization again.".into()],
        ));
    }
    Ok(())
}

/// Refuses an account that lacks what the catalog's rule `req` asks of the consenting account.
fn check_requirement(
    catalog: &Catalog,
    req: &Requirement,
    facts: &UserFacts,
    signed: &SignedIn,
    method: ConsentMethod,
    app: &AppType,
) -> Result<(), Failure> {
    let Err(unmet) = catalog.evaluate(req, facts) else {
        return Ok(());
    };
    let mut steps = vec![format!(
        "Re-authorize with an account that has what is needed ({}), or assign it to {} in Microsoft Entra ID first.",
        catalog.describe(req),
        signed.upn
    )];
    if req.mentions_verified_admin() && !facts.verified_admin {
        steps.push(format!(
            "Verified Admin is a Viva Engage role, not a Microsoft Entra ID role: a Viva Engage verified admin assigns it to {} in the Viva Engage admin center (Admin roles), then re-authorize.",
            signed.upn
        ));
    }
    Err(Failure::new(
        format!(
            "The account {} cannot give {} for {}: it {}.",
            signed.upn,
            method.to_string().to_lowercase(),
            app.display_name,
            unmet
        ),
        steps,
    ))
}

/// The delegated scopes the sign-in granted. The OpenID scopes are not echoed in `scope`: the
/// sign-in itself proves openid/profile, and a refresh token proves offline_access.
fn consented_scopes(signed: &SignedIn) -> Vec<String> {
    let mut granted = signed.granted_scopes.clone();
    granted.extend(["openid".to_string(), "profile".to_string()]);
    if signed.refresh_token.is_some() {
        granted.push("offline_access".into());
    }
    granted.sort();
    granted.dedup();
    granted
}

/// Viva Engage did not answer: if the account fails the rule even as a Verified Admin, that refusal
/// stands (Verified Admin is then not named as missing); otherwise the re-authorization fails as
/// transient.
fn verified_admin_unknown(
    catalog: &Catalog,
    req: &Requirement,
    facts: &mut UserFacts,
    signed: &SignedIn,
) -> Result<VivaEngageFacts, Failure> {
    facts.verified_admin = true;
    if catalog.evaluate(req, facts).is_err() {
        return Ok(VivaEngageFacts::default());
    }
    Err(Failure::new(
        format!(
            "Viva Engage did not answer in time, so Consentry could not confirm that {} is a Viva Engage Verified Admin. Nothing was changed.",
            signed.upn
        ),
        vec!["Try the re-authorization again in a few minutes.".into()],
    ))
}

/// Viva Engage refused to answer for the account.
fn viva_engage_refused(app: &AppType, signed: &SignedIn, e: &PlatformError) -> Failure {
    let entra_app = app.entra_app_name.as_deref().unwrap_or(&app.display_name);
    Failure::new(
        format!(
            "Viva Engage refused to say whether {} is a Verified Admin: {}",
            signed.upn, e.message
        ),
        vec![
            format!(
                "Make sure the consent to {entra_app} includes the Viva Engage (Yammer) permission user_impersonation: in the Microsoft Entra admin center, open Enterprise applications > {entra_app} > Permissions and grant admin consent."
            ),
            format!(
                "Make sure {} is an active Viva Engage user, then re-authorize again.",
                signed.upn
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AuthLeg;
    use crate::reauth::testing::{app, pending, profile, signed_in};

    fn catalog() -> &'static Catalog {
        Catalog::builtin_ref()
    }

    fn role(key: &str) -> uuid::Uuid {
        catalog().role(key).expect("role").template_id
    }

    fn viva_rule() -> Requirement {
        app("viva-engage")
            .requirement_for(ConsentMethod::Admin, Some("cloud-backup-m365"), &[], &[])
            .expect("the Viva Engage rule")
    }

    #[test]
    fn an_answer_without_a_usable_code_is_refused() {
        assert!(code_of(None).is_err());
        assert!(code_of(Some("")).is_err());
        assert!(code_of(Some(&"c".repeat(4097))).is_err());
        assert_eq!(code_of(Some("abc")).ok(), Some("abc"));
    }

    #[test]
    fn the_account_must_be_of_the_profiles_tenant_and_carry_the_nonce() {
        let p = profile();
        let pend = pending(AuthLeg::SignIn, false);
        let mut s = signed_in(&p, Some(&pend.nonce));
        assert!(check_identity(&s, &p, &pend).is_ok());
        s.nonce = None;
        let f = check_identity(&s, &p, &pend).unwrap_err();
        assert!(f.message.contains("nonce mismatch"));
        let mut s = signed_in(&p, Some(&pend.nonce));
        s.tenant = crate::ids::TenantId::parse("0b1f8b4e-6b1e-4c1e-9a55-3c1e8b2f6d10").unwrap();
        let f = check_identity(&s, &p, &pend).unwrap_err();
        assert!(f.message.contains("belongs to another tenant"));
    }

    #[test]
    fn an_account_without_the_rules_role_is_refused_with_what_it_needs() {
        let a = app("insights-m365");
        let req = a
            .requirement_for(ConsentMethod::Admin, Some("insights"), &[], &[])
            .expect("admin rule");
        let s = signed_in(&profile(), None);
        let f = check_requirement(
            catalog(),
            &req,
            &UserFacts::default(),
            &s,
            ConsentMethod::Admin,
            &a,
        )
        .unwrap_err();
        assert!(
            f.message
                .starts_with("The account admin@contoso.example cannot give administrator consent"),
            "{}",
            f.message
        );
        assert!(f.remediation[0].contains("Global Administrator"));
        let admin = UserFacts::default().with_role(role("global-administrator"));
        assert!(check_requirement(catalog(), &req, &admin, &s, ConsentMethod::Admin, &a).is_ok());
    }

    #[test]
    fn a_missing_verified_admin_is_explained_as_a_viva_engage_role() {
        let a = app("viva-engage");
        let s = signed_in(&profile(), None);
        let f = check_requirement(
            catalog(),
            &viva_rule(),
            &UserFacts::default(),
            &s,
            ConsentMethod::Admin,
            &a,
        )
        .unwrap_err();
        assert!(
            f.remediation
                .iter()
                .any(|r| r.starts_with("Verified Admin is a Viva Engage role"))
        );
    }

    #[test]
    fn viva_engage_not_answering_never_reads_as_not_verified() {
        let s = signed_in(&profile(), None);
        // Lacking the rule's other conditions: that refusal stands, later.
        let mut facts = UserFacts::default();
        assert!(verified_admin_unknown(catalog(), &viva_rule(), &mut facts, &s).is_ok());
        assert!(facts.verified_admin, "not named as missing");
        // Everything else is there: only Viva Engage could refuse, so the step fails as transient.
        let mut facts = UserFacts::default().with_role(role("yammer-administrator"));
        facts.service_plans.extend(
            catalog()
                .license("viva-engage")
                .expect("license")
                .service_plans
                .iter()
                .cloned(),
        );
        facts.sku_part_numbers.extend(
            catalog()
                .license("viva-engage")
                .expect("license")
                .sku_part_numbers
                .iter()
                .cloned(),
        );
        let f = verified_admin_unknown(catalog(), &viva_rule(), &mut facts, &s).unwrap_err();
        assert!(f.message.contains("did not answer in time"));
    }

    #[test]
    fn the_openid_scopes_are_added_and_offline_access_only_with_a_refresh_token() {
        let mut s = signed_in(&profile(), None);
        s.granted_scopes = vec!["User.Read".into(), "openid".into()];
        assert_eq!(consented_scopes(&s), vec!["User.Read", "openid", "profile"]);
        s.refresh_token = Some(SecretString::from("rt".to_string()));
        assert_eq!(
            consented_scopes(&s),
            vec!["User.Read", "offline_access", "openid", "profile"]
        );
    }
}
