//! What a client remembers about authentication, shared by all its requests: each registry's
//! challenge, its resolved login, and its bearer token with the scopes the token covers.
//!
//! Lookups are single-flight: however many requests run at once, a registry's credentials are
//! resolved once (a credential helper runs once, even when it fails) and a token is fetched once
//! for the scopes asked so far. Operations that know every repository they will touch
//! (`push_image`, the native builder) announce them first with [`AuthCache::plan`], so that the
//! first token already covers them all.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use super::Challenge;
use crate::credentials::UserPassword;

/// What a token may do in one repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Actions {
    Pull,
    PullPush,
}

/// Token scopes: for each repository, pull or pull and push.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scopes(BTreeMap<String, Actions>);

impl Scopes {
    /// Pull access to `repository`.
    pub(crate) fn pull(repository: &str) -> Self {
        Scopes(BTreeMap::from([(repository.to_owned(), Actions::Pull)]))
    }

    /// Pull and push access to `repository`.
    pub(crate) fn push(repository: &str) -> Self {
        Scopes(BTreeMap::from([(repository.to_owned(), Actions::PullPush)]))
    }

    /// Both sets of access.
    pub(crate) fn union(&self, other: &Scopes) -> Scopes {
        let mut merged = self.0.clone();
        for (repository, actions) in &other.0 {
            let entry = merged.entry(repository.clone()).or_insert(*actions);
            *entry = (*entry).max(*actions);
        }
        Scopes(merged)
    }

    /// Whether everything `other` asks for is included.
    pub(crate) fn covers(&self, other: &Scopes) -> bool {
        other
            .0
            .iter()
            .all(|(repository, actions)| self.0.get(repository).is_some_and(|held| held >= actions))
    }

    /// The `scope` query values of a token request, one per repository.
    pub(crate) fn to_query(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(repository, actions)| match actions {
                Actions::Pull => format!("repository:{repository}:pull"),
                Actions::PullPush => format!("repository:{repository}:pull,push"),
            })
            .collect()
    }
}

/// A bearer token and what it was asked for.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub(crate) scopes: Scopes,
    /// The whole `Authorization` header value, `Bearer …`.
    pub(crate) header: String,
}

/// A credential lookup's result, kept so that a failing helper is not run again: the login, or
/// where the lookup failed (config file or helper) and why.
pub(crate) type CredentialLookup = Result<Option<UserPassword>, (String, String)>;

/// Per-client authentication state, keyed by registry origin (challenges, tokens, plans) or by
/// registry name (logins).
#[derive(Default)]
pub(crate) struct AuthCache {
    challenges: Mutex<HashMap<String, Challenge>>,
    planned: Mutex<HashMap<String, Scopes>>,
    tokens: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Token>>>>>,
    credentials: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<CredentialLookup>>>>,
}

/// The maps hold plain data, so a panic elsewhere cannot leave them half-updated.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AuthCache {
    /// The challenge the registry at `origin` last sent, if any.
    pub(crate) fn challenge(&self, origin: &str) -> Option<Challenge> {
        lock(&self.challenges).get(origin).cloned()
    }

    /// Remembers a challenge sent by the registry at `origin` itself.
    pub(crate) fn set_challenge(&self, origin: &str, challenge: Challenge) {
        lock(&self.challenges).insert(origin.to_owned(), challenge);
    }

    /// Announces access an operation will need, so the next token covers it too.
    pub(crate) fn plan(&self, origin: &str, scopes: &Scopes) {
        let mut planned = lock(&self.planned);
        let entry = planned.entry(origin.to_owned()).or_default();
        *entry = entry.union(scopes);
    }

    /// Everything announced for `origin`.
    pub(crate) fn planned(&self, origin: &str) -> Scopes {
        lock(&self.planned).get(origin).cloned().unwrap_or_default()
    }

    /// The token slot of `origin`; holding its lock makes a fetch single-flight.
    pub(crate) fn token_slot(&self, origin: &str) -> Arc<tokio::sync::Mutex<Option<Token>>> {
        lock(&self.tokens)
            .entry(origin.to_owned())
            .or_default()
            .clone()
    }

    /// Forgets `origin`'s token if it is still the one that was `sent` (and was refused); a
    /// token another request already replaced is kept.
    pub(crate) async fn forget_token(&self, origin: &str, sent: Option<&str>) {
        let slot = self.token_slot(origin);
        let mut token = slot.lock().await;
        if token.as_ref().map(|token| token.header.as_str()) == sent {
            *token = None;
        }
    }

    /// The once-only credential lookup of `registry`.
    pub(crate) fn credential_cell(
        &self,
        registry: &str,
    ) -> Arc<tokio::sync::OnceCell<CredentialLookup>> {
        lock(&self.credentials)
            .entry(registry.to_owned())
            .or_default()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_merge_to_the_stronger_access_and_cover_subsets() {
        let pull_a = Scopes::pull("team/a");
        let push_a = Scopes::push("team/a");
        let pull_b = Scopes::pull("base/python");
        let both = push_a.union(&pull_b).union(&pull_a);
        assert_eq!(
            both.to_query(),
            ["repository:base/python:pull", "repository:team/a:pull,push"]
        );
        assert!(both.covers(&pull_a) && both.covers(&push_a) && both.covers(&pull_b));
        assert!(push_a.covers(&pull_a));
        assert!(!pull_a.covers(&push_a));
        assert!(!push_a.covers(&pull_b));
        assert!(pull_a.covers(&Scopes::default()));
    }

    #[tokio::test]
    async fn a_refused_token_is_forgotten_only_if_it_was_not_replaced() {
        let cache = AuthCache::default();
        let slot = cache.token_slot("https://r");
        *slot.lock().await = Some(Token {
            scopes: Scopes::pull("a"),
            header: "Bearer new".into(),
        });
        cache.forget_token("https://r", Some("Bearer old")).await;
        assert!(slot.lock().await.is_some());
        cache.forget_token("https://r", Some("Bearer new")).await;
        assert!(slot.lock().await.is_none());
    }
}
