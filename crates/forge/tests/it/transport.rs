//! The credential rule, permission errors and retries.

use dagster_deploy_forge::{CommentMarker, ReviewTarget};
use mockito::Matcher;

use crate::{TOKEN, github, gitlab};

fn pull_request() -> ReviewTarget {
    ReviewTarget {
        repository: "acme/data".into(),
        number: 42,
    }
}

#[tokio::test]
async fn a_pagination_link_to_another_origin_is_never_followed_with_the_token() {
    let mut server = mockito::Server::new_async().await;
    let mut elsewhere = mockito::Server::new_async().await;
    let stolen = elsewhere
        .mock("GET", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    server
        .mock("GET", "/user")
        .with_body(r#"{"login":"deploy-bot"}"#)
        .create_async()
        .await;
    server
        .mock("GET", "/repos/acme/data/issues/42/comments")
        .match_query(Matcher::Any)
        .with_header(
            "link",
            &format!(r#"<{}/steal?page=2>; rel="next""#, elsewhere.url()),
        )
        .with_body("[]")
        .create_async()
        .await;
    let create = server
        .mock("POST", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let error = github(&server)
        .upsert_comment(&pull_request(), &CommentMarker::new("pr-42"), "report")
        .await
        .unwrap_err();
    assert!(error.is_invalid_setting(), "{error}");
    assert!(
        error
            .to_string()
            .contains("refusing to send the GitHub token"),
        "{error}"
    );
    assert!(!error.to_string().contains(TOKEN));
    stolen.assert_async().await;
    create.assert_async().await;
}

#[tokio::test]
async fn a_redirect_to_another_host_is_reported_not_followed() {
    let mut server = mockito::Server::new_async().await;
    let mut elsewhere = mockito::Server::new_async().await;
    let stolen = elsewhere
        .mock("GET", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    server
        .mock("GET", "/user")
        .with_status(302)
        .with_header("location", &format!("{}/user?token=x", elsewhere.url()))
        .create_async()
        .await;
    let error = github(&server)
        .upsert_comment(&pull_request(), &CommentMarker::new("pr-42"), "report")
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(302), "{error}");
    assert!(
        error.to_string().contains("redirects are not followed"),
        "{error}"
    );
    assert!(!error.to_string().contains("token=x"), "{error}");
    stolen.assert_async().await;
}

#[tokio::test]
async fn a_403_on_writing_names_the_missing_permission() {
    let mut server = mockito::Server::new_async().await;
    server
        .mock("GET", "/user")
        .with_status(403)
        .create_async()
        .await;
    server
        .mock("GET", "/repos/acme/data/issues/42/comments")
        .match_query(Matcher::Any)
        .with_body("[]")
        .create_async()
        .await;
    server
        .mock("POST", "/repos/acme/data/issues/42/comments")
        .with_status(403)
        .with_body(format!(
            r#"{{"message":"Resource not accessible by integration {TOKEN}"}}"#
        ))
        .expect(1)
        .create_async()
        .await;
    let error = github(&server)
        .upsert_comment(&pull_request(), &CommentMarker::new("pr-42"), "report")
        .await
        .unwrap_err();
    assert!(error.is_permission(), "{error}");
    assert_eq!(
        error.permission(),
        Some("`pull-requests: write` (or `issues: write`)")
    );
    assert!(
        error.to_string().contains("pull-requests: write"),
        "{error}"
    );
    assert!(!format!("{error:?}").contains(TOKEN), "{error:?}");
    assert!(error.help().is_some());
}

#[tokio::test]
async fn a_404_says_the_token_may_not_see_the_project() {
    let mut server = mockito::Server::new_async().await;
    server
        .mock("GET", "/api/v4/user")
        .with_body(r#"{"username":"bot"}"#)
        .create_async()
        .await;
    server
        .mock("GET", Matcher::Regex("/merge_requests/7/notes".into()))
        .with_status(404)
        .create_async()
        .await;
    let target = ReviewTarget {
        repository: "acme/data".into(),
        number: 7,
    };
    let error = gitlab(&server)
        .upsert_comment(&target, &CommentMarker::new("x"), "report")
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(404));
    let message = error.to_string();
    assert!(
        message.contains("does not exist, or the token lacks"),
        "{message}"
    );
    assert!(message.contains("`api`"), "{message}");
}

#[tokio::test]
async fn a_401_is_an_authentication_error_without_the_token() {
    let mut server = mockito::Server::new_async().await;
    server
        .mock("GET", "/user")
        .with_status(401)
        .with_body(format!(r#"{{"message":"Bad credentials {TOKEN}"}}"#))
        .create_async()
        .await;
    let error = github(&server)
        .upsert_comment(&pull_request(), &CommentMarker::new("x"), "report")
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(401));
    assert!(error.is_permission());
    assert!(!format!("{error} {error:?}").contains(TOKEN));
}

#[tokio::test]
async fn transient_failures_are_retried_but_a_create_is_not_sent_twice_after_a_500() {
    let mut server = mockito::Server::new_async().await;
    let busy = server
        .mock("GET", "/user")
        .with_status(503)
        .expect(2)
        .create_async()
        .await;
    let user = server
        .mock("GET", "/user")
        .with_body(r#"{"login":"bot"}"#)
        .create_async()
        .await;
    server
        .mock("GET", "/repos/acme/data/issues/42/comments")
        .match_query(Matcher::Any)
        .with_body("[]")
        .create_async()
        .await;
    let create = server
        .mock("POST", "/repos/acme/data/issues/42/comments")
        .with_status(500)
        .expect(1)
        .create_async()
        .await;
    let error = github(&server)
        .upsert_comment(&pull_request(), &CommentMarker::new("x"), "report")
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(500), "{error}");
    busy.assert_async().await;
    user.assert_async().await;
    create.assert_async().await;
}
