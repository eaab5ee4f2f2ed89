//! Clients named by the URL of their metadata document (CIMD): when an authorization request's
//! `client_id` is such a URL, the document is fetched (through the installed
//! [`MetadataDocumentFetcher`], with its SSRF defences and cache) and the client is kept as a
//! client row of origin `metadata_document`, so that grants, tokens, connected apps and
//! revocation treat it like any other. The row follows the document: it is rewritten when the
//! document changed, and an operator's suspension stays.
//!
//! A client nobody vouches for holds only the scopes the platform allows such clients
//! ([`Engine::external_scope`]): those the document asks for, within them.

use std::sync::Arc;

use latchkey_types::Scope;
use latchkey_types::client::OAuth2Client;

use super::Engine;
use super::error::AuthorizeError;
use crate::client::{
    Client, ClientOrigin, ClientStatus, MetadataDocument, MetadataDocumentFetcher,
    parse_document_url,
};
use crate::store::StoreError;

impl Engine {
    /// Installs the fetcher of client metadata documents; without one, a URL client_id is
    /// an unknown client.
    pub fn install_document_fetcher(&self, fetcher: Arc<dyn MetadataDocumentFetcher>) {
        *self
            .document_fetcher
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fetcher);
    }

    fn document_fetcher(&self) -> Option<Arc<dyn MetadataDocumentFetcher>> {
        self.document_fetcher
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The client a metadata document URL names, as the document describes it now. `Ok(Err)`:
    /// the URL or the document is refused (shown on a page: nothing is redirected to a
    /// client not yet known).
    pub(crate) async fn document_client(
        &self,
        client_id: &str,
    ) -> Result<Result<Client, AuthorizeError>, StoreError> {
        let fetcher = match self.document_fetcher() {
            Some(f) if self.settings.metadata_documents => f,
            _ => return Ok(Err(AuthorizeError::UnknownClient)),
        };
        let url = match parse_document_url(client_id) {
            Ok(u) => u,
            Err(e) => return Ok(Err(AuthorizeError::ClientDocument(e))),
        };
        let document = match fetcher.fetch(&url).await {
            Ok(d) => d,
            Err(e) => {
                tracing::info!(host = url.host_str().unwrap_or_default(), reason = %e, "client metadata document refused");
                return Ok(Err(AuthorizeError::ClientDocument(e)));
            }
        };
        let now = self.deps.clock.now();
        let host = url.host_str().map(str::to_ascii_lowercase);
        let described = match self.described_client(&document, host.as_deref(), now) {
            Ok(c) => c,
            Err(reason) => {
                return Ok(Err(AuthorizeError::ClientDocument(
                    crate::client::CimdError::InvalidField {
                        field: "metadata".into(),
                        reason,
                    },
                )));
            }
        };
        let stored = self.deps.store.client(client_id).await?;
        if let Some(current) = &stored
            && same_description(current, &described)
        {
            return Ok(Ok(current.clone()));
        }
        if stored
            .as_ref()
            .is_some_and(|c| c.origin != ClientOrigin::MetadataDocument)
        {
            // A URL-shaped id the operator registered is theirs; a document never replaces it.
            return Ok(Ok(stored.unwrap_or(described)));
        }
        let mut tx = self.deps.store.begin().await?;
        tx.clients().upsert_document_client(&described).await?;
        let written = tx.clients().get(client_id).await?;
        tx.commit().await?;
        self.clients.forget(client_id);
        Ok(Ok(written.unwrap_or(described)))
    }

    /// The client a document describes, validated by the one client validation, with the
    /// scopes a client from `host` may hold.
    fn described_client(
        &self,
        doc: &MetadataDocument,
        host: Option<&str>,
        now: i64,
    ) -> Result<Client, String> {
        let allowed = self.external_scope(host);
        let scope = match doc.scope.as_deref().map(Scope::parse) {
            None => allowed,
            Some(Ok(asked)) => asked.intersection(&allowed),
            Some(Err(e)) => return Err(format!("scope {e}")),
        };
        if doc.jwks_uri.is_some() && doc.jwks.is_none() {
            return Err("jwks_uri is not supported yet; publish the keys in jwks".into());
        }
        let wire = OAuth2Client {
            client_name: Some(doc.client_name.clone()),
            redirect_uris: Some(doc.redirect_uris.clone()),
            grant_types: Some(
                doc.grant_types
                    .iter()
                    .map(|g| g.as_str().to_owned())
                    .collect(),
            ),
            response_types: Some(doc.response_types.clone()),
            scope: Some(scope.to_string()),
            token_endpoint_auth_method: Some(doc.token_endpoint_auth_method.as_str().to_owned()),
            jwks: doc.jwks.clone(),
            logo_uri: doc.logo_uri.clone(),
            client_uri: doc.client_uri.clone(),
            policy_uri: doc.policy_uri.clone(),
            tos_uri: doc.tos_uri.clone(),
            contacts: Some(doc.contacts.clone()),
            ..OAuth2Client::default()
        };
        crate::client::client_from_wire(
            &wire,
            crate::client::Fixed {
                id: doc.client_id.clone(),
                created_at: now,
                updated_at: now,
                status: ClientStatus::Active,
                owner_account_id: None,
                origin: ClientOrigin::MetadataDocument,
            },
        )
        .map_err(|e| e.to_string())
    }
}

/// The stored client says what the document says (the fields a document sets).
fn same_description(stored: &Client, described: &Client) -> bool {
    stored.origin == ClientOrigin::MetadataDocument
        && stored.name == described.name
        && stored.redirect_uris == described.redirect_uris
        && stored.grant_types == described.grant_types
        && stored.response_types == described.response_types
        && stored.scope == described.scope
        && stored.token_endpoint_auth_method == described.token_endpoint_auth_method
        && stored.jwks == described.jwks
        && stored.logo_uri == described.logo_uri
        && stored.client_uri == described.client_uri
        && stored.policy_uri == described.policy_uri
        && stored.tos_uri == described.tos_uri
        && stored.contacts == described.contacts
}
