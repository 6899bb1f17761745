//! A catalog's next release that adds a permission to an app type: what a vendor ships when a release
//! of its service needs a new Microsoft Graph permission (a permission rollout). The demo seeds one, and
//! tests use it to play a release.

use crate::{Catalog, CatalogError, PermissionType};

/// The catalog `toml` (from `origin`) at its next version, with `permission` of `kind` added to
/// `app_type` (`since` the next version, `optional` or required). The text is edited in place, so its
/// comments and layout stay; the result is parsed again before it is returned.
pub fn with_permission_added(
    toml: &str,
    origin: &str,
    app_type: &str,
    permission: &str,
    kind: PermissionType,
    optional: bool,
) -> Result<String, CatalogError> {
    let current = Catalog::from_toml_str(toml, origin)?;
    let fail = |message: String| CatalogError::at(origin, toml, None, message);
    if current.app_type(app_type).is_none() {
        return Err(fail(format!("the catalog has no app type `{app_type}`")));
    }
    let next = current.version + 1;
    let version_line = format!("\nversion = {}\n", current.version);
    if !toml.contains(&version_line) {
        return Err(fail(format!(
            "the catalog's `version = {}` is not on a line of its own at the top level",
            current.version
        )));
    }
    let text = toml.replacen(&version_line, &format!("\nversion = {next}\n"), 1);
    let start = text
        .find(&format!("key = \"{app_type}\"\n"))
        .ok_or_else(|| {
            fail(format!(
                "`key = \"{app_type}\"` is not on a line of its own"
            ))
        })?;
    let list = "permissions = [\n";
    let at = text[start..]
        .find(list)
        .map(|i| start + i + list.len())
        .ok_or_else(|| {
            fail(format!(
                "app type `{app_type}` has no `permissions = [` list on lines of its own"
            ))
        })?;
    let kind = match kind {
        PermissionType::Scope => "scope",
        PermissionType::Role => "role",
    };
    let line = format!(
        "  {{ name = \"{permission}\", kind = \"{kind}\", since = {next}, optional = {optional} }},\n"
    );
    let text = format!("{}{line}{}", &text[..at], &text[at..]);
    let released = Catalog::from_toml_str(&text, origin)?;
    debug_assert_eq!(released.version, next);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BUILTIN_TOML;

    #[test]
    fn the_next_release_adds_the_permission_since_its_version() {
        let text = with_permission_added(
            BUILTIN_TOML,
            "builtin",
            "m365-all",
            "AuditLog.Read.All",
            PermissionType::Role,
            false,
        )
        .expect("released");
        let c = Catalog::from_toml_str(&text, "released").expect("loads");
        let before = Catalog::builtin();
        assert_eq!(c.version, before.version + 1);
        let added: Vec<_> = c
            .app_type("m365-all")
            .expect("app type")
            .permissions_added_after(before.version)
            .map(|p| (p.name.as_str(), p.kind, p.optional))
            .collect();
        assert_eq!(
            added,
            vec![("AuditLog.Read.All", PermissionType::Role, false)]
        );
    }

    #[test]
    fn an_unknown_app_type_is_named() {
        let e = with_permission_added(
            BUILTIN_TOML,
            "builtin",
            "no-such-app",
            "Mail.Read",
            PermissionType::Scope,
            true,
        )
        .expect_err("refused");
        assert!(e.message.contains("no-such-app"), "{e}");
    }
}
