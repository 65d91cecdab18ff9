//! The volume listing's pages, which the database builds as one JSON document per page
//! (`kiln::db::volume_pages`), agree with the volumes read one by one: every field,
//! metadata, flags (0/1 on SQLite, booleans on PostgreSQL), sort order and markers.

use std::collections::BTreeMap;

use kiln::db::listing::{ListQuery, SortDir};
use kiln::db::volumes::NewVolume;
use kiln::db::Db;

pub async fn volume_pages(db: &Db) {
    let project = format!("pages-{}", uuid::Uuid::new_v4().simple());
    let mut ids = Vec::new();
    for i in 0..7i64 {
        let id = uuid::Uuid::new_v4().to_string();
        let metadata: BTreeMap<String, String> = (0..i % 3)
            .map(|k| (format!("k{k}"), format!("v{i}-{k} \"quoted\" ünïcode")))
            .collect();
        db.volume_create(&NewVolume {
            id: id.clone(),
            project_id: project.clone(),
            user_id: "u".into(),
            // Two volumes share a size and one has no name, so ties and NULLs are ordered too.
            display_name: (i != 3).then(|| format!("vol-{}", 6 - i)),
            display_description: Some("line\nbreak".into()),
            size: 1 + (i % 4),
            availability_zone: "nova".into(),
            multiattach: i % 2 == 0,
            metadata,
            ..Default::default()
        })
        .await
        .unwrap();
        if i % 3 == 0 {
            db.volume_set_bootable(&id, true).await.unwrap();
        }
        ids.push(id);
    }
    let listed = |sort: Vec<(&str, SortDir)>, limit: Option<i64>, marker: Option<String>| {
        let q = ListQuery {
            project_id: Some(project.clone()),
            sort: sort.into_iter().map(|(k, d)| (k.to_string(), d)).collect(),
            limit,
            marker,
            ..Default::default()
        };
        async move { db.volume_list(&q).await.unwrap() }
    };

    // Every field as the single-volume read gives it.
    let all = listed(vec![], None, None).await;
    assert_eq!(all.len(), ids.len());
    for v in &all {
        assert_eq!(v, &db.volume_get(&v.id).await.unwrap(), "volume {}", v.id);
    }
    // Newest first by default (created in order, so ids reversed unless timestamps tie).
    let created: Vec<&str> = all.iter().map(|v| v.created_at.as_str()).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");

    // Each sort key orders the page as sorting the full rows would.
    for (key, dir) in [
        ("size", SortDir::Asc),
        ("size", SortDir::Desc),
        ("name", SortDir::Asc),
        ("bootable", SortDir::Desc),
    ] {
        let page = listed(vec![(key, dir)], None, None).await;
        let mut expected = all.clone();
        expected.sort_by(|a, b| {
            let ord = match key {
                "size" => a.size.cmp(&b.size),
                "name" => a
                    .display_name
                    .clone()
                    .unwrap_or_default()
                    .cmp(&b.display_name.clone().unwrap_or_default()),
                _ => a.bootable.cmp(&b.bootable),
            }
            .then_with(|| a.id.cmp(&b.id));
            if dir == SortDir::Asc {
                ord
            } else {
                ord.reverse()
            }
        });
        let got: Vec<&str> = page.iter().map(|v| v.id.as_str()).collect();
        let want: Vec<&str> = expected.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(got, want, "sort {key} {dir:?}");
    }

    // Pages of 3 by size walk the whole listing without overlap.
    let mut walked = Vec::new();
    let mut marker = None;
    loop {
        let page = listed(vec![("size", SortDir::Asc)], Some(3), marker.clone()).await;
        walked.extend(page.iter().map(|v| v.id.clone()));
        if page.len() < 3 {
            break;
        }
        marker = page.last().map(|v| v.id.clone());
    }
    let whole: Vec<String> = listed(vec![("size", SortDir::Asc)], None, None)
        .await
        .into_iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(walked, whole);

    // An empty page is an empty list, not an error.
    let none = db
        .volume_list(&ListQuery {
            project_id: Some("nobody".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}
