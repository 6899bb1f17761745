//! What an app type's registration must request (`requiredResourceAccess`): the catalog's permissions
//! grouped by resource API with their IDs. A permission whose ID the catalog does not know is reported, not
//! guessed, so `consentry apps manifest` can name it and `consentry doctor` does not call it missing.

use serde::Serialize;
use uuid::Uuid;

use crate::model::{AppType, PermissionType};

/// Microsoft Graph's application ID (`resourceAppId` of its permissions), the same in every tenant
/// (entra-facts §5.2).
pub const GRAPH_RESOURCE_APP_ID: Uuid = Uuid::from_u128(0x00000003_0000_0000_c000_000000000000);

/// The permissions a registration requests of one resource API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceRequest {
    /// The resource's application ID.
    pub resource_app_id: Uuid,
    /// The requested permissions: ID and kind, in catalog order, without duplicates.
    pub access: Vec<(Uuid, PermissionType)>,
}

/// A catalog permission that cannot be written into a registration because an ID is unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnplacedPermission {
    /// The permission as the catalog names it.
    pub name: String,
    /// Delegated or application.
    pub kind: PermissionType,
    /// What is unknown, in words.
    pub reason: String,
}

/// What an app type's registration must request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequiredAccess {
    /// By resource API, Microsoft Graph first.
    pub resources: Vec<ResourceRequest>,
    /// Permissions left out because the catalog does not know an ID they need.
    pub unplaced: Vec<UnplacedPermission>,
}

impl RequiredAccess {
    /// Whether `granted` (resource app ID, permission ID, kind) lists every permission placed here.
    /// Returns the ones it misses.
    pub fn missing_from<'a>(
        &'a self,
        granted: &[(Uuid, Uuid, PermissionType)],
    ) -> Vec<(&'a ResourceRequest, Uuid, PermissionType)> {
        let mut missing = Vec::new();
        for r in &self.resources {
            for &(id, kind) in &r.access {
                if !granted
                    .iter()
                    .any(|&(res, g, k)| res == r.resource_app_id && g == id && k == kind)
                {
                    missing.push((r, id, kind));
                }
            }
        }
        missing
    }
}

impl AppType {
    /// What this app type's registration must request (`requiredResourceAccess`). Custom app types have
    /// no vendor registration (the customer registers the app) and request nothing here.
    pub fn required_access(&self) -> RequiredAccess {
        let mut out = RequiredAccess::default();
        if self.custom_app {
            return out;
        }
        for p in &self.permissions {
            if !p.is_graph() {
                out.unplaced.push(UnplacedPermission {
                    name: p.name.clone(),
                    kind: p.kind,
                    reason: format!(
                        "the catalog does not know the application ID of the resource {} nor the ID of this \
                         permission; add it to the registration by hand",
                        p.resource().unwrap_or("?")
                    ),
                });
                continue;
            }
            let Some(id) = p.id else {
                out.unplaced.push(UnplacedPermission {
                    name: p.name.clone(),
                    kind: p.kind,
                    reason: format!(
                        "the catalog does not know the ID of Microsoft Graph's {} permission {}; add it to the \
                         registration by hand (Entra admin center, API permissions)",
                        p.kind, p.name
                    ),
                });
                continue;
            };
            let graph = match out
                .resources
                .iter_mut()
                .find(|r| r.resource_app_id == GRAPH_RESOURCE_APP_ID)
            {
                Some(r) => r,
                None => {
                    out.resources.push(ResourceRequest {
                        resource_app_id: GRAPH_RESOURCE_APP_ID,
                        access: Vec::new(),
                    });
                    out.resources.last_mut().expect("just pushed")
                }
            };
            if !graph.access.contains(&(id, p.kind)) {
                graph.access.push((id, p.kind));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalog;

    #[test]
    fn graph_permissions_are_placed_with_their_ids_and_kinds() {
        let catalog = Catalog::builtin();
        let app = catalog.app_type("insights-m365").expect("insights-m365");
        let access = app.required_access();
        assert_eq!(access.resources.len(), 1);
        let graph = &access.resources[0];
        assert_eq!(graph.resource_app_id, GRAPH_RESOURCE_APP_ID);
        // Every Graph permission with an ID is there once, with its kind.
        for p in app.permissions.iter().filter(|p| p.is_graph()) {
            let id = p.id.expect("the default catalog knows this ID");
            assert_eq!(
                graph
                    .access
                    .iter()
                    .filter(|&&(i, k)| i == id && k == p.kind)
                    .count(),
                1,
                "{}",
                p.name
            );
        }
        assert!(access.unplaced.is_empty());
        assert!(access.missing_from(&[]).len() == graph.access.len());
        let all: Vec<_> = graph
            .access
            .iter()
            .map(|&(i, k)| (GRAPH_RESOURCE_APP_ID, i, k))
            .collect();
        assert!(access.missing_from(&all).is_empty());
        // The same ID as the other kind does not count.
        let wrong_kind: Vec<_> = all
            .iter()
            .map(|&(r, i, k)| {
                let other = match k {
                    PermissionType::Role => PermissionType::Scope,
                    PermissionType::Scope => PermissionType::Role,
                };
                (r, i, other)
            })
            .collect();
        assert_eq!(access.missing_from(&wrong_kind).len(), all.len());
    }

    #[test]
    fn a_permission_without_a_known_id_is_reported_not_guessed() {
        let catalog = Catalog::builtin();
        let unplaced: Vec<(String, String)> = catalog
            .app_types
            .iter()
            .flat_map(|a| {
                a.required_access()
                    .unplaced
                    .into_iter()
                    .map(|u| (a.key.clone(), u.name))
            })
            .collect();
        // The Yammer scope of the Viva Engage app type has no known resource ID.
        assert!(
            unplaced
                .iter()
                .any(|(_, n)| n == "https://api.yammer.com/user_impersonation"),
            "{unplaced:?}"
        );
        // Custom app types request nothing of the vendor.
        for a in catalog.app_types.iter().filter(|a| a.custom_app) {
            assert_eq!(a.required_access(), RequiredAccess::default());
        }
    }
}
