//! Authorization: Cinder's admin-only policy rules in one table, enforced by the auth
//! middleware for every request before its handler runs (handlers keep their own checks as a
//! second line), the `{project_id}` URL check, and `authorize_admin` for handlers. Admin =
//! the `admin` role (Cinder's `context_is_admin`); noauth callers are always admins.

use axum::http::Method;

use super::error::ApiError;
use crate::rpc::RequestContext;

/// `(method, path pattern without the /v3[/{project_id}] prefix, Cinder's rule name)`.
/// In patterns `*` is one segment and `**` any rest; method `*` is any method.
const ADMIN_ONLY: &[(&str, &str, &str)] = &[
    ("GET", "/os-services", "volume_extension:services:index"),
    ("PUT", "/os-services/*", "volume_extension:services:update"),
    ("*", "/os-hosts/**", "volume_extension:hosts"),
    ("*", "/capabilities/**", "volume_extension:capabilities"),
    (
        "GET",
        "/scheduler-stats/**",
        "scheduler_extension:scheduler_stats:get_pools",
    ),
    ("POST", "/types", "volume_extension:types_manage"),
    ("PUT", "/types/*", "volume_extension:types_manage"),
    ("DELETE", "/types/*", "volume_extension:types_manage"),
    (
        "POST",
        "/types/*/extra_specs",
        "volume_extension:types_extra_specs:create",
    ),
    (
        "PUT",
        "/types/*/extra_specs/*",
        "volume_extension:types_extra_specs:update",
    ),
    (
        "DELETE",
        "/types/*/extra_specs/*",
        "volume_extension:types_extra_specs:delete",
    ),
    (
        "GET",
        "/types/*/os-volume-type-access",
        "volume_extension:volume_type_access:get_all_for_type",
    ),
    (
        "POST",
        "/types/*/encryption/**",
        "volume_extension:volume_type_encryption:create",
    ),
    (
        "PUT",
        "/types/*/encryption/**",
        "volume_extension:volume_type_encryption:update",
    ),
    (
        "DELETE",
        "/types/*/encryption/**",
        "volume_extension:volume_type_encryption:delete",
    ),
    ("*", "/qos-specs/**", "volume_extension:qos_specs_manage"),
    ("PUT", "/os-quota-sets/*", "volume_extension:quotas:update"),
    (
        "DELETE",
        "/os-quota-sets/*",
        "volume_extension:quotas:delete",
    ),
    (
        "*",
        "/os-quota-class-sets/**",
        "volume_extension:quota_classes",
    ),
    ("*", "/default-types/**", "volume_extension:default_types"),
    ("POST", "/group_types", "group:group_types_manage"),
    ("PUT", "/group_types/*", "group:group_types_manage"),
    ("DELETE", "/group_types/*", "group:group_types_manage"),
    (
        "POST",
        "/group_types/*/group_specs",
        "group:group_types_specs",
    ),
    (
        "PUT",
        "/group_types/*/group_specs/*",
        "group:group_types_specs",
    ),
    (
        "DELETE",
        "/group_types/*/group_specs/*",
        "group:group_types_specs",
    ),
    ("*", "/clusters/**", "clusters:get_all"),
    ("*", "/workers/**", "workers:cleanup"),
    (
        "*",
        "/manageable_volumes/**",
        "volume:get_manageable_volumes",
    ),
    (
        "*",
        "/manageable_snapshots/**",
        "snapshot_extension:list_manageable",
    ),
    ("*", "/kiln-plugins/**", "kiln:plugins"),
    ("*", "/kiln-chains/**", "kiln:chains"),
    ("*", "/kiln-scheduler/**", "kiln:dry_run"),
    ("*", "/kiln-backends/**", "kiln:backend_drivers"),
];

/// Actions (`POST /<collection>/{id}/action` with `{"<name>": ...}`) only admins may run:
/// `(collection, action, rule)`.
const ADMIN_ACTIONS: &[(&str, &str, &str)] = &[
    (
        "volumes",
        "os-reset_status",
        "volume_extension:volume_admin_actions:reset_status",
    ),
    (
        "volumes",
        "os-force_delete",
        "volume_extension:volume_admin_actions:force_delete",
    ),
    (
        "volumes",
        "os-force_detach",
        "volume_extension:volume_admin_actions:force_detach",
    ),
    (
        "volumes",
        "os-migrate_volume",
        "volume_extension:volume_admin_actions:migrate_volume",
    ),
    (
        "volumes",
        "os-migrate_volume_completion",
        "volume_extension:volume_admin_actions:migrate_volume_completion",
    ),
    (
        "volumes",
        "os-extend_volume_completion",
        "volume_extension:volume_admin_actions:extend_volume_completion",
    ),
    (
        "snapshots",
        "os-reset_status",
        "volume_extension:snapshot_admin_actions:reset_status",
    ),
    (
        "snapshots",
        "os-force_delete",
        "volume_extension:snapshot_admin_actions:force_delete",
    ),
    (
        "backups",
        "os-reset_status",
        "volume_extension:backup_admin_actions:reset_status",
    ),
    (
        "backups",
        "os-force_delete",
        "volume_extension:backup_admin_actions:force_delete",
    ),
    ("groups", "reset_status", "group:reset_status"),
    (
        "group_snapshots",
        "reset_status",
        "group:reset_group_snapshot_status",
    ),
    (
        "types",
        "addProjectAccess",
        "volume_extension:volume_type_access:addProjectAccess",
    ),
    (
        "types",
        "removeProjectAccess",
        "volume_extension:volume_type_access:removeProjectAccess",
    ),
];

/// The admin-only actions of a collection (`volumes`, `snapshots`, ...): `(action, rule)`.
pub fn admin_actions(collection: &str) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
    ADMIN_ACTIONS
        .iter()
        .filter(move |(c, _, _)| *c == collection)
        .map(|(_, action, rule)| (*action, *rule))
}

/// Cinder's `PolicyNotAuthorized`.
pub fn forbidden(rule: &str) -> ApiError {
    ApiError::Forbidden(format!("Policy doesn't allow {rule} to be performed."))
}

/// 403 unless the caller is an admin; `rule` names what was refused.
pub fn authorize_admin(ctx: &RequestContext, rule: &str) -> Result<(), ApiError> {
    if ctx.is_admin {
        Ok(())
    } else {
        Err(forbidden(rule))
    }
}

/// Whether `path` fits `pattern` (`*` one segment, `**` any rest, `/x/**` also `/x`).
pub(super) fn matches(pattern: &str, path: &str) -> bool {
    let mut pat = pattern.split('/').filter(|s| !s.is_empty());
    let mut segs = path.split('/').filter(|s| !s.is_empty());
    loop {
        match (pat.next(), segs.next()) {
            (Some("**"), _) => return true,
            (Some("*"), Some(_)) => {}
            (Some(p), Some(s)) if p == s => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The admin-only rule a route falls under, if any. `path` is without the v3 prefix.
pub fn route_rule(method: &Method, path: &str) -> Option<&'static str> {
    ADMIN_ONLY.iter().find_map(|(m, pattern, rule)| {
        // `/x/**` covers `/x` itself too.
        ((*m == "*" || *m == method.as_str()) && matches(pattern, path)).then_some(*rule)
    })
}

/// The admin-only rule of an action, if any: `path` is `/<collection>/{id}/action`.
pub fn action_rule(path: &str, action: &str) -> Option<&'static str> {
    let segs: Vec<_> = path.split('/').filter(|s| !s.is_empty()).collect();
    let [collection, _, "action"] = segs.as_slice() else {
        return None;
    };
    ADMIN_ACTIONS
        .iter()
        .find(|(c, a, _)| c == collection && *a == action)
        .map(|(_, _, rule)| *rule)
}

/// A URL naming a project must name the caller's own (Cinder answers 400 "Malformed request
/// url"); Kiln lets admins act in any project through its URL, as its handlers expect.
pub fn check_url_project(ctx: &RequestContext, url_project: Option<&str>) -> Result<(), ApiError> {
    match url_project {
        Some(p) if !ctx.is_admin && ctx.project_id.as_deref() != Some(p) => {
            Err(ApiError::BadRequest("Malformed request url".into()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(admin: bool) -> RequestContext {
        RequestContext {
            request_id: "req-1".into(),
            user_id: Some("u".into()),
            project_id: Some("p1".into()),
            roles: vec![if admin { "admin" } else { "member" }.into()],
            is_admin: admin,
        }
    }

    #[test]
    fn admin_only_routes_follow_cinders_policy() {
        let get = Method::GET;
        assert_eq!(
            route_rule(&get, "/os-services"),
            Some("volume_extension:services:index")
        );
        assert!(route_rule(&Method::PUT, "/os-services/freeze").is_some());
        assert!(route_rule(&get, "/os-hosts").is_some());
        assert!(route_rule(&get, "/os-hosts/node1").is_some());
        assert!(route_rule(&get, "/capabilities/node1@file").is_some());
        assert!(route_rule(&get, "/scheduler-stats/get_pools").is_some());
        assert!(route_rule(&Method::POST, "/types").is_some());
        assert!(route_rule(&get, "/types").is_none(), "users list types");
        assert!(route_rule(&get, "/types/t1").is_none());
        assert!(route_rule(&get, "/types/t1/extra_specs").is_none());
        assert!(route_rule(&Method::POST, "/types/t1/extra_specs").is_some());
        assert!(route_rule(&Method::DELETE, "/types/t1/extra_specs/k").is_some());
        assert!(route_rule(&get, "/qos-specs").is_some());
        assert!(route_rule(&get, "/qos-specs/q/associations").is_some());
        assert!(route_rule(&get, "/os-quota-sets/p1").is_none());
        assert!(route_rule(&Method::PUT, "/os-quota-sets/p1").is_some());
        assert!(route_rule(&get, "/os-quota-sets/p1/defaults").is_none());
        assert!(route_rule(&get, "/kiln-chains").is_some());
        assert!(route_rule(&Method::POST, "/kiln-chains/3/activate").is_some());
        assert!(route_rule(&get, "/kiln-backends/node1@file/driver").is_some());
        assert!(route_rule(&Method::POST, "/volumes").is_none());
        assert!(route_rule(&get, "/volumes/detail").is_none());
        assert!(route_rule(&get, "/limits").is_none());
    }

    #[test]
    fn admin_actions_are_found_by_collection_and_name() {
        assert!(action_rule("/volumes/v1/action", "os-reset_status").is_some());
        assert!(action_rule("/volumes/v1/action", "os-force_delete").is_some());
        assert!(action_rule("/volumes/v1/action", "os-extend").is_none());
        assert!(action_rule("/snapshots/s1/action", "os-reset_status").is_some());
        assert!(action_rule("/types/t1/action", "addProjectAccess").is_some());
        assert!(action_rule("/volumes/v1", "os-reset_status").is_none());
    }

    #[test]
    fn url_projects_must_be_the_callers_own_unless_admin() {
        assert!(check_url_project(&ctx(false), Some("p1")).is_ok());
        assert!(check_url_project(&ctx(false), None).is_ok());
        let err = check_url_project(&ctx(false), Some("p2")).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest(m) if m == "Malformed request url"));
        assert!(check_url_project(&ctx(true), Some("p2")).is_ok());
        assert!(authorize_admin(&ctx(false), "x").is_err());
        assert!(authorize_admin(&ctx(true), "x").is_ok());
    }
}
