//! Creating, finding and updating our one comment.

use dagster_deploy_forge::{CommentMarker, CommentOutcome, ReviewTarget};
use mockito::Matcher;
use serde_json::{Value, json};

use crate::{TOKEN, github, gitlab};

fn pull_request() -> ReviewTarget {
    ReviewTarget {
        repository: "acme/data".into(),
        number: 42,
    }
}

fn comment(id: u64, login: &str, body: &str) -> Value {
    json!({"id": id, "user": {"login": login, "type": "Bot"}, "body": body,
           "html_url": format!("https://github.example/acme/data/pull/42#issuecomment-{id}")})
}

#[tokio::test]
async fn a_first_run_creates_the_comment_with_the_marker_first() {
    let mut server = mockito::Server::new_async().await;
    let marker = CommentMarker::new("pr-42");
    let user = server
        .mock("GET", "/user")
        .match_header("authorization", format!("Bearer {TOKEN}").as_str())
        .with_status(403)
        .with_body(r#"{"message":"Resource not accessible by integration"}"#)
        .create_async()
        .await;
    let list = server
        .mock("GET", "/repos/acme/data/issues/42/comments")
        .match_query(Matcher::UrlEncoded("per_page".into(), "100".into()))
        .with_body(json!([comment(1, "alice", "LGTM")]).to_string())
        .create_async()
        .await;
    let create = server
        .mock("POST", "/repos/acme/data/issues/42/comments")
        .match_body(Matcher::Json(
            json!({"body": marker.as_str().to_owned() + "\nthe report"}),
        ))
        .with_status(201)
        .with_body(comment(7, "github-actions[bot]", "x").to_string())
        .expect(1)
        .create_async()
        .await;
    let outcome = github(&server)
        .upsert_comment(&pull_request(), &marker, "the report")
        .await
        .unwrap();
    assert!(
        matches!(outcome, CommentOutcome::Created { id: 7, .. }),
        "{outcome:?}"
    );
    for mock in [user, list, create] {
        mock.assert_async().await;
    }
}

#[tokio::test]
async fn a_rerun_updates_our_comment_and_never_a_foreign_one() {
    let mut server = mockito::Server::new_async().await;
    let marker = CommentMarker::new("pr-42");
    let ours = marker.as_str().to_owned() + "\nold report";
    server
        .mock("GET", "/user")
        .with_body(r#"{"login":"deploy-bot"}"#)
        .create_async()
        .await;
    server
        .mock("GET", "/repos/acme/data/issues/42/comments")
        .match_query(Matcher::Any)
        .with_body(
            json!([
                // A person quoting our comment, another user pasting the marker, and another
                // deployment's comment: none of them is ours.
                comment(1, "alice", &format!("> {ours}")),
                comment(2, "mallory", &ours),
                comment(
                    3,
                    "deploy-bot",
                    &(CommentMarker::new("pr-4").as_str().to_owned() + "\nx")
                ),
                comment(4, "deploy-bot", &ours),
            ])
            .to_string(),
        )
        .create_async()
        .await;
    let update = server
        .mock("PATCH", "/repos/acme/data/issues/comments/4")
        .match_body(Matcher::Json(
            json!({"body": marker.as_str().to_owned() + "\nnew report"}),
        ))
        .with_body(comment(4, "deploy-bot", "x").to_string())
        .expect(1)
        .create_async()
        .await;
    let others = server
        .mock("PATCH", Matcher::Regex("/issues/comments/[123]$".into()))
        .expect(0)
        .create_async()
        .await;
    let create = server
        .mock("POST", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let outcome = github(&server)
        .upsert_comment(&pull_request(), &marker, "new report")
        .await
        .unwrap();
    assert!(
        matches!(outcome, CommentOutcome::Updated { id: 4, .. }),
        "{outcome:?}"
    );
    update.assert_async().await;
    others.assert_async().await;
    create.assert_async().await;

    let same = github(&server)
        .upsert_comment(&pull_request(), &marker, "old report")
        .await
        .unwrap();
    assert!(
        matches!(same, CommentOutcome::Unchanged { id: 4, .. }),
        "{same:?}"
    );
}

#[tokio::test]
async fn every_page_of_comments_is_read_before_deciding_to_create() {
    let mut server = mockito::Server::new_async().await;
    let marker = CommentMarker::new("pr-42");
    server
        .mock("GET", "/user")
        .with_body(r#"{"login":"deploy-bot"}"#)
        .create_async()
        .await;
    let page_two = format!(
        "{}/repos/acme/data/issues/42/comments?per_page=100&page=2",
        server.url()
    );
    server
        .mock("GET", "/repos/acme/data/issues/42/comments")
        .match_query(Matcher::Exact("per_page=100".into()))
        .with_header(
            "link",
            &format!(r#"<{page_two}>; rel="next", <{page_two}>; rel="last""#),
        )
        .with_body(json!([comment(1, "alice", "first")]).to_string())
        .create_async()
        .await;
    server
        .mock("GET", "/repos/acme/data/issues/42/comments")
        .match_query(Matcher::Exact("per_page=100&page=2".into()))
        .with_body(
            json!([comment(
                99,
                "deploy-bot",
                &(marker.as_str().to_owned() + "\nold")
            )])
            .to_string(),
        )
        .create_async()
        .await;
    let update = server
        .mock("PATCH", "/repos/acme/data/issues/comments/99")
        .with_body("{}")
        .expect(1)
        .create_async()
        .await;
    let outcome = github(&server)
        .upsert_comment(&pull_request(), &marker, "new")
        .await
        .unwrap();
    assert!(
        matches!(outcome, CommentOutcome::Updated { id: 99, .. }),
        "{outcome:?}"
    );
    update.assert_async().await;
}

#[tokio::test]
async fn gitlab_notes_are_found_by_author_and_marker_and_updated_with_put() {
    let mut server = mockito::Server::new_async().await;
    let marker = CommentMarker::new("pr-7");
    let user = server
        .mock("GET", "/api/v4/user")
        .match_header("private-token", TOKEN)
        .with_body(r#"{"username":"project_5_bot"}"#)
        .create_async()
        .await;
    server
        .mock("GET", "/api/v4/projects/acme%2Fplatform%2Fdata/merge_requests/7/notes")
        .match_query(Matcher::Any)
        .with_body(
            json!([
                {"id": 1, "system": true, "author": {"username": "project_5_bot"}, "body": marker.as_str()},
                {"id": 2, "system": false, "author": {"username": "alice"}, "body": marker.as_str()},
                {"id": 3, "system": false, "author": {"username": "project_5_bot"}, "body": marker.as_str()},
            ])
            .to_string(),
        )
        .create_async()
        .await;
    let update = server
        .mock(
            "PUT",
            "/api/v4/projects/acme%2Fplatform%2Fdata/merge_requests/7/notes/3",
        )
        .match_body(Matcher::Json(
            json!({"body": marker.as_str().to_owned() + "\nreport"}),
        ))
        .with_body(r#"{"id":3}"#)
        .expect(1)
        .create_async()
        .await;
    let target = ReviewTarget {
        repository: "acme/platform/data".into(),
        number: 7,
    };
    let outcome = gitlab(&server)
        .upsert_comment(&target, &marker, "report")
        .await
        .unwrap();
    assert!(
        matches!(outcome, CommentOutcome::Updated { id: 3, .. }),
        "{outcome:?}"
    );
    user.assert_async().await;
    update.assert_async().await;
}

#[tokio::test]
async fn the_avatar_is_the_commit_authors_and_none_for_an_unknown_author() {
    let mut server = mockito::Server::new_async().await;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    server
        .mock("GET", format!("/repos/acme/data/commits/{sha}").as_str())
        .match_header("authorization", format!("Bearer {TOKEN}").as_str())
        .with_body(r#"{"sha":"x","author":{"login":"alice","avatar_url":"https://avatars.example/u/1?v=4"}}"#)
        .create_async()
        .await;
    let unknown = "1111111111111111111111111111111111111111";
    server
        .mock(
            "GET",
            format!("/repos/acme/data/commits/{unknown}").as_str(),
        )
        .with_body(r#"{"sha":"x","author":null}"#)
        .create_async()
        .await;
    let client = github(&server);
    assert_eq!(
        client
            .commit_author_avatar("acme/data", sha)
            .await
            .unwrap()
            .as_deref(),
        Some("https://avatars.example/u/1?v=4")
    );
    assert_eq!(
        client
            .commit_author_avatar("acme/data", unknown)
            .await
            .unwrap(),
        None
    );
    let error = client
        .commit_author_avatar("acme/data", "HEAD;rm")
        .await
        .unwrap_err();
    assert!(error.is_invalid_setting(), "{error}");
}
