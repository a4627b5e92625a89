//! What the `Authorization` header of a request is: nothing, the registry's login (Basic), or
//! a bearer token got with it, and only for the registry's own origin (the rule is written in
//! `policy.rs`). What a client remembers about authentication lives in `cache.rs`; parsing
//! challenges and fetching tokens in `challenge.rs`.

mod cache;
pub(crate) mod challenge;

use reqwest::StatusCode;
use url::Url;

use super::RegistryClient;
use crate::credentials::UserPassword;
use crate::error::{Error, Result};
use crate::policy::display_url;
use crate::reference::ImageRef;

use cache::Token;
pub(crate) use cache::{AuthCache, Scopes};
pub(super) use challenge::{Challenge, parse_challenge};

/// The key of an origin in the auth cache (`https://host:port`).
pub(super) fn origin_key(origin: &Url) -> String {
    origin.origin().ascii_serialization()
}

impl RegistryClient {
    /// The login for `registry`, looked up once per client (a failing lookup too).
    pub(super) async fn credentials_for(&self, registry: &str) -> Result<Option<UserPassword>> {
        let cell = self.auth.credential_cell(registry);
        let lookup = cell
            .get_or_init(|| async {
                match self
                    .options
                    .credentials
                    .resolve(registry, &self.helpers)
                    .await
                {
                    Ok(found) => Ok(found),
                    Err(Error::Credentials { origin, reason, .. }) => Err((origin, reason)),
                    Err(other) => Err(("the credential lookup".to_owned(), other.to_string())),
                }
            })
            .await;
        lookup
            .clone()
            .map_err(|(origin, reason)| Error::Credentials {
                registry: registry.to_owned(),
                origin,
                reason,
            })
    }

    /// The `Authorization` header a request to `url` on behalf of `image` carries. This is the
    /// client's one credential rule (see `policy.rs`): the registry's login, or a token got
    /// with it, and only if `url` has the registry's own origin; nothing anywhere else.
    pub(super) async fn authorization(
        &self,
        image: &ImageRef,
        scopes: &Scopes,
        url: &Url,
    ) -> Result<Option<String>> {
        if !self.policy.carries_credentials(image, url)? {
            return Ok(None);
        }
        let origin = origin_key(&self.policy.registry_origin(image)?);
        match self.auth.challenge(&origin) {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self
                .credentials_for(image.registry())
                .await?
                .as_ref()
                .map(challenge::basic_header)),
            Some(Challenge::Bearer { realm, service }) => self
                .bearer(image, &origin, &realm, service.as_deref(), scopes)
                .await
                .map(Some),
        }
    }

    /// A bearer token covering `scopes` (and everything planned), fetched at most once at a
    /// time per registry and reused while it covers what is asked.
    async fn bearer(
        &self,
        image: &ImageRef,
        origin: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &Scopes,
    ) -> Result<String> {
        let slot = self.auth.token_slot(origin);
        let mut held = slot.lock().await;
        if let Some(token) = held.as_ref().filter(|token| token.scopes.covers(scopes)) {
            return Ok(token.header.clone());
        }
        let realm = Url::parse(realm).map_err(|error| Error::Protocol {
            url: origin.to_owned(),
            reason: format!("the bearer challenge's realm `{realm}` is not a URL: {error}"),
        })?;
        // Checked even when anonymous: the token itself is a credential.
        self.policy.check_realm(image.registry(), &realm)?;
        let wanted = held
            .as_ref()
            .map(|token| token.scopes.clone())
            .unwrap_or_default()
            .union(&self.auth.planned(origin))
            .union(scopes);
        let credentials = self.credentials_for(image.registry()).await?;
        let request = challenge::TokenRequest {
            registry: image.registry(),
            repository: image.repository(),
            realm: &realm,
            service,
            scopes: &wanted.to_query(),
            credentials: credentials.as_ref(),
        };
        let token = challenge::fetch_token(
            &self.http,
            &request,
            self.options.request_timeout,
            &self.retry,
        )
        .await?;
        let header = format!("Bearer {token}");
        *held = Some(Token {
            scopes: wanted,
            header: header.clone(),
        });
        Ok(header)
    }

    pub(super) async fn unauthorized(
        &self,
        image: &ImageRef,
        url: &Url,
        status: StatusCode,
    ) -> Error {
        let detail = match self.credentials_for(image.registry()).await {
            Ok(Some(credentials)) => format!(
                "the credentials of user `{}` were rejected",
                credentials.username
            ),
            Ok(None) => match self.options.credentials.explicit_registries() {
                Some(scoped) => format!(
                    "no credentials found for {} (the explicit username and password are for {} only)",
                    image.registry(),
                    scoped.join(", ")
                ),
                None => format!("no credentials found for {}", image.registry()),
            },
            Err(error) => error.to_string(),
        };
        Error::Unauthorized {
            registry: image.registry().to_owned(),
            repository: image.repository().to_owned(),
            url: display_url(url),
            status: status.as_u16(),
            detail,
        }
    }
}
