//! Unit tests of `db::quotas` on a migrated SQLite database.
use super::*;
use crate::db::testing;

async fn usage(db: &Db, p: &str, r: &str) -> (i64, i64) {
    let u = db.quota_get_with_usage(p).await.unwrap()[r];
    (u.in_use, u.reserved)
}

#[tokio::test]
async fn defaults_classes_and_project_limits_layer() {
    let (db, _dir) = testing::sqlite().await;
    let d = db.quota_defaults().await.unwrap();
    // The built-in defaults plus the per-type resources of the one type, __DEFAULT__.
    let mut want = builtin();
    for r in PER_TYPE {
        want.insert(format!("{r}___DEFAULT__"), -1);
    }
    assert_eq!(d, want);
    assert_eq!(
        (d["volumes"], d["gigabytes"], d[PER_VOLUME], d["groups"]),
        (10, 1000, -1, 10)
    );
    db.quota_class_update(DEFAULT_CLASS, &[("volumes".to_string(), 20)].into())
        .await
        .unwrap();
    assert_eq!(
        db.quota_get("p").await.unwrap()["volumes"],
        20,
        "the default class moves defaults"
    );
    db.quota_class_update("gold", &[("gigabytes".to_string(), 5000)].into())
        .await
        .unwrap();
    let gold = db.quota_class_get("gold").await.unwrap();
    assert_eq!((gold["gigabytes"], gold["volumes"]), (5000, 20));
    db.quota_update("p", &[("volumes".to_string(), 3)].into())
        .await
        .unwrap();
    db.quota_update("p", &[("volumes".to_string(), 4)].into())
        .await
        .unwrap();
    assert_eq!(db.quota_get("p").await.unwrap()["volumes"], 4);
    assert_eq!(db.quota_get("q").await.unwrap()["volumes"], 20);
    db.quota_destroy("p").await.unwrap();
    assert_eq!(db.quota_get("p").await.unwrap()["volumes"], 20);
}

#[tokio::test]
async fn reserve_commit_rollback_release() {
    let (db, _dir) = testing::sqlite().await;
    db.quota_update("p", &[("gigabytes".to_string(), 1000)].into())
        .await
        .unwrap();
    let r = db
        .quota_reserve("p", &[("volumes", 1), ("gigabytes", 998)])
        .await
        .unwrap();
    assert_eq!(usage(&db, "p", "gigabytes").await, (0, 998));
    db.quota_commit(&r).await.unwrap();
    db.quota_commit(&r).await.unwrap(); // idempotent
    db.quota_rollback(&r).await.unwrap(); // too late: nothing left to roll back
    assert_eq!(usage(&db, "p", "gigabytes").await, (998, 0));
    assert_eq!(usage(&db, "p", "volumes").await, (1, 0));

    let err = db
        .quota_reserve("p", &[("volumes", 1), ("gigabytes", 5)])
        .await
        .unwrap_err();
    assert_eq!(err.cinder_exception(), "VolumeSizeExceedsAvailableQuota");
    assert_eq!(
        err.to_string(),
        "Requested volume or snapshot exceeds allowed gigabytes quota. Requested 5G, quota is 1000G and 998G has been consumed."
    );
    assert!(
        matches!(err, QuotaError::OverLimit { ref resource, requested: 5, used: 998, limit: 1000 } if resource == "gigabytes")
    );
    assert_eq!(
        usage(&db, "p", "volumes").await,
        (1, 0),
        "a refused reservation holds nothing"
    );

    let r2 = db
        .quota_reserve("p", &[("volumes", 1), ("gigabytes", 2)])
        .await
        .unwrap();
    assert_eq!(usage(&db, "p", "gigabytes").await, (998, 2));
    db.quota_rollback(&r2).await.unwrap();
    assert_eq!(usage(&db, "p", "gigabytes").await, (998, 0));

    db.quota_release("p", &[("volumes", 1), ("gigabytes", 998)])
        .await
        .unwrap();
    db.quota_release("p", &[("volumes", 1)]).await.unwrap();
    assert_eq!(usage(&db, "p", "volumes").await, (0, 0), "never below zero");
    assert!(matches!(
        db.quota_reserve("p", &[("bananas", 1)]).await,
        Err(QuotaError::UnknownResource(_))
    ));
}

#[tokio::test]
async fn count_limits_unlimited_and_per_volume() {
    let (db, _dir) = testing::sqlite().await;
    db.quota_update(
        "p",
        &[("volumes".to_string(), 1), (PER_VOLUME.to_string(), 10)].into(),
    )
    .await
    .unwrap();
    let r = db
        .quota_reserve("p", &[("volumes", 1), (PER_VOLUME, 10)])
        .await
        .unwrap();
    let err = db.quota_reserve("p", &[("volumes", 1)]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Maximum number of volumes allowed (1) exceeded for quota 'volumes'."
    );
    let err = db
        .quota_reserve("p", &[(PER_VOLUME, 11)])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Requested volume size 11G is larger than maximum allowed limit 10G."
    );
    db.quota_rollback(&r).await.unwrap();
    db.quota_update("p", &[("volumes".to_string(), -1)].into())
        .await
        .unwrap();
    for _ in 0..20 {
        let r = db.quota_reserve("p", &[("volumes", 1)]).await.unwrap();
        db.quota_commit(&r).await.unwrap();
    }
    assert_eq!(usage(&db, "p", "volumes").await, (20, 0));
    // A negative delta (shrinking) is never refused and lowers in_use at commit.
    db.quota_update("p", &[("volumes".to_string(), 5)].into())
        .await
        .unwrap();
    let r = db.quota_reserve("p", &[("volumes", -2)]).await.unwrap();
    db.quota_commit(&r).await.unwrap();
    assert_eq!(usage(&db, "p", "volumes").await, (18, 0));
}

#[tokio::test]
async fn expired_reservations_are_given_back() {
    let (db, _dir) = testing::sqlite().await;
    db.quota_update("p", &[("volumes".to_string(), 1)].into())
        .await
        .unwrap();
    db.quota_reserve("p", &[("volumes", 1)]).await.unwrap();
    assert!(db.quota_reserve("p", &[("volumes", 1)]).await.is_err());
    sqlx::query("UPDATE reservations SET expire = '2000-01-01T00:00:00.000000'")
        .execute(db.writer())
        .await
        .unwrap();
    let r = db.quota_reserve("p", &[("volumes", 1)]).await.unwrap();
    assert_eq!(usage(&db, "p", "volumes").await, (0, 1));
    db.quota_commit(&r).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_never_pass_the_limit() {
    let (db, _dir) = testing::sqlite().await;
    db.quota_update("p", &[("volumes".to_string(), 7)].into())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            db.quota_reserve("p", &[("volumes", 1)]).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(QuotaError::OverLimit { .. }) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(ok, 7);
    assert_eq!(usage(&db, "p", "volumes").await, (0, 7));
}

/// Cinder's per-type quotas: a volume of type `gold` counts against `volumes_gold` and
/// `gigabytes_gold` beside the project-wide resources, and the type's limits refuse it.
#[tokio::test]
async fn per_type_limits_are_enforced_beside_the_project_wide_ones() {
    let (db, _dir) = testing::sqlite().await;
    db.volume_type_create("gold", None, true, &Default::default())
        .await
        .unwrap();
    db.quota_update("p", &[("volumes_gold".to_string(), 1)].into())
        .await
        .unwrap();
    let gold = |n: i64| with_type(&[("volumes", 1), ("gigabytes", n)], Some("gold"));
    let r = db.quota_reserve("p", &gold(2)).await.unwrap();
    db.quota_commit(&r).await.unwrap();
    assert_eq!(usage(&db, "p", "volumes_gold").await, (1, 0));
    assert_eq!(usage(&db, "p", "gigabytes_gold").await, (2, 0));
    assert_eq!(usage(&db, "p", "volumes").await, (1, 0));

    let err = db.quota_reserve("p", &gold(1)).await.unwrap_err();
    assert_eq!(err.cinder_exception(), "VolumeLimitExceeded");
    assert_eq!(
        err.to_string(),
        "Maximum number of volumes allowed (1) exceeded for quota 'volumes_gold'."
    );
    assert_eq!(
        usage(&db, "p", "volumes").await,
        (1, 0),
        "the project-wide count is untouched by a refusal"
    );
    // Another type (and the default one) is not limited by gold's quota.
    let other = with_type(&[("volumes", 1)], Some("__DEFAULT__"));
    db.quota_reserve("p", &other).await.unwrap();

    // A limit from the default quota class applies to every project.
    db.quota_class_update(DEFAULT_CLASS, &[("gigabytes_gold".to_string(), 3)].into())
        .await
        .unwrap();
    let err = db
        .quota_reserve("q", &with_type(&[("gigabytes", 4)], Some("gold")))
        .await
        .unwrap_err();
    assert_eq!(err.cinder_exception(), "VolumeSizeExceedsAvailableQuota");
    assert_eq!(
        err.to_string(),
        "Requested volume or snapshot exceeds allowed gigabytes_gold quota. Requested 4G, quota is 3G and 0G has been consumed."
    );

    // Releasing gives the type's usage back too.
    db.quota_release("p", &gold(2)).await.unwrap();
    assert_eq!(usage(&db, "p", "volumes_gold").await, (0, 0));
    assert_eq!(usage(&db, "p", "gigabytes_gold").await, (0, 0));
    for bad in ["volumes_", "bananas_gold"] {
        assert!(
            matches!(
                db.quota_reserve("p", &[(bad, 1)]).await,
                Err(QuotaError::UnknownResource(_))
            ),
            "{bad} is not a resource"
        );
    }
}

#[tokio::test]
async fn a_resource_named_twice_is_charged_once_with_the_sum() {
    let (db, _dir) = testing::sqlite().await;
    db.quota_update("p", &[("snapshots".to_string(), 3)].into())
        .await
        .unwrap();
    // A group snapshot of two volumes: one charge per member, merged.
    let mut charge = with_type(&[("snapshots", 1), ("gigabytes", 1)], Some("a"));
    charge.extend(with_type(&[("snapshots", 1), ("gigabytes", 2)], Some("b")));
    let r = db.quota_reserve("p", &charge).await.unwrap();
    assert_eq!(usage(&db, "p", "snapshots").await, (0, 2));
    assert_eq!(usage(&db, "p", "gigabytes").await, (0, 3));
    assert_eq!(
        r.items.len(),
        6,
        "snapshots, gigabytes and both types' twins"
    );
    charge.extend(with_type(&[("snapshots", 2)], None));
    assert!(
        db.quota_reserve("p", &charge).await.is_err(),
        "2 held + 4 more passes the limit of 3"
    );
}

/// The type's resources follow it: a rename renames limits and usage, a retype moves the
/// volume's count and size between the types.
#[tokio::test]
async fn per_type_usage_follows_renames_and_retypes() {
    let (db, _dir) = testing::sqlite().await;
    let gold = db
        .volume_type_create("gold", None, true, &Default::default())
        .await
        .unwrap();
    let silver = db
        .volume_type_create("silver", None, true, &Default::default())
        .await
        .unwrap();
    db.quota_update("p1", &[("volumes_gold".to_string(), 5)].into())
        .await
        .unwrap();
    let v = crate::db::volumes::NewVolume {
        volume_type_id: Some(gold.id.clone()),
        ..crate::db::volumes::tests::new_volume("v", 3)
    };
    db.volume_create_charged(
        &v,
        &with_type(&[("volumes", 1), ("gigabytes", 3)], Some("gold")),
    )
    .await
    .unwrap();
    assert_eq!(usage(&db, "p1", "gigabytes_gold").await, (3, 0));

    // A deleted type left limits under the name gold is about to take: they are not gold's.
    let old = db
        .volume_type_create("platinum", None, true, &Default::default())
        .await
        .unwrap();
    db.quota_update("p1", &[("volumes_platinum".to_string(), 9)].into())
        .await
        .unwrap();
    db.volume_type_delete(&old.id).await.unwrap();
    db.volume_type_update(&gold.id, Some("platinum"), None, None)
        .await
        .unwrap();
    let q = db.quota_get_with_usage("p1").await.unwrap();
    assert!(!q.contains_key("volumes_gold"), "{q:?}");
    assert_eq!(
        (q["volumes_platinum"].limit, q["volumes_platinum"].in_use),
        (5, 1)
    );
    assert_eq!(q["gigabytes_platinum"].in_use, 3);

    db.volume_retyped("v", &silver.id, "available")
        .await
        .unwrap();
    assert_eq!(usage(&db, "p1", "volumes_platinum").await, (0, 0));
    assert_eq!(usage(&db, "p1", "gigabytes_platinum").await, (0, 0));
    assert_eq!(usage(&db, "p1", "volumes_silver").await, (1, 0));
    assert_eq!(usage(&db, "p1", "gigabytes_silver").await, (3, 0));
    assert_eq!(
        usage(&db, "p1", "gigabytes").await,
        (3, 0),
        "a retype leaves the project-wide usage alone"
    );
}
