//! Requirements on the consenting user (roles, licenses, Verified Admin, group ownership) as data, their
//! evaluation against what is known of a user, and their description in words.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Catalog;

/// A condition on the consenting user, composed with any-of / all-of.
///
/// Serialized like the catalog file writes it: `{"role": "global-administrator"}`, `{"license": "power-bi"}`,
/// `"verified_admin"`, `"group_owner"`, `{"any_of": [..]}`, `{"all_of": [..]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(no_recursion))]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    /// Holds the role with this key (an active assignment of its template ID).
    Role(String),
    /// Holds the license with this key.
    License(String),
    /// Is a Viva Engage Verified Admin.
    VerifiedAdmin,
    /// Owns the groups the app manages.
    GroupOwner,
    /// At least one of these holds (never true when empty).
    AnyOf(Vec<Requirement>),
    /// All of these hold (true when empty).
    AllOf(Vec<Requirement>),
}

impl Default for Requirement {
    /// Nothing required: `AllOf([])`.
    fn default() -> Self {
        Requirement::AllOf(Vec::new())
    }
}

impl Requirement {
    /// True for a requirement that every user satisfies (`AllOf` of nothing but such requirements).
    pub fn is_trivial(&self) -> bool {
        match self {
            Requirement::AllOf(parts) => parts.iter().all(Requirement::is_trivial),
            _ => false,
        }
    }

    /// Whether any part of the requirement is Viva Engage Verified Admin (a fact read from the Viva
    /// Engage API, not from Microsoft Graph, so it is asked for only when a rule needs it).
    pub fn mentions_verified_admin(&self) -> bool {
        match self {
            Requirement::VerifiedAdmin => true,
            Requirement::AnyOf(parts) | Requirement::AllOf(parts) => {
                parts.iter().any(Requirement::mentions_verified_admin)
            }
            _ => false,
        }
    }

    /// An equivalent, easier-to-read requirement: nested groups of the same kind are flattened, repeated
    /// parts and parts every user meets are dropped, an any-of implied by another part of the same all-of is
    /// dropped, and one-element groups are unwrapped. For example `AllOf([AnyOf([A, B, Y]), AllOf([Y, V])])`
    /// becomes `AllOf([Y, V])`.
    pub fn simplified(&self) -> Requirement {
        match self {
            Requirement::AllOf(parts) => {
                let mut flat: Vec<Requirement> = Vec::new();
                for p in parts.iter().map(Requirement::simplified) {
                    match p {
                        Requirement::AllOf(inner) => flat.extend(inner),
                        other => flat.push(other),
                    }
                }
                let mut out: Vec<Requirement> = Vec::new();
                for p in flat {
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
                let implied = |i: usize, p: &Requirement| match p {
                    Requirement::AnyOf(alts) => out.iter().enumerate().any(|(j, q)| {
                        j != i && !matches!(q, Requirement::AnyOf(_)) && alts.contains(q)
                    }),
                    _ => false,
                };
                let kept: Vec<Requirement> = out
                    .iter()
                    .enumerate()
                    .filter(|(i, p)| !implied(*i, p))
                    .map(|(_, p)| p.clone())
                    .collect();
                if kept.len() == 1 {
                    kept.into_iter().next().unwrap_or_default()
                } else {
                    Requirement::AllOf(kept)
                }
            }
            Requirement::AnyOf(parts) => {
                let mut out: Vec<Requirement> = Vec::new();
                for p in parts.iter().map(Requirement::simplified) {
                    let items = match p {
                        Requirement::AnyOf(inner) => inner,
                        other => vec![other],
                    };
                    for i in items {
                        if !out.contains(&i) {
                            out.push(i);
                        }
                    }
                }
                if out.len() == 1 {
                    out.into_iter().next().unwrap_or_default()
                } else {
                    Requirement::AnyOf(out)
                }
            }
            leaf => leaf.clone(),
        }
    }

    /// Every role key the requirement mentions, in order of appearance.
    pub fn role_keys(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |r| {
            if let Requirement::Role(k) = r {
                out.push(k.as_str());
            }
        });
        out
    }

    /// Every license key the requirement mentions, in order of appearance.
    pub fn license_keys(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |r| {
            if let Requirement::License(k) = r {
                out.push(k.as_str());
            }
        });
        out
    }

    fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Requirement)) {
        f(self);
        if let Requirement::AnyOf(parts) | Requirement::AllOf(parts) = self {
            for p in parts {
                p.walk(f);
            }
        }
    }
}

/// What is known about the consenting user, gathered from Microsoft Graph (`memberOf` / `wids`,
/// `licenseDetails`, group owners) or from the admin's answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFacts {
    /// Template IDs of the user's active Entra role assignments.
    pub role_template_ids: BTreeSet<Uuid>,
    /// Names of the service plans in the user's licenses (`servicePlanName`).
    pub service_plans: BTreeSet<String>,
    /// SKU part numbers of the user's licenses (`skuPartNumber`).
    pub sku_part_numbers: BTreeSet<String>,
    /// Whether the user is a Viva Engage Verified Admin.
    pub verified_admin: bool,
    /// Whether the user owns the groups the app manages.
    pub group_owner: bool,
}

impl UserFacts {
    /// Adds a role template ID.
    pub fn with_role(mut self, template_id: Uuid) -> Self {
        self.role_template_ids.insert(template_id);
        self
    }

    /// Adds a license service plan name.
    pub fn with_service_plan(mut self, plan: impl Into<String>) -> Self {
        self.service_plans.insert(plan.into());
        self
    }

    /// Adds a license SKU part number.
    pub fn with_sku(mut self, sku: impl Into<String>) -> Self {
        self.sku_part_numbers.insert(sku.into());
        self
    }

    /// Sets the Verified Admin flag.
    pub fn verified_admin(mut self, yes: bool) -> Self {
        self.verified_admin = yes;
        self
    }

    /// Sets the group-owner flag.
    pub fn group_owner(mut self, yes: bool) -> Self {
        self.group_owner = yes;
        self
    }
}

/// A requirement the consenting user does not meet, with what it asks for and what is lacking, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmet {
    /// The requirement that was evaluated.
    pub requirement: Requirement,
    /// The requirement in words, e.g. "Yammer Administrator and Verified Admin and a Viva Engage license".
    pub needs: String,
    /// The unmet parts in words, e.g. `["Verified Admin", "a Viva Engage license"]`.
    pub missing: Vec<String>,
}

impl fmt::Display for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "needs {}", self.needs)?;
        let only_restates_needs = self.missing.len() == 1 && self.missing[0] == self.needs;
        if !self.missing.is_empty() && !only_restates_needs {
            write!(f, " (missing: {})", self.missing.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for Unmet {}

pub(crate) fn holds(cat: &Catalog, req: &Requirement, facts: &UserFacts) -> bool {
    match req {
        Requirement::Role(key) => cat
            .role(key)
            .is_some_and(|r| facts.role_template_ids.contains(&r.template_id)),
        Requirement::License(key) => cat.license(key).is_some_and(|l| {
            l.service_plans
                .iter()
                .any(|p| contains_ci(&facts.service_plans, p))
                || l.sku_part_numbers
                    .iter()
                    .any(|s| contains_ci(&facts.sku_part_numbers, s))
        }),
        Requirement::VerifiedAdmin => facts.verified_admin,
        Requirement::GroupOwner => facts.group_owner,
        Requirement::AnyOf(parts) => parts.iter().any(|p| holds(cat, p, facts)),
        Requirement::AllOf(parts) => parts.iter().all(|p| holds(cat, p, facts)),
    }
}

fn contains_ci(set: &BTreeSet<String>, value: &str) -> bool {
    set.iter().any(|v| v.eq_ignore_ascii_case(value))
}

pub(crate) fn missing(cat: &Catalog, req: &Requirement, facts: &UserFacts, out: &mut Vec<String>) {
    if holds(cat, req, facts) {
        return;
    }
    match req {
        Requirement::AllOf(parts) => {
            for p in parts {
                missing(cat, p, facts, out);
            }
        }
        other => out.push(describe(cat, other)),
    }
}

/// Describes a requirement in words. Nested groups of the other kind are parenthesised:
/// "Global Administrator or (Privileged Role Administrator and Teams Administrator)".
pub(crate) fn describe(cat: &Catalog, req: &Requirement) -> String {
    match req {
        Requirement::Role(key) => cat
            .role(key)
            .map_or_else(|| format!("the role `{key}`"), |r| r.name.clone()),
        Requirement::License(key) => cat.license(key).map_or_else(
            || format!("the license `{key}`"),
            |l| format!("a {} license", l.name),
        ),
        Requirement::VerifiedAdmin => "Verified Admin".to_owned(),
        Requirement::GroupOwner => "ownership of the managed groups".to_owned(),
        Requirement::AnyOf(parts) if parts.is_empty() => {
            "an empty any-of (which nobody can meet)".to_owned()
        }
        Requirement::AllOf(parts) if parts.iter().all(Requirement::is_trivial) => {
            "no particular role or license".to_owned()
        }
        Requirement::AnyOf(parts) => join(cat, parts, " or "),
        Requirement::AllOf(parts) => {
            let parts: Vec<Requirement> =
                parts.iter().filter(|p| !p.is_trivial()).cloned().collect();
            join(cat, &parts, " and ")
        }
    }
}

fn join(cat: &Catalog, parts: &[Requirement], sep: &str) -> String {
    if let [only] = parts {
        return describe(cat, only);
    }
    parts
        .iter()
        .map(|p| {
            let text = describe(cat, p);
            let grouped = matches!(p, Requirement::AnyOf(v) | Requirement::AllOf(v) if v.len() > 1);
            if grouped { format!("({text})") } else { text }
        })
        .collect::<Vec<_>>()
        .join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Requirement::*;

    fn role(k: &str) -> Requirement {
        Role(k.to_owned())
    }

    #[test]
    fn simplification_drops_any_of_implied_by_a_conjunct() {
        let combined = AllOf(vec![
            AnyOf(vec![role("ga"), role("pra"), role("yammer")]),
            AllOf(vec![
                role("yammer"),
                VerifiedAdmin,
                License("engage".into()),
            ]),
        ]);
        assert_eq!(
            combined.simplified(),
            AllOf(vec![
                role("yammer"),
                VerifiedAdmin,
                License("engage".into())
            ])
        );
    }

    #[test]
    fn simplification_keeps_any_of_not_implied() {
        let combined = AllOf(vec![AnyOf(vec![role("ga"), role("pra")]), role("backup")]);
        assert_eq!(combined.simplified(), combined);
    }

    #[test]
    fn simplification_flattens_dedups_and_unwraps() {
        let r = AllOf(vec![AllOf(vec![]), AllOf(vec![role("ga")]), role("ga")]);
        assert_eq!(r.simplified(), role("ga"));
        let r = AnyOf(vec![
            AnyOf(vec![role("a"), role("b")]),
            role("a"),
            role("c"),
        ]);
        assert_eq!(r.simplified(), AnyOf(vec![role("a"), role("b"), role("c")]));
        assert_eq!(AllOf(vec![AllOf(vec![])]).simplified(), AllOf(vec![]));
        assert_eq!(AnyOf(vec![]).simplified(), AnyOf(vec![]));
    }

    #[test]
    fn trivial_and_key_listing() {
        assert!(Requirement::default().is_trivial());
        assert!(AllOf(vec![AllOf(vec![])]).is_trivial());
        assert!(!AnyOf(vec![]).is_trivial());
        assert!(!GroupOwner.is_trivial());
        let r = AnyOf(vec![role("a"), AllOf(vec![role("b"), License("l".into())])]);
        assert_eq!(r.role_keys(), ["a", "b"]);
        assert_eq!(r.license_keys(), ["l"]);
    }

    #[test]
    fn unknown_keys_never_hold_and_are_named_in_words() {
        let cat = Catalog::builtin();
        let r = AnyOf(vec![
            role("no-such-role"),
            License("no-such-license".into()),
        ]);
        let everything = UserFacts::default()
            .with_role(uuid::Uuid::nil())
            .with_service_plan("BI_AZURE_P2")
            .verified_admin(true)
            .group_owner(true);
        let unmet = cat.evaluate(&r, &everything).unwrap_err();
        assert_eq!(
            unmet.to_string(),
            "needs the role `no-such-role` or the license `no-such-license`"
        );
        assert!(cat.evaluate(&AnyOf(vec![]), &everything).is_err());
        assert!(cat.evaluate(&AllOf(vec![]), &UserFacts::default()).is_ok());
    }

    #[test]
    fn nested_groups_are_parenthesised() {
        let cat = Catalog::builtin();
        let r = AllOf(vec![
            AnyOf(vec![
                role("global-administrator"),
                role("exchange-administrator"),
            ]),
            GroupOwner,
            AnyOf(vec![role("teams-administrator")]),
        ]);
        assert_eq!(
            cat.describe(&r),
            "(Global Administrator or Exchange Administrator) and ownership of the managed groups and Teams Administrator"
        );
        let unmet = cat
            .evaluate(&r, &UserFacts::default().group_owner(true))
            .unwrap_err();
        assert_eq!(
            unmet.missing,
            [
                "Global Administrator or Exchange Administrator",
                "Teams Administrator"
            ]
        );
    }
}
