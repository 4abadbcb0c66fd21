use holdfast_domain::directory::{self, MAX_PROPERTIES_PER_CALL};
use holdfast_domain::entities::Role;
use holdfast_domain::{DomainError, ProjectId};

use crate::helpers::World;

#[tokio::test]
async fn properties_are_added_all_or_none() {
    let w = World::new().await;
    w.plots(2).await; // A-00000, A-00001
    let codes: Vec<String> = ["B-1", "A-00001", "B-2", "B-1"]
        .iter()
        .map(|s| s.to_string())
        .collect();

    let err = directory::add_properties(&w.conn, &w.manager, w.project, &codes)
        .await
        .expect_err("dup");
    let DomainError::InvalidInput(msg) = err else {
        panic!("{err:?}")
    };
    assert!(msg.contains("\"B-1\""), "{msg}");

    let err = directory::add_properties(&w.conn, &w.manager, w.project, &codes[..3])
        .await
        .expect_err("existing");
    let DomainError::InvalidInput(msg) = err else {
        panic!("{err:?}")
    };
    assert!(msg.contains("\"A-00001\""), "{msg}");
    assert_eq!(w.counts().await.total, 2, "nothing added");

    let added = directory::add_properties(
        &w.conn,
        &w.manager,
        w.project,
        &["B-2".into(), "B-1".into()],
    )
    .await
    .expect("add");
    assert_eq!(
        added.iter().map(|p| p.code.as_str()).collect::<Vec<_>>(),
        ["B-2", "B-1"]
    );
    assert_eq!(w.counts().await.total, 4);
}

#[tokio::test]
async fn bad_codes_and_too_many_codes_are_refused() {
    let w = World::new().await;
    for codes in [
        vec![],
        vec![String::new()],
        vec![" A-1".to_owned()],
        vec!["x".repeat(65)],
        vec!["A\u{0}1".to_owned()],
        (0..=MAX_PROPERTIES_PER_CALL)
            .map(|i| format!("C-{i}"))
            .collect(),
    ] {
        let err = directory::add_properties(&w.conn, &w.manager, w.project, &codes)
            .await
            .expect_err("bad");
        assert!(matches!(err, DomainError::InvalidInput(_)), "{err:?}");
    }
    assert_eq!(w.counts().await.total, 0);
}

#[tokio::test]
async fn hostile_text_is_stored_verbatim() {
    let w = World::new().await;
    let codes = vec![
        "'; DROP TABLE property; --".to_owned(),
        "<script>alert(1)</script>".to_owned(),
    ];
    let added = directory::add_properties(&w.conn, &w.manager, w.project, &codes)
        .await
        .expect("add");
    assert_eq!(
        added.iter().map(|p| p.code.clone()).collect::<Vec<_>>(),
        codes
    );
    assert_eq!(w.counts().await.total, 2);
}

#[tokio::test]
async fn only_the_right_roles_create_things() {
    let w = World::new().await;
    let agent = w.agent().await;
    assert!(matches!(
        directory::create_project(&w.conn, &agent, "Mine").await,
        Err(DomainError::Forbidden(_))
    ));
    assert!(matches!(
        directory::add_properties(&w.conn, &agent, w.project, &["Q-1".into()]).await,
        Err(DomainError::Forbidden(_))
    ));
    assert!(matches!(
        directory::create_user(&w.conn, &w.manager, "Eve", "eve@acme.test", Role::Admin).await,
        Err(DomainError::Forbidden(_))
    ));
    assert!(matches!(
        directory::add_properties(&w.conn, &w.manager, ProjectId::new(), &["Q-1".into()]).await,
        Err(DomainError::NotFound("project"))
    ));
}

#[tokio::test]
async fn emails_are_unique_per_workspace_whatever_their_case() {
    let w = World::new().await;
    let err = directory::create_user(&w.conn, &w.admin, "Ada 2", "ADMIN@acme.test", Role::Manager)
        .await
        .expect_err("duplicate");
    assert!(matches!(err, DomainError::InvalidInput(_)), "{err:?}");
    let err = directory::create_user(&w.conn, &w.admin, "No", "not-an-email", Role::Manager)
        .await
        .expect_err("bad email");
    assert!(matches!(err, DomainError::InvalidInput(_)), "{err:?}");
}
