//! Keeps one deploy-report comment on a pull request up to date, against a local stand-in of
//! the GitHub API (a mockito server), so that it runs anywhere without a token:
//!
//! ```text
//! cargo run -p dagster-deploy-forge --example upsert_comment
//! ```
//!
//! The first call finds no comment of ours and creates one; the second finds it by its marker
//! and author and updates it in place.
#![allow(clippy::print_stdout, reason = "an example prints what it did")]

use dagster_deploy_forge::{
    CommentMarker, CommentOutcome, ForgeClient, ForgeOptions, ForgeToken, ReviewTarget,
};
use mockito::Matcher;
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut github = mockito::Server::new_async().await;
    let marker = CommentMarker::new("feature-sales-report");
    // An Actions GITHUB_TOKEN may not read /user: its comments are github-actions[bot]'s.
    github
        .mock("GET", "/user")
        .with_status(403)
        .create_async()
        .await;
    let first_list = github
        .mock("GET", "/repos/acme/data/issues/42/comments")
        .match_query(Matcher::Any)
        .with_body(r#"[{"id": 1, "user": {"login": "alice"}, "body": "Looks good"}]"#)
        .expect(1)
        .create_async()
        .await;
    github
        .mock("POST", "/repos/acme/data/issues/42/comments")
        .with_status(201)
        .with_body(
            r#"{"id": 2, "html_url": "https://github.com/acme/data/pull/42#issuecomment-2"}"#,
        )
        .create_async()
        .await;

    let client = ForgeClient::github(
        &github.url(),
        ForgeToken::new("ghs_example"),
        ForgeOptions::default(),
    )?;
    let pull_request = ReviewTarget {
        repository: "acme/data".to_owned(),
        number: 42,
    };
    let created = client
        .upsert_comment(&pull_request, &marker, "| sales | Building... |")
        .await?;
    assert!(matches!(created, CommentOutcome::Created { id: 2, .. }));
    println!("first run: {created:?}");

    // The second run sees the comment it wrote, and edits it.
    first_list.remove_async().await;
    let ours = format!("{}\n| sales | Building... |", marker.as_str());
    github
        .mock("GET", "/repos/acme/data/issues/42/comments")
        .match_query(Matcher::Any)
        .with_body(
            json!([
                {"id": 1, "user": {"login": "alice"}, "body": "Looks good"},
                {"id": 2, "user": {"login": "github-actions[bot]"}, "body": ours},
            ])
            .to_string(),
        )
        .create_async()
        .await;
    github
        .mock("PATCH", "/repos/acme/data/issues/comments/2")
        .with_body(r#"{"id": 2}"#)
        .create_async()
        .await;
    let updated = client
        .upsert_comment(&pull_request, &marker, "| sales | Deployed |")
        .await?;
    assert!(matches!(updated, CommentOutcome::Updated { id: 2, .. }));
    println!("second run: {updated:?}");
    Ok(())
}
