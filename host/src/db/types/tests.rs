//! Unit tests of `db::types` on a migrated SQLite database.
use super::*;
use crate::db::testing;

fn specs(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn default_type_exists_resolves_and_cannot_be_deleted_or_renamed() {
    let (db, _dir) = testing::sqlite().await;
    let d = db.volume_type_resolve("p", None).await.unwrap();
    assert_eq!(d.name, DEFAULT_TYPE_NAME);
    assert!(d.is_public);
    assert!(matches!(
        db.volume_type_delete(&d.id).await,
        Err(TypeError::DeleteDefault)
    ));
    assert!(matches!(
        db.volume_type_update(&d.id, Some("other"), None, None)
            .await,
        Err(TypeError::RenameDefault)
    ));
    // The description may change.
    let d2 = db
        .volume_type_update(&d.id, None, Some("house type"), None)
        .await
        .unwrap();
    assert_eq!(d2.description.as_deref(), Some("house type"));
}

#[tokio::test]
async fn create_resolve_by_name_or_id_with_specs_and_unique_live_names() {
    let (db, _dir) = testing::sqlite().await;
    let t = db
        .volume_type_create(
            "gold",
            Some("fast"),
            true,
            &specs(&[("volume_backend_name", "lvm")]),
        )
        .await
        .unwrap();
    let by_name = db.volume_type_resolve("p", Some("gold")).await.unwrap();
    let by_id = db.volume_type_resolve("p", Some(&t.id)).await.unwrap();
    assert_eq!(by_name, by_id);
    assert_eq!(by_id.extra_specs["volume_backend_name"], "lvm");
    assert!(matches!(
        db.volume_type_create("gold", None, true, &BTreeMap::new()).await,
        Err(TypeError::Exists(n)) if n == "gold"
    ));
    let missing = db.volume_type_resolve("p", Some("nope")).await.unwrap_err();
    assert!(matches!(missing, DbError::NotFound(_)), "{missing}");
    // After deletion the name is free again, and the old id is gone.
    db.volume_type_delete(&t.id).await.unwrap();
    assert!(db.volume_type_get(&t.id).await.is_err());
    db.volume_type_create("gold", None, true, &BTreeMap::new())
        .await
        .unwrap();
    // Renaming onto a live name conflicts.
    let s = db
        .volume_type_create("silver", None, true, &BTreeMap::new())
        .await
        .unwrap();
    assert!(matches!(
        db.volume_type_update(&s.id, Some("gold"), None, None).await,
        Err(TypeError::Exists(_))
    ));
}

#[tokio::test]
async fn type_in_use_cannot_be_deleted_nor_its_specs_changed() {
    let (db, _dir) = testing::sqlite().await;
    let t = db
        .volume_type_create("used", None, true, &BTreeMap::new())
        .await
        .unwrap();
    db.volume_type_extra_specs_update(&t.id, &specs(&[("a", "1"), ("b", "2")]))
        .await
        .unwrap();
    db.volume_type_extra_specs_update(&t.id, &specs(&[("a", "3")]))
        .await
        .unwrap();
    assert_eq!(
        db.volume_type_extra_specs(&t.id).await.unwrap(),
        specs(&[("a", "3"), ("b", "2")])
    );
    db.volume_type_extra_spec_delete(&t.id, "b").await.unwrap();
    assert!(matches!(
        db.volume_type_extra_spec_delete(&t.id, "b").await,
        Err(TypeError::SpecNotFound { .. })
    ));
    sqlx::query("INSERT INTO volumes (id, project_id, user_id, size, status, availability_zone, volume_type_id, created_at) VALUES ('v1', 'p', 'u', 1, 'available', 'nova', $1, $2)")
        .bind(&t.id).bind(now())
        .execute(db.writer()).await.unwrap();
    assert!(matches!(
        db.volume_type_delete(&t.id).await,
        Err(TypeError::InUse)
    ));
    assert!(matches!(
        db.volume_type_extra_specs_update(&t.id, &specs(&[("c", "1")]))
            .await,
        Err(TypeError::SpecsInUse)
    ));
    assert!(matches!(
        db.volume_type_extra_spec_delete(&t.id, "a").await,
        Err(TypeError::SpecsInUse)
    ));
    sqlx::query("UPDATE volumes SET deleted = $1 WHERE id = 'v1'")
        .bind(true)
        .execute(db.writer())
        .await
        .unwrap();
    db.volume_type_delete(&t.id).await.unwrap();
}

#[tokio::test]
async fn private_types_are_listed_only_for_granted_projects() {
    let (db, _dir) = testing::sqlite().await;
    let p = db
        .volume_type_create("private", None, false, &BTreeMap::new())
        .await
        .unwrap();
    let names = |v: Vec<VolumeTypeRow>| v.into_iter().map(|t| t.name).collect::<Vec<_>>();
    let visible = |project| TypeFilter {
        is_public: Some(true),
        project: Some(project),
    };
    assert_eq!(
        names(db.volume_type_list(visible("p1")).await.unwrap()),
        [DEFAULT_TYPE_NAME]
    );
    db.volume_type_access_add(&p.id, "p1").await.unwrap();
    assert!(matches!(
        db.volume_type_access_add(&p.id, "p1").await,
        Err(TypeError::AccessExists { .. })
    ));
    assert_eq!(
        names(db.volume_type_list(visible("p1")).await.unwrap()),
        [DEFAULT_TYPE_NAME, "private"]
    );
    assert_eq!(
        names(db.volume_type_list(visible("p2")).await.unwrap()),
        [DEFAULT_TYPE_NAME]
    );
    assert_eq!(
        names(db.volume_type_list(TypeFilter::default()).await.unwrap()).len(),
        2
    );
    assert!(db.volume_type_accessible(&p, "p1").await.unwrap());
    assert!(!db.volume_type_accessible(&p, "p2").await.unwrap());
    db.volume_type_access_remove(&p.id, "p1").await.unwrap();
    assert!(matches!(
        db.volume_type_access_remove(&p.id, "p1").await,
        Err(TypeError::AccessNotFound { .. })
    ));
    let d = db.volume_type_resolve("p", None).await.unwrap();
    assert!(matches!(
        db.volume_type_access_add(&d.id, "p1").await,
        Err(TypeError::PublicAccess)
    ));
}
