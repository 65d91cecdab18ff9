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
