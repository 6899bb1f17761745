//! An entra-sim scenario for sweeps over many tenants: `n` customer tenants
//! (`bench-N.onmicrosoft.com`), each owning a custom app (the catalog's `custom-azure-app`) with the
//! demo certificate, admin-consented at start.

use entra_sim::{App, KeyCredential, Scenario, SignInAudience, Tenant};
use uuid::Uuid;

/// The certificate registered on every bench custom app (the demo custom app's, DEMO ONLY).
const CERT_PEM: &str = include_str!("../../entra-sim/scenarios/contoso-custom-app/cert.pem");

/// The ID of bench tenant `i`.
pub fn tenant_id(i: usize) -> Uuid {
    Uuid::from_u128(0xbe9c_0000_0000_4000_8000_0000_0000_0000 | i as u128)
}

/// The primary domain of bench tenant `i`.
pub fn tenant_domain(i: usize) -> String {
    format!("bench-{i}.onmicrosoft.com")
}

/// The client ID of bench tenant `i`'s custom app.
pub fn custom_app_id(i: usize) -> Uuid {
    Uuid::from_u128(0xbe9c_a000_0000_4000_8000_0000_0000_0000 | i as u128)
}

/// The application permissions every bench custom app has (the catalog's `custom-azure-app` set, plus
/// `Directory.Read.All` so that the app may list its delegated grants as a check does).
pub const APPLICATION_PERMISSIONS: &[&str] = &[
    "User.Read.All",
    "Group.ReadWrite.All",
    "Sites.FullControl.All",
    "Files.ReadWrite.All",
    "Mail.ReadWrite",
    "Tasks.ReadWrite.All",
    "Directory.Read.All",
];

/// The contoso scenario plus `tenants` bench tenants, each with its own admin-consented custom app.
pub fn bench_scenario(tenants: usize) -> Scenario {
    let mut s = Scenario::contoso();
    s.name = format!("bench-{tenants}");
    for i in 0..tenants {
        let domain = tenant_domain(i);
        s.tenants.push(Tenant {
            id: tenant_id(i),
            display_name: format!("Bench {i}"),
            cloud: "global".into(),
            domains: vec![domain.clone()],
            users_can_consent: false,
            entra_id_plan: entra_sim::EntraIdPlan::Free,
            users: Vec::new(),
            groups: Vec::new(),
            ca_policies: Vec::new(),
            preconsented_apps: vec![custom_app_id(i)],
            service_principals: Vec::new(),
            oauth2_permission_grants: Vec::new(),
            app_role_assignments: Vec::new(),
        });
        s.apps.push(App {
            client_id: custom_app_id(i),
            object_id: None,
            display_name: format!("Bench {i} Custom App"),
            home_tenant: domain,
            catalog_key: Some("custom-azure-app".into()),
            sign_in_audience: SignInAudience::AzureADMyOrg,
            redirect_uris: Vec::new(),
            allow_public_client: false,
            public_client_redirect_uris: Vec::new(),
            secrets: Vec::new(),
            certificates: vec![KeyCredential {
                key_id: Uuid::from_u128(0xbe9c_c000_0000_4000_8000_0000_0000_0000 | i as u128),
                display_name: Some("CN=Contoso Custom App (DEMO ONLY)".into()),
                certificate: CERT_PEM.to_string(),
            }],
            delegated: Vec::new(),
            application: APPLICATION_PERMISSIONS
                .iter()
                .map(|p| (*p).to_string())
                .collect(),
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_per_tenant() {
        assert_ne!(tenant_id(1), tenant_id(2));
        assert_ne!(custom_app_id(1), tenant_id(1));
        assert_eq!(tenant_domain(7), "bench-7.onmicrosoft.com");
    }

    #[test]
    fn the_scenario_has_one_consented_custom_app_per_bench_tenant() {
        let s = bench_scenario(3);
        for i in 0..3 {
            let t = s.tenants.iter().find(|t| t.id == tenant_id(i)).unwrap();
            assert_eq!(t.preconsented_apps, vec![custom_app_id(i)]);
            let app = s
                .apps
                .iter()
                .find(|a| a.client_id == custom_app_id(i))
                .unwrap();
            assert_eq!(app.home_tenant, tenant_domain(i));
            assert_eq!(app.certificates.len(), 1);
        }
    }
}
