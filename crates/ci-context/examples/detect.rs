//! Prints what this crate finds out about a run: the CI provider, branch, commit, pull request
//! and repository, the commit's metadata, and the branch-deployment request a deploy would
//! send; errors are printed with their help.
//!
//! ```text
//! cargo run -p dagster-deploy-ci-context --example detect [-- DIR]
//! ```
//!
//! DIR is the project directory (default: the current one). The process environment is read
//! as it is (run it inside a CI job to see that provider); outside a git checkout the context is
//! simply empty.

#![allow(clippy::print_stdout, reason = "an example prints what it found")]

use std::path::PathBuf;

use dagster_deploy_ci_context::{
    Error, branch_deployment_request, branch_deployment_request_for_branch, commit_metadata,
    detect, guess_deployment_type,
};

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    // The environment is passed in as a lookup: a tool (or a test) can give any other one.
    let env = |name: &str| std::env::var(name).ok();
    let context = match detect(&env, &dir) {
        Ok(context) => context,
        Err(error) => return report(&error),
    };
    println!("provider:     {}", context.provider);
    println!("branch:       {}", context.branch.as_deref().unwrap_or("-"));
    println!(
        "commit:       {}",
        context.commit_hash.as_deref().unwrap_or("-")
    );
    let repo = context.repo.as_ref().map(|repo| repo.full_name());
    println!("repository:   {}", repo.as_deref().unwrap_or("-"));
    match &context.pull_request {
        Some(pull_request) => println!(
            "pull request: #{} ({})",
            pull_request.number,
            pull_request.status.as_str()
        ),
        None => println!("pull request: -"),
    }
    let guess = guess_deployment_type(&dir);
    println!("would deploy: {:?}", guess.deployment_type);

    let commit = match commit_metadata(&dir, None) {
        Ok(commit) => commit,
        Err(error) => return report(&error),
    };
    println!(
        "last commit:  {} by {} ({})",
        commit.hash, commit.author_name, commit.message
    );
    let request = if context.pull_request.is_some() {
        branch_deployment_request(&context, &commit, false)
    } else {
        branch_deployment_request_for_branch(&context, &commit, false)
    };
    match request {
        Ok(request) => println!(
            "branch deployment: {} on {}, status {}",
            request.repo_name,
            request.branch_name,
            request.pull_request_status.as_str()
        ),
        Err(error) => report(&error),
    }
}

/// Prints an error as data: its message, its cause, and its help.
fn report(error: &Error) {
    println!("error: {error}");
    if let Some(cause) = std::error::Error::source(error) {
        println!("  caused by: {cause}");
    }
    if let Some(help) = error.help() {
        println!("  help: {help}");
    }
}
