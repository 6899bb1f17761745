//! Parsing a catalog file and checking it, with the position of every problem.
//!
//! The file is first deserialized into "raw" structures that keep the byte span of every value the checks may
//! complain about (`toml::Spanned`), then checked and converted into the public model.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use uuid::Uuid;

use crate::Catalog;
use crate::error::CatalogError;
use crate::model::{
    AppMode, AppType, ConsentMethod, ConsentRule, Function, GraphPermission, License, Module,
    PermissionKind, PermissionType, Role, ScanTarget, Service,
};
use crate::requirement::Requirement;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    version: Spanned<i64>,
    #[serde(default)]
    services: Vec<RawService>,
    #[serde(default)]
    roles: Vec<RawRole>,
    #[serde(default)]
    licenses: Vec<RawLicense>,
    #[serde(default)]
    modules: Vec<RawModule>,
    #[serde(default)]
    app_types: Vec<RawAppType>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    key: Spanned<String>,
    name: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    key: Spanned<String>,
    name: Spanned<String>,
    template_id: Spanned<String>,
    #[serde(default)]
    aliases: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLicense {
    key: Spanned<String>,
    name: Spanned<String>,
    #[serde(default)]
    service_plans: Vec<String>,
    #[serde(default)]
    sku_part_numbers: Vec<String>,
    #[serde(default)]
    illustrative: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    key: Spanned<String>,
    name: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAppType {
    key: Spanned<String>,
    display_name: Spanned<String>,
    entra_app_name: Option<Spanned<String>>,
    services: Spanned<Vec<Spanned<String>>>,
    permission_kind: Spanned<PermissionKind>,
    #[serde(default)]
    custom_app: Option<Spanned<bool>>,
    mode: Option<Spanned<AppMode>>,
    #[serde(default)]
    illustrative: bool,
    notes: Option<String>,
    #[serde(default)]
    consent: Vec<Spanned<RawRule>>,
    #[serde(default)]
    permissions: Vec<Spanned<RawPermission>>,
    #[serde(default)]
    functions: Vec<RawFunction>,
    #[serde(default)]
    scan_targets: Vec<RawScanTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScanTarget {
    key: Spanned<String>,
    name: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    method: Spanned<ConsentMethod>,
    #[serde(default)]
    services: Vec<Spanned<String>>,
    #[serde(default)]
    functions: Vec<Spanned<String>>,
    #[serde(default)]
    scan_targets: Vec<Spanned<String>>,
    requires: Option<Spanned<RawReq>>,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawReq {
    Role(Spanned<String>),
    License(Spanned<String>),
    VerifiedAdmin,
    GroupOwner,
    AnyOf(Vec<Spanned<RawReq>>),
    AllOf(Vec<Spanned<RawReq>>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPermission {
    name: Spanned<String>,
    kind: PermissionType,
    id: Option<Spanned<String>>,
    since: Option<Spanned<i64>>,
    #[serde(default)]
    optional: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunction {
    key: Spanned<String>,
    name: Spanned<String>,
    module: Spanned<String>,
}

/// Parses and checks a catalog; `origin` names its source in errors.
pub(crate) fn parse(src: &str, origin: &str) -> Result<Catalog, CatalogError> {
    let raw: RawCatalog = toml::from_str(src).map_err(|e| syntax_error(src, origin, &e))?;
    Checker { src, origin }.check(raw)
}

/// A TOML or schema error from the deserializer. Short single-line spans are quoted in the message, since some
/// of the parser's messages (e.g. "duplicate key") do not name the offending text.
fn syntax_error(src: &str, origin: &str, e: &toml::de::Error) -> CatalogError {
    let span = e.span().filter(|s| s.start <= s.end && s.end <= src.len());
    let mut message = e.message().trim_end().to_owned();
    if let Some(span) = &span {
        let text = src[span.clone()].trim();
        if !text.is_empty()
            && !text.contains('\n')
            && text.chars().count() <= 60
            && !message.contains(text.trim_matches('"'))
        {
            message = format!("{message} at `{text}`");
        }
    }
    CatalogError::at(
        origin,
        src,
        span.map(|s| s.start),
        format!(
            "{message} (the catalog must be valid TOML following the catalog schema described at the top of the default catalog)"
        ),
    )
}

struct Checker<'a> {
    src: &'a str,
    origin: &'a str,
}

type Res<T> = Result<T, CatalogError>;

impl Checker<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> CatalogError {
        CatalogError::at(self.origin, self.src, Some(span.start), message)
    }

    fn key(&self, key: &Spanned<String>, what: &str) -> Res<String> {
        let k = key.get_ref();
        let ok = !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !k.starts_with('-')
            && !k.ends_with('-');
        if ok {
            Ok(k.clone())
        } else {
            Err(self.err(
                key.span(),
                format!("{what} key `{k}` is not a valid key: use lowercase letters, digits and inner dashes (e.g. `cloud-backup-m365`)"),
            ))
        }
    }

    fn text(&self, value: &Spanned<String>, what: &str) -> Res<String> {
        if value.get_ref().trim().is_empty() {
            Err(self.err(
                value.span(),
                format!("{what} is empty: give it a readable name"),
            ))
        } else {
            Ok(value.get_ref().clone())
        }
    }

    fn unique(
        &self,
        seen: &mut HashMap<String, usize>,
        key: &Spanned<String>,
        what: &str,
    ) -> Res<()> {
        let line_of_first =
            |off: usize| self.src[..off.min(self.src.len())].matches('\n').count() + 1;
        if let Some(first) = seen.get(key.get_ref()) {
            return Err(self.err(
                key.span(),
                format!("duplicate {what} key `{}` (first defined on line {}): every {what} needs its own key", key.get_ref(), line_of_first(*first)),
            ));
        }
        seen.insert(key.get_ref().clone(), key.span().start);
        Ok(())
    }

    fn guid(&self, value: &Spanned<String>, what: &str) -> Res<Uuid> {
        let text = value.get_ref();
        // Only the hyphenated 8-4-4-4-12 form is accepted, as Microsoft writes GUIDs.
        if let Some(id) = Some(text)
            .filter(|t| t.len() == 36)
            .and_then(|t| Uuid::try_parse(t).ok())
        {
            return Ok(id);
        }
        Err(self.err(
            value.span(),
            format!("{what} `{text}` is not a GUID: write it as 8-4-4-4-12 hexadecimal digits, e.g. `62e90394-69f5-4237-9190-012177145e10`"),
        ))
    }

    fn check(&self, raw: RawCatalog) -> Res<Catalog> {
        let version = *raw.version.get_ref();
        let version = u32::try_from(version)
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| {
                self.err(
                    raw.version.span(),
                    format!(
                        "catalog version {version} is invalid: use a whole number of 1 or more"
                    ),
                )
            })?;

        let mut seen = HashMap::new();
        let mut services = Vec::new();
        for s in &raw.services {
            let key = self.key(&s.key, "service")?;
            self.unique(&mut seen, &s.key, "service")?;
            services.push(Service {
                key,
                name: self.text(&s.name, "service name")?,
            });
        }

        let mut seen = HashMap::new();
        let mut seen_ids: HashMap<Uuid, String> = HashMap::new();
        let mut roles = Vec::new();
        for r in &raw.roles {
            let key = self.key(&r.key, "role")?;
            self.unique(&mut seen, &r.key, "role")?;
            let template_id = self.guid(&r.template_id, "role template ID")?;
            if let Some(other) = seen_ids.insert(template_id, key.clone()) {
                return Err(self.err(
                    r.template_id.span(),
                    format!("role template ID {template_id} is already used by role `{other}`: list each Entra role once and put other names in `aliases`"),
                ));
            }
            roles.push(Role {
                key,
                name: self.text(&r.name, "role name")?,
                template_id,
                aliases: r.aliases.clone(),
            });
        }

        let mut seen = HashMap::new();
        let mut licenses = Vec::new();
        for l in &raw.licenses {
            let key = self.key(&l.key, "license")?;
            self.unique(&mut seen, &l.key, "license")?;
            if l.service_plans.is_empty() && l.sku_part_numbers.is_empty() {
                return Err(self.err(
                    l.key.span(),
                    format!("license `{key}` lists no service plan and no SKU part number, so nobody could ever hold it: add `service_plans` or `sku_part_numbers`"),
                ));
            }
            licenses.push(License {
                key,
                name: self.text(&l.name, "license name")?,
                service_plans: l.service_plans.clone(),
                sku_part_numbers: l.sku_part_numbers.clone(),
                illustrative: l.illustrative,
            });
        }

        let mut seen = HashMap::new();
        let mut modules = Vec::new();
        for m in &raw.modules {
            let key = self.key(&m.key, "module")?;
            self.unique(&mut seen, &m.key, "module")?;
            modules.push(Module {
                key,
                name: self.text(&m.name, "module name")?,
            });
        }

        let known = Known {
            services: services.iter().map(|s| s.key.clone()).collect(),
            roles: roles.iter().map(|r| r.key.clone()).collect(),
            licenses: licenses.iter().map(|l| l.key.clone()).collect(),
            modules: modules.iter().map(|m| m.key.clone()).collect(),
            version,
        };

        let mut seen = HashMap::new();
        let mut app_types = Vec::new();
        for a in &raw.app_types {
            self.unique(&mut seen, &a.key, "app type")?;
            app_types.push(self.app_type(a, &known)?);
        }

        Ok(Catalog {
            version,
            services,
            roles,
            licenses,
            modules,
            app_types,
        })
    }

    fn app_type(&self, a: &RawAppType, known: &Known) -> Res<AppType> {
        let key = self.key(&a.key, "app type")?;
        let display_name = self.text(&a.display_name, "app type display name")?;
        let custom_app = a.custom_app.as_ref().is_some_and(|c| *c.get_ref());
        let mode = a.mode.as_ref().map(|m| *m.get_ref());

        if a.services.get_ref().is_empty() {
            return Err(self.err(a.services.span(), format!("app type `{key}` serves no service: list at least one service key in `services`")));
        }
        let mut services = Vec::new();
        for s in a.services.get_ref() {
            known.service(self, s, &format!("app type `{key}`"))?;
            if services.contains(s.get_ref()) {
                return Err(self.err(
                    s.span(),
                    format!(
                        "app type `{key}` lists service `{}` twice: list it once",
                        s.get_ref()
                    ),
                ));
            }
            services.push(s.get_ref().clone());
        }

        let entra_app_name = match &a.entra_app_name {
            Some(name) if custom_app => {
                return Err(self.err(
                    name.span(),
                    format!("app type `{key}` is a custom app but has an Entra app name: a custom app is the customer's own registration, so remove `entra_app_name`"),
                ));
            }
            Some(name) => Some(self.text(name, "Entra app name")?),
            None => None,
        };
        match (&a.mode, custom_app) {
            (Some(m), false) if *m.get_ref() == AppMode::Custom => {
                return Err(self.err(m.span(), format!("app type `{key}` has mode \"custom\" but is not a custom app: add `custom_app = true` or change the mode")));
            }
            (Some(m), true) if *m.get_ref() != AppMode::Custom => {
                return Err(self.err(m.span(), format!("app type `{key}` is a custom app but has mode \"{}\": custom apps use mode \"custom\"", m.get_ref())));
            }
            _ => {}
        }

        let mut functions = Vec::new();
        let mut seen = HashMap::new();
        for f in &a.functions {
            let fkey = self.key(&f.key, "function")?;
            self.unique(&mut seen, &f.key, "function")?;
            if !known.modules.contains(f.module.get_ref()) {
                return Err(self.err(
                    f.module.span(),
                    format!("function `{fkey}` of app type `{key}` names unknown module `{}`: declare it under [[modules]] (known: {})", f.module.get_ref(), list(&known.modules)),
                ));
            }
            functions.push(Function {
                key: fkey,
                name: self.text(&f.name, "function name")?,
                module: f.module.get_ref().clone(),
            });
        }

        let mut scan_targets = Vec::new();
        let mut seen = HashMap::new();
        for t in &a.scan_targets {
            let tkey = self.key(&t.key, "scan target")?;
            self.unique(&mut seen, &t.key, "scan target")?;
            scan_targets.push(ScanTarget {
                key: tkey,
                name: self.text(&t.name, "scan target name")?,
            });
        }

        let mut permissions: Vec<GraphPermission> = Vec::new();
        for p in &a.permissions {
            permissions.push(self.permission(p, &key, known, &permissions)?);
        }
        let has_scopes = permissions.iter().any(|p| p.kind == PermissionType::Scope);
        let has_roles = permissions.iter().any(|p| p.kind == PermissionType::Role);
        let kind = *a.permission_kind.get_ref();
        let kind_problem = match kind {
            PermissionKind::Application if has_scopes => Some(
                "lists delegated scopes (kind = \"scope\"); use permission_kind = \"hybrid\" or remove them",
            ),
            PermissionKind::Application if !has_roles => {
                Some("lists no application role (kind = \"role\")")
            }
            PermissionKind::Delegated if has_roles => Some(
                "lists application roles (kind = \"role\"); use permission_kind = \"hybrid\" or remove them",
            ),
            PermissionKind::Delegated if !has_scopes => {
                Some("lists no delegated scope (kind = \"scope\")")
            }
            PermissionKind::Hybrid if !(has_scopes && has_roles) => Some(
                "needs both delegated scopes and application roles; list both or change permission_kind",
            ),
            _ => None,
        };
        if let Some(problem) = kind_problem {
            return Err(self.err(
                a.permission_kind.span(),
                format!("app type `{key}` has permission_kind \"{kind}\" but {problem}"),
            ));
        }

        let mut consent = Vec::new();
        for rule in &a.consent {
            consent.push(self.rule(rule, &key, &services, &functions, &scan_targets, known)?);
        }
        if !consent
            .iter()
            .any(|r: &ConsentRule| r.method == ConsentMethod::Admin)
        {
            return Err(self.err(
                a.key.span(),
                format!("app type `{key}` has no administrator consent rule: every app type must allow administrator consent; add `{{ method = \"admin\", requires = ... }}` to `consent`"),
            ));
        }
        let user_rule = a
            .consent
            .iter()
            .find(|r| *r.get_ref().method.get_ref() == ConsentMethod::User);
        if let Some(rule) = user_rule.filter(|_| !has_scopes) {
            return Err(self.err(
                rule.get_ref().method.span(),
                format!("app type `{key}` allows user consent but has no delegated scope: user consent can only grant delegated permissions; remove the rule or add scopes"),
            ));
        }

        Ok(AppType {
            key,
            display_name,
            entra_app_name,
            services,
            permission_kind: kind,
            custom_app,
            mode,
            consent,
            permissions,
            functions,
            scan_targets,
            illustrative: a.illustrative,
            notes: a.notes.clone(),
        })
    }

    fn permission(
        &self,
        p: &Spanned<RawPermission>,
        app: &str,
        known: &Known,
        so_far: &[GraphPermission],
    ) -> Res<GraphPermission> {
        let raw = p.get_ref();
        let name = raw.name.get_ref().trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(self.err(raw.name.span(), format!("permission name `{}` of app type `{app}` is invalid: use the Graph permission value, e.g. `User.Read.All`", raw.name.get_ref())));
        }
        if name.contains("://") {
            // A scope of another resource API, in its full form (`https://api.yammer.com/user_impersonation`).
            let well_formed = name
                .strip_prefix("https://")
                .and_then(|rest| rest.split_once('/'))
                .is_some_and(|(host, value)| {
                    !host.is_empty()
                        && !value.is_empty()
                        && !value.ends_with('/')
                        && !name.contains(['?', '#'])
                });
            if !well_formed {
                return Err(self.err(raw.name.span(), format!("permission name `{name}` of app type `{app}` is invalid: a permission of another resource than Microsoft Graph is written `https://<resource>/<scope>`, e.g. `https://api.yammer.com/user_impersonation`")));
            }
            if raw.kind != PermissionType::Scope {
                return Err(self.err(raw.name.span(), format!("permission `{name}` of app type `{app}` is an application permission of another resource than Microsoft Graph: only delegated scopes (kind = \"scope\") of other resources are supported")));
            }
        }
        if so_far.iter().any(|q| q.name == name && q.kind == raw.kind) {
            return Err(self.err(
                raw.name.span(),
                format!(
                    "app type `{app}` lists the {} permission `{name}` twice: list it once",
                    raw.kind
                ),
            ));
        }
        let id = raw
            .id
            .as_ref()
            .map(|id| self.guid(id, "permission ID"))
            .transpose()?;
        let since = match &raw.since {
            None => 1,
            Some(s) => {
                let v = *s.get_ref();
                match u32::try_from(v) {
                    Ok(v) if v >= 1 && v <= known.version => v,
                    _ => {
                        return Err(self.err(
                            s.span(),
                            format!("permission `{name}` of app type `{app}` has since = {v}, outside 1..={} (the catalog version): raise `version` or lower `since`", known.version),
                        ));
                    }
                }
            }
        };
        Ok(GraphPermission {
            name: name.to_owned(),
            kind: raw.kind,
            id,
            since,
            optional: raw.optional,
        })
    }

    fn rule(
        &self,
        rule: &Spanned<RawRule>,
        app: &str,
        app_services: &[String],
        functions: &[Function],
        scan_targets: &[ScanTarget],
        known: &Known,
    ) -> Res<ConsentRule> {
        let r = rule.get_ref();
        let mut services = Vec::new();
        for s in &r.services {
            known.service(self, s, &format!("a consent rule of app type `{app}`"))?;
            if !app_services.contains(s.get_ref()) {
                return Err(self.err(
                    s.span(),
                    format!("a consent rule of app type `{app}` is limited to service `{}`, which the app type does not serve: add it to the app type's `services` or remove it here", s.get_ref()),
                ));
            }
            services.push(s.get_ref().clone());
        }
        let mut fkeys = Vec::new();
        for f in &r.functions {
            if !functions.iter().any(|x| &x.key == f.get_ref()) {
                let names: BTreeSet<String> = functions.iter().map(|x| x.key.clone()).collect();
                return Err(self.err(
                    f.span(),
                    format!("a consent rule of app type `{app}` names unknown function `{}`: declare it in the app type's `functions` (known: {})", f.get_ref(), list(&names)),
                ));
            }
            fkeys.push(f.get_ref().clone());
        }
        let mut tkeys = Vec::new();
        for t in &r.scan_targets {
            if !scan_targets.iter().any(|x| &x.key == t.get_ref()) {
                let names: BTreeSet<String> = scan_targets.iter().map(|x| x.key.clone()).collect();
                return Err(self.err(
                    t.span(),
                    format!("a consent rule of app type `{app}` names unknown scan target `{}`: declare it in the app type's `scan_targets` (known: {})", t.get_ref(), list(&names)),
                ));
            }
            tkeys.push(t.get_ref().clone());
        }
        let requires = match &r.requires {
            Some(req) => self.requirement(req, app, known)?,
            None => Requirement::AllOf(Vec::new()),
        };
        Ok(ConsentRule {
            method: *r.method.get_ref(),
            services,
            functions: fkeys,
            scan_targets: tkeys,
            requires,
            note: r.note.clone(),
        })
    }

    fn requirement(&self, req: &Spanned<RawReq>, app: &str, known: &Known) -> Res<Requirement> {
        Ok(match req.get_ref() {
            RawReq::Role(k) => {
                if !known.roles.contains(k.get_ref()) {
                    return Err(self.err(
                        k.span(),
                        format!("a consent rule of app type `{app}` requires unknown role `{}`: declare it under [[roles]] (known: {})", k.get_ref(), list(&known.roles)),
                    ));
                }
                Requirement::Role(k.get_ref().clone())
            }
            RawReq::License(k) => {
                if !known.licenses.contains(k.get_ref()) {
                    return Err(self.err(
                        k.span(),
                        format!("a consent rule of app type `{app}` requires unknown license `{}`: declare it under [[licenses]] (known: {})", k.get_ref(), list(&known.licenses)),
                    ));
                }
                Requirement::License(k.get_ref().clone())
            }
            RawReq::VerifiedAdmin => Requirement::VerifiedAdmin,
            RawReq::GroupOwner => Requirement::GroupOwner,
            RawReq::AnyOf(parts) | RawReq::AllOf(parts) => {
                let any = matches!(req.get_ref(), RawReq::AnyOf(_));
                if parts.is_empty() {
                    let name = if any { "any_of" } else { "all_of" };
                    return Err(self.err(
                        req.span(),
                        format!("a consent rule of app type `{app}` has an empty `{name}`: list at least one requirement, or leave out `requires` when nothing is required"),
                    ));
                }
                let parts = parts
                    .iter()
                    .map(|p| self.requirement(p, app, known))
                    .collect::<Res<Vec<_>>>()?;
                if any {
                    Requirement::AnyOf(parts)
                } else {
                    Requirement::AllOf(parts)
                }
            }
        })
    }
}

struct Known {
    services: BTreeSet<String>,
    roles: BTreeSet<String>,
    licenses: BTreeSet<String>,
    modules: BTreeSet<String>,
    version: u32,
}

impl Known {
    fn service(&self, c: &Checker<'_>, s: &Spanned<String>, whose: &str) -> Res<()> {
        if self.services.contains(s.get_ref()) {
            Ok(())
        } else {
            Err(c.err(
                s.span(),
                format!(
                    "{whose} names unknown service `{}`: declare it under [[services]] (known: {})",
                    s.get_ref(),
                    list(&self.services)
                ),
            ))
        }
    }
}

fn list(keys: &BTreeSet<String>) -> String {
    if keys.is_empty() {
        "none".to_owned()
    } else {
        keys.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
