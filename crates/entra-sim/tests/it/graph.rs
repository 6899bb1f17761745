//! The Graph subset: shapes, `@odata.context`, paging, `$filter`, and 401/403 with Graph's body.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::support::*;

async fn delegated_token(sim: &entra_sim::RunningSim, user: &str) -> String {
    let browser = Browser::new(sim);
    let body = sign_in_and_redeem(
        sim,
        &browser,
        user,
        IAAS_DELEGATED,
        IAAS_SECRET,
        "openid offline_access User.Read",
    )
    .await;
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn delegated_reads_of_the_signed_in_user() {
    let sim = start().await;
    let token = delegated_token(&sim, "engage.admin@contoso.onmicrosoft.com").await;
    let (status, _, member_of) = graph_get(&sim, "/me/memberOf", &token).await;
    assert_eq!(status, 200, "{member_of}");
    assert_eq!(
        member_of["@odata.context"],
        format!("{}/$metadata#directoryObjects", sim.graph_base())
    );
    let role = &member_of["value"][0];
    assert_eq!(role["@odata.type"], "#microsoft.graph.directoryRole");
    assert_eq!(
        role["roleTemplateId"],
        "810a2642-a034-447f-a5e8-41beaa378541"
    );
    assert_eq!(role["displayName"], "Yammer Administrator");
    assert_ne!(
        role["id"], role["roleTemplateId"],
        "directoryRole id is tenant-specific"
    );
    let (_, _, licenses) = graph_get(&sim, "/me/licenseDetails", &token).await;
    assert_eq!(
        licenses["value"][0]["skuPartNumber"],
        "YAMMER_ENTERPRISE_STANDALONE"
    );
    assert_eq!(
        licenses["value"][0]["servicePlans"][0]["servicePlanName"],
        "YAMMER_ENTERPRISE"
    );
    assert!(
        licenses["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/licenseDetails")
    );
    let (_, _, org) = graph_get(&sim, "/organization", &token).await;
    assert_eq!(org["value"][0]["id"], CONTOSO_ID);
    assert_eq!(org["value"][0]["verifiedDomains"][0]["name"], CONTOSO);
    // With only User.Read, tenant details beyond id/displayName/verifiedDomains are null.
    assert!(org["value"][0]["tenantType"].is_null());

    let owner = delegated_token(&sim, GROUP_OWNER).await;
    let (_, _, owned) = graph_get(&sim, "/me/ownedObjects", &owner).await;
    let group = &owned["value"][0];
    assert_eq!(group["@odata.type"], "#microsoft.graph.group");
    assert_eq!(group["displayName"], "Sales and Marketing");
    // Reading group owners needs a group permission: 403 with Graph's body.
    let (status, headers, denied) = graph_get(
        &sim,
        &format!("/groups/{}/owners", group["id"].as_str().unwrap()),
        &owner,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(denied["error"]["code"], "Authorization_RequestDenied");
    assert_eq!(
        denied["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
    assert!(denied["error"]["innerError"]["request-id"].is_string());
    let date = denied["error"]["innerError"]["date"].as_str().unwrap();
    assert_eq!(date.len(), 19, "no zone suffix: {date}");
    assert!(headers.contains_key("request-id"));
    sim.shutdown().await;
}

#[tokio::test]
async fn app_only_reads_with_paging_and_filters() {
    let sim = start().await;
    // m365-all has Directory.Read.All and Group.ReadWrite.All as application permissions.
    let m365_all = "c0de0000-0000-4000-8000-000000000018";
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(m365_all))
        .unwrap();
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let (status, body) = app_token(&sim, m365_all, "demo-secret-m365-all").await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    // /me needs a user.
    let (status, _, me) = graph_get(&sim, "/me", token).await;
    assert_eq!(status, 400, "{me}");
    // Paging through service principals one at a time.
    let (status, _, first) = graph_get(&sim, "/servicePrincipals?$top=1", token).await;
    assert_eq!(status, 200, "{first}");
    let mut seen = first["value"].as_array().unwrap().len();
    let mut next = first["@odata.nextLink"].as_str().map(str::to_owned);
    while let Some(link) = next {
        assert!(link.starts_with(&sim.graph_base()), "{link}");
        let (_, _, page) = graph_get(&sim, &link, token).await;
        seen += page["value"].as_array().unwrap().len();
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
    }
    let (_, _, all) = graph_get(&sim, "/servicePrincipals", token).await;
    assert_eq!(seen, all["value"].as_array().unwrap().len());
    assert!(seen >= 3, "Graph + two consented apps at least");
    // $filter and the (appId='…') form.
    let (_, _, one) = graph_get(
        &sim,
        &format!("/servicePrincipals?$filter=appId eq '{INSIGHTS}'"),
        token,
    )
    .await;
    assert_eq!(one["value"].as_array().unwrap().len(), 1);
    // $select keeps only the properties named (the filter still sees the whole object).
    let (_, _, selected) = graph_get(
        &sim,
        &format!("/servicePrincipals?$filter=appId eq '{INSIGHTS}'&$select=id,appId"),
        token,
    )
    .await;
    let item = selected["value"][0].as_object().unwrap();
    assert_eq!(item.len(), 2, "{selected}");
    assert_eq!(item["id"], one["value"][0]["id"]);
    assert_eq!(item["appId"], INSIGHTS);
    let (status, _, by_key) = graph_get(
        &sim,
        &format!("/servicePrincipals(appId='{INSIGHTS}')"),
        token,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(by_key["id"], one["value"][0]["id"]);
    let (status, _, graph_sp) = graph_get(
        &sim,
        "/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')",
        token,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        graph_sp["appRoles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["value"] == "Sites.FullControl.All"
                && r["id"] == "a82116e5-55eb-4c41-a434-62fe8a61c773")
    );
    // A service principal's relationships addressed by its appId answer what its object ID does.
    let sp_id = one["value"][0]["id"].as_str().unwrap();
    for rel in ["appRoleAssignments", "oauth2PermissionGrants"] {
        let (status, _, by_id) =
            graph_get(&sim, &format!("/servicePrincipals/{sp_id}/{rel}"), token).await;
        assert_eq!(status, 200, "{by_id}");
        let (status, _, by_app_id) = graph_get(
            &sim,
            &format!("/servicePrincipals(appId='{INSIGHTS}')/{rel}"),
            token,
        )
        .await;
        assert_eq!(status, 200, "{by_app_id}");
        assert_eq!(by_app_id["value"], by_id["value"], "{rel}");
    }
    let (_, _, assigned) = graph_get(
        &sim,
        &format!("/servicePrincipals(appId='{INSIGHTS}')/appRoleAssignments"),
        token,
    )
    .await;
    assert!(
        !assigned["value"].as_array().unwrap().is_empty(),
        "admin consent assigned Insights its app roles: {assigned}"
    );
    let (status, _, missing) = graph_get(
        &sim,
        "/servicePrincipals(appId='11111111-2222-4333-8444-555555555555')",
        token,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["code"], "Request_ResourceNotFound");
    let (status, _, missing) = graph_get(
        &sim,
        "/servicePrincipals(appId='11111111-2222-4333-8444-555555555555')/appRoleAssignments",
        token,
    )
    .await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["error"]["code"], "Request_ResourceNotFound");
    let (status, _, bad) =
        graph_get(&sim, "/oauth2PermissionGrants?$filter=scope eq 'x'", token).await;
    assert_eq!(status, 400, "{bad}");
    let (_, _, grants) = graph_get(
        &sim,
        "/oauth2PermissionGrants?$filter=consentType eq 'AllPrincipals'",
        token,
    )
    .await;
    assert!(
        grants["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["consentType"] == "AllPrincipals")
    );
    // Group owners with a group permission.
    let (status, _, owners) = graph_get(
        &sim,
        "/groups/c0a70000-0000-4000-8000-0000000000f1/owners",
        token,
    )
    .await;
    assert_eq!(status, 200, "{owners}");
    assert_eq!(owners["value"][0]["userPrincipalName"], GROUP_OWNER);
    // Application objects exist only in their home tenant.
    let (status, _, _) =
        graph_get(&sim, &format!("/applications(appId='{INSIGHTS}')"), token).await;
    assert_eq!(status, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn tokens_are_checked_and_verifiable_against_the_jwks() {
    let sim = start().await;
    let token = delegated_token(&sim, USER).await;
    // The JWKS published by discovery verifies the token (kid = x5t).
    let http = client(&sim);
    let disco: serde_json::Value = http
        .get(format!(
            "{}/{CONTOSO}/v2.0/.well-known/openid-configuration",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        disco["issuer"],
        format!("{}/{CONTOSO_ID}/v2.0", sim.base_url())
    );
    assert_eq!(
        disco["token_endpoint"],
        format!("{}/{CONTOSO_ID}/oauth2/v2.0/token", sim.base_url())
    );
    let common: serde_json::Value = http
        .get(format!(
            "{}/common/v2.0/.well-known/openid-configuration",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        common["issuer"],
        format!("{}/{{tenantid}}/v2.0", sim.base_url())
    );
    let jwks: serde_json::Value = http
        .get(disco["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kid"], key["x5t"]);
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["https://graph.microsoft.com"]);
    validation.set_issuer(&[disco["issuer"].as_str().unwrap()]);
    let decoding =
        DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap())
            .unwrap();
    jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation)
        .expect("token verifies with the JWKS");

    // 401s.
    let resp = http
        .get(format!("{}/me", sim.graph_base()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer realm=\"\"")
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    // Another token's signature on this token's header and payload.
    let other = delegated_token(&sim, ADMIN).await;
    let (head, _) = token.rsplit_once('.').unwrap();
    let tampered = format!("{head}.{}", other.rsplit_once('.').unwrap().1);
    let (status, _, _) = graph_get(&sim, "/me", &tampered).await;
    assert_eq!(status, 401);
    sim.control()
        .advance_clock(Duration::from_secs(2 * 3600))
        .unwrap();
    let (status, _, expired) = graph_get(&sim, "/me", &token).await;
    assert_eq!(status, 401);
    assert_eq!(
        expired["error"]["message"],
        "Access token has expired or is not yet valid."
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn role_assignments_and_userinfo() {
    let sim = start().await;
    let policies = "c0de0000-0000-4000-8000-00000000000f";
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(policies))
        .unwrap();
    let (_, body) = app_token(&sim, policies, "demo-secret-policies-m365").await;
    let token = body["access_token"].as_str().unwrap().to_owned();
    let admin_id = "c0a70000-0000-4000-8000-000000000001";
    let filter = format!("principalId eq '{admin_id}'");
    let (status, _, list) = graph_get(
        &sim,
        &format!("/roleManagement/directory/roleAssignments?$filter={filter}"),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["value"][0]["roleDefinitionId"],
        "62e90394-69f5-4237-9190-012177145e10"
    );
    assert_eq!(list["value"][0]["directoryScopeId"], "/");
    // beta transitiveRoleAssignments needs ConsistencyLevel: eventual, $count and $filter.
    let beta = format!(
        "{}/beta/roleManagement/directory/transitiveRoleAssignments?$count=true&$filter={filter}",
        sim.base_url()
    );
    let http = client(&sim);
    let plain = http.get(&beta).bearer_auth(&token).send().await.unwrap();
    assert_eq!(plain.status().as_u16(), 404);
    let eventual = http
        .get(&beta)
        .bearer_auth(&token)
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .unwrap();
    assert_eq!(eventual.status().as_u16(), 200);
    let body: serde_json::Value = eventual.json().await.unwrap();
    assert_eq!(body["@odata.count"], 1);

    let user_token = delegated_token(&sim, USER).await;
    let info: serde_json::Value = http
        .get(format!("{}/oidc/userinfo", sim.base_url()))
        .bearer_auth(&user_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["name"], "Adele Vance");
    assert_eq!(info["sub"], claims(&user_token)["sub"]);
    sim.shutdown().await;
}
