//! Cinder's volume views: the summary (id, name, links) and the detailed view, with the
//! admin-only host and migration attributes, and the self / bookmark links.
//!
//! The views are typed structs serialised straight to the response: a listing of 1000
//! volumes builds no intermediate `serde_json::Value` tree (that tree, a sorted map per
//! volume, was most of the listing's cost). Fields added by later microversions are
//! `Option<Option<_>>`: absent below their microversion, `null` or a value from it on.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::Value;

use crate::api::Microversion;
use crate::db::volumes::VolumeRow;

/// `http://HOST/v3/PROJECT`, the prefix of a volume's links.
pub fn base_url(headers: &HeaderMap, project: &str) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}/v3/{project}")
}

/// Who is looking, and at which microversion: what a view shows.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// `http://HOST/v3/PROJECT`.
    pub base: String,
    pub admin: bool,
    pub version: Microversion,
}

/// A field that a microversion (or the admin role) adds: skipped when `None`.
type Since<T> = Option<Option<T>>;

fn since<T>(shown: bool, value: Option<T>) -> Since<T> {
    shown.then_some(value)
}

/// The self and bookmark links of a volume.
#[derive(Debug, Serialize)]
pub struct Link {
    rel: &'static str,
    href: String,
}

fn links(id: &str, base: &str) -> [Link; 2] {
    let href = format!("{base}/volumes/{id}");
    let bookmark = href.replacen("/v3/", "/", 1);
    [
        Link { rel: "self", href },
        Link {
            rel: "bookmark",
            href: bookmark,
        },
    ]
}

/// Cinder's detailed volume view at a viewer's microversion.
#[derive(Debug, Serialize)]
pub struct DetailView<'a> {
    id: &'a str,
    name: Option<&'a str>,
    description: Option<&'a str>,
    size: i64,
    status: &'a str,
    availability_zone: &'a str,
    created_at: &'a str,
    updated_at: Option<&'a str>,
    volume_type: Option<&'a str>,
    snapshot_id: Option<&'a str>,
    source_volid: Option<&'a str>,
    metadata: &'a BTreeMap<String, String>,
    user_id: &'a str,
    bootable: &'static str,
    encrypted: bool,
    multiattach: bool,
    replication_status: Option<&'a str>,
    consistencygroup_id: Option<&'a str>,
    attachments: Value,
    #[serde(rename = "os-vol-tenant-attr:tenant_id")]
    tenant_id: &'a str,
    links: [Link; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    migration_status: Since<&'a str>,
    #[serde(
        rename = "os-vol-host-attr:host",
        skip_serializing_if = "Option::is_none"
    )]
    host: Since<&'a str>,
    #[serde(
        rename = "os-vol-mig-status-attr:migstat",
        skip_serializing_if = "Option::is_none"
    )]
    migstat: Since<&'a str>,
    #[serde(
        rename = "os-vol-mig-status-attr:name_id",
        skip_serializing_if = "Option::is_none"
    )]
    name_id: Since<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_id: Since<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_id: Since<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shared_targets: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_uuid: Since<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster_name: Since<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    volume_type_id: Since<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumes_quota: Option<bool>,
}

impl<'a> DetailView<'a> {
    /// The view of `v` for `viewer`; `attachments` is the volume's attachment list view.
    pub fn new(v: &'a VolumeRow, viewer: &Viewer, attachments: Value) -> DetailView<'a> {
        let (admin, mv) = (viewer.admin, viewer.version);
        let migration = v.migration_status.as_deref();
        DetailView {
            id: &v.id,
            name: v.display_name.as_deref(),
            description: v.display_description.as_deref(),
            size: v.size,
            status: &v.status,
            availability_zone: &v.availability_zone,
            created_at: &v.created_at,
            updated_at: v.updated_at.as_deref(),
            volume_type: v
                .volume_type_name
                .as_deref()
                .or(v.volume_type_id.as_deref()),
            snapshot_id: v.snapshot_id.as_deref(),
            source_volid: v.source_volid.as_deref(),
            metadata: &v.metadata,
            user_id: &v.user_id,
            bootable: if v.bootable { "true" } else { "false" },
            encrypted: v.encrypted,
            multiattach: v.multiattach,
            replication_status: None,
            consistencygroup_id: None,
            attachments,
            tenant_id: &v.project_id,
            links: links(&v.id, &viewer.base),
            migration_status: since(admin, migration),
            host: since(admin, v.host.as_deref()),
            migstat: since(admin, migration),
            name_id: since(admin, v.name_id.as_deref()),
            // Fields added by later microversions (Cinder's v3 volume view).
            group_id: since(mv.at_least(13), v.group_id.as_deref()),
            provider_id: since(mv.at_least(21) && admin, None),
            shared_targets: mv.at_least(48).then_some(false),
            service_uuid: since(mv.at_least(48), None),
            cluster_name: since(mv.at_least(61) && admin, None),
            volume_type_id: since(mv.at_least(63), v.volume_type_id.as_deref()),
            consumes_quota: mv.at_least(65).then_some(v.use_quota),
        }
    }

    /// Cinder's create answer: the detail view without the extension attributes (tenant,
    /// host, migration), which only show and list add; Tempest's schema refuses them there.
    pub fn without_extension_attributes(self) -> Value {
        let mut view = serde_json::to_value(self).expect("a volume view serialises");
        if let Some(m) = view.as_object_mut() {
            m.retain(|k, _| !k.starts_with("os-vol-"));
        }
        view
    }
}

/// Cinder's detailed volume view as a JSON value.
pub fn detail_view(v: &VolumeRow, viewer: &Viewer, attachments: Value) -> Value {
    serde_json::to_value(DetailView::new(v, viewer, attachments)).expect("a volume view serialises")
}

/// The summary view of `GET /volumes`.
#[derive(Debug, Serialize)]
pub struct SummaryView<'a> {
    id: &'a str,
    name: Option<&'a str>,
    links: [Link; 2],
}

impl<'a> SummaryView<'a> {
    pub fn new(v: &'a VolumeRow, base: &str) -> SummaryView<'a> {
        SummaryView {
            id: &v.id,
            name: v.display_name.as_deref(),
            links: links(&v.id, base),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> VolumeRow {
        VolumeRow {
            id: "3f1b3c3e-0000-4000-8000-000000000001".into(),
            project_id: "demo".into(),
            user_id: "alice".into(),
            display_name: Some("v".into()),
            display_description: None,
            size: 2,
            status: "available".into(),
            attach_status: "detached".into(),
            migration_status: None,
            previous_status: None,
            name_id: None,
            availability_zone: "nova".into(),
            host: Some("h@file#file".into()),
            volume_type_id: Some("t-id".into()),
            volume_type_name: Some("gold".into()),
            snapshot_id: None,
            source_volid: None,
            group_id: None,
            bootable: false,
            multiattach: false,
            encrypted: false,
            provider_location: None,
            provider_auth: None,
            use_quota: true,
            created_at: "2026-11-22T00:00:00.000000".into(),
            updated_at: None,
            launched_at: None,
            metadata: BTreeMap::from([("k".to_string(), "v".to_string())]),
        }
    }

    fn viewer(admin: bool, minor: u32) -> Viewer {
        Viewer {
            base: "http://h/v3/demo".into(),
            admin,
            version: Microversion(crate::api::microversion::ApiVersion::new(3, minor)),
        }
    }

    #[test]
    fn microversion_fields_appear_from_their_version_on() {
        let v = row();
        let old = detail_view(&v, &viewer(false, 0), Value::Array(vec![]));
        for absent in [
            "group_id",
            "shared_targets",
            "volume_type_id",
            "consumes_quota",
        ] {
            assert!(old.get(absent).is_none(), "{absent} shown at 3.0: {old}");
        }
        let new = detail_view(&v, &viewer(false, 65), Value::Array(vec![]));
        assert_eq!(new["group_id"], Value::Null);
        assert_eq!(new["shared_targets"], Value::Bool(false));
        assert_eq!(new["volume_type_id"], "t-id");
        assert_eq!(new["consumes_quota"], Value::Bool(true));
        assert_eq!(new["volume_type"], "gold");
        assert_eq!(new["metadata"]["k"], "v");
        assert_eq!(new["bootable"], "false");
        assert_eq!(new["replication_status"], Value::Null);
    }

    #[test]
    fn only_admins_see_host_and_migration_attributes() {
        let v = row();
        let user = detail_view(&v, &viewer(false, 65), Value::Array(vec![]));
        assert!(user.get("os-vol-host-attr:host").is_none());
        assert!(user.get("migration_status").is_none());
        assert!(user.get("provider_id").is_none());
        let admin = detail_view(&v, &viewer(true, 65), Value::Array(vec![]));
        assert_eq!(admin["os-vol-host-attr:host"], "h@file#file");
        assert_eq!(admin["migration_status"], Value::Null);
        assert_eq!(admin["provider_id"], Value::Null);
        assert_eq!(admin["os-vol-tenant-attr:tenant_id"], "demo");
    }

    #[test]
    fn links_point_at_the_volume_with_and_without_the_version() {
        let v = row();
        let s = serde_json::to_value(SummaryView::new(&v, "http://h/v3/demo")).unwrap();
        assert_eq!(
            s["links"][0]["href"],
            format!("http://h/v3/demo/volumes/{}", v.id)
        );
        assert_eq!(
            s["links"][1]["href"],
            format!("http://h/demo/volumes/{}", v.id)
        );
        assert_eq!(s["links"][1]["rel"], "bookmark");
    }

    #[test]
    fn the_create_answer_has_no_extension_attributes() {
        let v = row();
        let view = DetailView::new(&v, &viewer(true, 65), Value::Array(vec![]))
            .without_extension_attributes();
        assert!(view
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("os-vol-")));
        assert_eq!(view["migration_status"], Value::Null);
    }
}
