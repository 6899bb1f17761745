//! Printing: readable tables by default, JSON with `--json`.

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use consentry_catalog::{AppType, Catalog, ConsentMethod, Marker};
use consentry_domain::{
    AppProfile, Consentry, HistoryEvent, Organization, Page, ProfileView, Tenant,
};
use serde::Serialize;

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    t
}

fn json<T: Serialize + ?Sized>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn marker(m: Option<Marker>) -> &'static str {
    match m {
        Some(Marker::Hybrid) => "hybrid",
        Some(Marker::Purebred) => "purebred",
        None => "",
    }
}

fn method(m: ConsentMethod) -> &'static str {
    match m {
        ConsentMethod::Admin => "admin",
        ConsentMethod::User => "user",
    }
}

/// The "Entra app name" column: the name in Microsoft Entra ID; for a custom app (the customer supplies the
/// application ID) "(customer's own app)"; for the vendor's own app whose Entra name the catalog does not give,
/// "(not given in the catalog)" — an unknown name does not make an app the customer's.
fn entra_app_label(a: &AppType) -> String {
    match (&a.entra_app_name, a.custom_app) {
        (_, true) => "(customer's own app)".into(),
        (Some(name), false) => name.clone(),
        (None, false) => "(not given in the catalog)".into(),
    }
}

/// `catalog list`.
pub fn catalog_list(c: &Catalog, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(c);
    }
    let mut t = table(&[
        "key",
        "app type",
        "services",
        "permissions",
        "consent",
        "Entra app name",
    ]);
    for a in &c.app_types {
        let services: Vec<&str> = a
            .services
            .iter()
            .map(|s| c.service(s).map(|x| x.name.as_str()).unwrap_or(s.as_str()))
            .collect();
        let kind = format!("{:?}", a.permission_kind).to_lowercase();
        let kind = match marker(a.marker()) {
            "" => kind,
            m => format!("{kind} ({m})"),
        };
        let consent: Vec<&str> = a.consent_methods().into_iter().map(method).collect();
        t.add_row(vec![
            a.key.clone(),
            a.display_name.clone(),
            services.join(", "),
            kind,
            consent.join(", "),
            entra_app_label(a),
        ]);
    }
    println!("App-type catalog version {}\n{t}", c.version);
    Ok(())
}

/// `catalog show`.
pub fn app_type(c: &Catalog, a: &AppType, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(a);
    }
    println!("{} ({})", a.display_name, a.key);
    if let Some(n) = &a.entra_app_name {
        println!("  Entra app name: {n}");
    }
    let services: Vec<&str> = a
        .services
        .iter()
        .map(|s| c.service(s).map(|x| x.name.as_str()).unwrap_or(s.as_str()))
        .collect();
    println!("  Services: {}", services.join(", "));
    println!(
        "  Permission kind: {}{}",
        format!("{:?}", a.permission_kind).to_lowercase(),
        match marker(a.marker()) {
            "" => String::new(),
            m => format!(" (marked {m})"),
        }
    );
    if a.custom_app {
        println!(
            "  Custom app: the customer supplies the application ID, a .pfx file and its password"
        );
    }
    for m in a.consent_methods() {
        let svc_list: Vec<Option<&str>> = if a.services.len() > 1 {
            a.services.iter().map(|s| Some(s.as_str())).collect()
        } else {
            vec![None]
        };
        for svc in svc_list {
            let req = a
                .requirement_for(m, svc, &[], &[])
                .map(|r| c.describe(&r))
                .unwrap_or_else(|| "no particular role".into());
            match svc {
                Some(s) => println!("  {m} (for {s}): {req}"),
                None => println!("  {m}: {req}"),
            }
        }
    }
    if !a.permissions.is_empty() {
        let mut t = table(&["permission", "kind", "id", "since", "optional"]);
        for p in &a.permissions {
            t.add_row(vec![
                p.name.clone(),
                format!("{:?}", p.kind),
                p.id.map(|i| i.to_string())
                    .unwrap_or_else(|| "UNVERIFIED".into()),
                p.since.to_string(),
                if p.optional {
                    "yes".into()
                } else {
                    String::new()
                },
            ]);
        }
        println!("{t}");
    }
    for f in &a.functions {
        println!("  Function: {} (module {})", f.name, f.module);
    }
    for t in &a.scan_targets {
        println!("  Scan target: {} ({})", t.name, t.key);
    }
    for r in a
        .consent
        .iter()
        .filter(|r| !r.scan_targets.is_empty() && !r.requires.is_trivial())
    {
        let names: Vec<&str> = r
            .scan_targets
            .iter()
            .map(|t| {
                a.scan_target(t)
                    .map(|x| x.name.as_str())
                    .unwrap_or(t.as_str())
            })
            .collect();
        println!(
            "  {} when scanning {}: {}",
            r.method,
            names.join(", "),
            c.describe(&r.requires)
        );
    }
    if let Some(n) = &a.notes {
        println!("  Note: {n}");
    }
    if a.illustrative {
        println!("  Note: some values of this app type are illustrative.");
    }
    Ok(())
}

/// Organizations.
pub fn orgs(list: &[Organization], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(list);
    }
    let mut t = table(&["id", "name", "modules", "services", "created"]);
    for o in list {
        t.add_row(vec![
            o.id.to_string(),
            o.name.clone(),
            o.modules.iter().cloned().collect::<Vec<_>>().join(", "),
            o.services.iter().cloned().collect::<Vec<_>>().join(", "),
            o.created_at.date().to_string(),
        ]);
    }
    println!("{t}");
    Ok(())
}

/// Tenants.
pub fn tenants(list: &[Tenant], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(list);
    }
    let mut t = table(&[
        "tenant id",
        "primary domain",
        "name",
        "cloud",
        "organization",
        "verified",
    ]);
    for x in list {
        t.add_row(vec![
            x.id.to_string(),
            x.primary_domain.to_string(),
            x.display_name.clone(),
            x.cloud.to_string(),
            x.org_id.to_string(),
            match x.verified {
                Some(v) => format!("{} ({})", consentry_certs::utc_minutes(v.at), v.by.as_str()),
                None => "no (typed)".into(),
            },
        ]);
    }
    println!("{t}");
    Ok(())
}

/// A page of profiles.
pub fn profiles(svc: &Consentry, page: Page<AppProfile>, as_json: bool) -> anyhow::Result<()> {
    let views: Vec<ProfileView> = page
        .items
        .into_iter()
        .map(|p| ProfileView::new(p, svc.catalog()))
        .collect();
    if as_json {
        return json(&serde_json::json!({ "items": views, "next_cursor": page.next_cursor }));
    }
    let mut t = table(&[
        "id",
        "app type",
        "service",
        "status",
        "reason",
        "consent user",
        "last check",
    ]);
    for v in &views {
        t.add_row(vec![
            v.profile.id.to_string(),
            match marker(v.marker) {
                "" => v.app_type_name.clone(),
                m => format!("{} [{m}]", v.app_type_name),
            },
            v.service_name.clone(),
            v.status_label.to_string(),
            v.reason_view
                .as_ref()
                .map(|r| r.summary.clone())
                .unwrap_or_default(),
            v.profile
                .consent_user
                .as_ref()
                .map(|u| u.upn.to_string())
                .unwrap_or_default(),
            v.profile
                .last_checked_at
                .map(|d| d.to_string())
                .unwrap_or_else(|| "never".into()),
        ]);
    }
    println!("{t}");
    if let Some(c) = page.next_cursor {
        println!("more: --after {c}");
    }
    Ok(())
}

/// One profile with reason and history.
pub fn profile_detail(
    svc: &Consentry,
    p: AppProfile,
    history: &[HistoryEvent],
    as_json: bool,
) -> anyhow::Result<()> {
    let v = ProfileView::new(p, svc.catalog());
    if as_json {
        return json(&serde_json::json!({ "profile": v, "history": history }));
    }
    let p = &v.profile;
    println!("App profile {}", p.id);
    println!("  App type:   {} ({})", v.app_type_name, p.app_type);
    println!("  Service:    {}", v.service_name);
    println!("  Tenant:     {}", p.tenant_id);
    println!("  Status:     {}", v.status_label);
    if let Some(app) = p.application_id {
        println!("  Application ID: {app}");
    }
    if let Some(u) = &p.consent_user {
        println!("  Consent user: {} ({})", u.upn, u.object_id);
    }
    let app = svc.catalog().app_type(&p.app_type);
    if !p.functions.is_empty() {
        let names: Vec<&str> = p
            .functions
            .iter()
            .map(|f| {
                app.and_then(|a| a.function(f))
                    .map(|x| x.name.as_str())
                    .unwrap_or(f.as_str())
            })
            .collect();
        println!("  Functions:  {}", names.join(", "));
    }
    if !p.scan_targets.is_empty() {
        let names: Vec<&str> = p
            .scan_targets
            .iter()
            .map(|t| {
                app.and_then(|a| a.scan_target(t))
                    .map(|x| x.name.as_str())
                    .unwrap_or(t.as_str())
            })
            .collect();
        println!("  Scans:      {}", names.join(", "));
    }
    if let Some(r) = &v.reason_view {
        println!("  Why:        {}", r.summary);
        for (i, step) in r.remediation.iter().enumerate() {
            println!("    {}. {step}", i + 1);
        }
    }
    if !history.is_empty() {
        println!("  History:");
        for e in history {
            println!(
                "    {}  {}  {}{}",
                e.at,
                e.kind.as_str(),
                e.actor,
                e.detail
                    .as_deref()
                    .map(|d| format!(" — {d}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// `tenants contacts`.
pub fn contacts(c: &consentry_domain::TenantContacts, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(c);
    }
    if c.contacts.is_empty() {
        println!("No administrator contacts.");
    } else {
        println!("Administrator contacts:");
        for a in &c.contacts {
            println!("  {a}");
        }
    }
    if !c.suggested.is_empty() {
        println!("Suggested (consent users of its app profiles):");
        for s in &c.suggested {
            println!("  {s}");
        }
    }
    Ok(())
}

/// `tenants emails`.
pub fn emails(items: &[consentry_domain::EmailRecord], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(items);
    }
    if items.is_empty() {
        println!("No email about this tenant.");
        return Ok(());
    }
    let mut t = table(&["queued", "to", "subject", "state", "attempts", "last error"]);
    for e in items {
        t.add_row(vec![
            consentry_certs::utc_minutes(e.created_at),
            e.to.to_string(),
            e.subject.clone(),
            e.state.as_str().to_string(),
            e.attempts.to_string(),
            e.last_error.clone().unwrap_or_default(),
        ]);
    }
    println!("{t}");
    Ok(())
}

/// `orgs digest`.
pub fn digest(d: &consentry_domain::DigestRecipients, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(d);
    }
    if d.recipients.is_empty() {
        println!("No daily digest (no recipients).");
    } else {
        println!("Daily digest recipients:");
        for a in &d.recipients {
            println!("  {a}");
        }
    }
    Ok(())
}
