//! The storage traits. The services open a unit of work ([`Store::begin`] for a transaction,
//! [`Store::read`] for reads), use the repositories it hands out, and commit; dropping an
//! uncommitted transaction rolls it back.
//!
//! Lookups return `Ok(None)` for "not found": absence is not an error. Steps that must be atomic
//! (consuming a code, rotating a refresh token) are single statements in the implementations.

use async_trait::async_trait;
use latchkey_types::Scope;

use crate::audit::{AuditEntry, AuditFilter};
use crate::client::cache::ClientGuard;
use crate::client::{Client, ClientFilter, ClientSecretRecord};
use crate::clock::UnixTime;
use crate::crypto::TokenHash;
use crate::keys::StoredSigningKey;
use crate::oauth::device::{DeviceChallenge, DeviceCodeData, DeviceCodeRecord};
use crate::oauth::flow::{FlowRecord, FlowState};
use crate::oauth::logout::{
    BackchannelDelivery, LogoutKey, LogoutRecord, LogoutState, Participant,
};
use crate::oauth::records::{
    AccessTokenRecord, AuthorizationCode, Grant, LoginSession, RefreshTokenRecord, TokenLookup,
};
use crate::platform::model::{
    Account, AccountMembership, AppProfile, ConsoleSession, Member, Membership, ThrottleRecord,
    User,
};
use crate::revocations::{RevocationEntry, RevocationKind, RevokedIds};

/// A storage failure. Not found is never an error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint refused the write (e.g. a client id that exists).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database could not be reached.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(String),
    /// A stored value could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// A unit of write work: a use case's whole write, given the transaction it runs in. It does
/// storage and nothing else (an implementation may drive it to its end on a thread of its own).
pub type Work = Box<
    dyn for<'t> FnOnce(
            &'t mut dyn Tx,
        ) -> BoxFuture<'t, Result<Box<dyn std::any::Any + Send>, StoreError>>
        + Send,
>;

/// A boxed future that is `Send`.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The storage engine.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Opens a read-write transaction, for a service that decides between its statements.
    async fn begin(&self) -> Result<Box<dyn Tx>, StoreError>;
    /// A unit of work for reads only, outside any transaction; `commit` is a no-op.
    async fn read(&self) -> Result<Box<dyn Tx>, StoreError>;
    /// Answers when the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Runs `work` in a transaction of its own, committed when it answers `Ok` and rolled back
    /// when it fails; durable when this returns. An implementation may commit concurrent units
    /// together. Use it through the typed use cases below ([`Store::exchange_code_guarded`],
    /// …), or [`unit`].
    async fn run(&self, work: Work) -> Result<Box<dyn std::any::Any + Send>, StoreError>;
    /// One access token with the state of what it depends on, read outside any unit of work:
    /// the lookup behind introspection and userinfo, on every request of a resource server.
    async fn access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<TokenLookup<AccessTokenRecord>>, StoreError> {
        self.read().await?.tokens().access(hash).await
    }
    /// One refresh token with the state of what it depends on, read outside any unit of work:
    /// the read before a refresh queues for the writer.
    async fn refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<TokenLookup<RefreshTokenRecord>>, StoreError> {
        self.read().await?.tokens().refresh(hash).await
    }
    /// A client, read outside any unit of work.
    async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        self.read().await?.clients().get(id).await
    }
    /// The subject's unrevoked grant for a client, read outside any unit of work.
    async fn active_grant(
        &self,
        subject: &str,
        client_id: &str,
    ) -> Result<Option<Grant>, StoreError> {
        self.read().await?.grants().active(subject, client_id).await
    }
    /// A flow by the hash of one of its bearer values, read outside any unit of work: the first
    /// read of every step of a flow through login and consent.
    async fn flow(&self, key: FlowKey, hash: &str) -> Result<Option<FlowRecord>, StoreError> {
        self.read().await?.flows().find(key, hash).await
    }
    /// An authorization code, read outside any unit of work: the read before a code exchange
    /// queues for the writer.
    async fn authorization_code(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCode>, StoreError> {
        self.read().await?.codes().get(hash).await
    }
}

/// Runs `work` as a unit of work of `store` ([`Store::run`]) and answers what it answered.
pub async fn unit<T, F>(store: &(impl Store + ?Sized), work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<T, StoreError>> + Send + 'static,
{
    let work: Work = Box::new(move |tx| {
        Box::pin(async move {
            let out = work(tx).await?;
            Ok(Box::new(out) as Box<dyn std::any::Any + Send>)
        })
    });
    let out = store.run(work).await?;
    out.downcast::<T>()
        .map(|t| *t)
        .map_err(|_| StoreError::Database("a unit of work answered another type".into()))
}

/// The guard of a client authenticated from the cache, checked in the unit of work that writes
/// for it: `write` runs only while `guard` holds at `now` (see
/// [`ClientRepository::guard_holds`]); `None`, and nothing written, when it does not.
pub async fn guarded<'t, T>(
    tx: &'t mut dyn Tx,
    guard: &ClientGuard,
    now: UnixTime,
    write: impl FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<T, StoreError>>,
) -> Result<Option<T>, StoreError> {
    if !tx.clients().guard_holds(guard, now).await? {
        return Ok(None);
    }
    write(tx).await.map(Some)
}

/// [`guarded`] as a unit of work of its own: what every write for a cached client is.
pub async fn unit_guarded<T, F>(
    store: &(impl Store + ?Sized),
    guard: ClientGuard,
    now: UnixTime,
    write: F,
) -> Result<Option<T>, StoreError>
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<T, StoreError>> + Send + 'static,
{
    unit(store, move |tx| {
        Box::pin(async move { guarded(tx, &guard, now, write).await })
    })
    .await
}

/// The write use cases, each a unit of work around its one definition (the `write_*` functions
/// below), for the services to call. Every store has them.
#[async_trait]
pub trait StoreWrites: Store {
    /// Stores a new flow.
    async fn insert_flow(&self, flow: FlowRecord) -> Result<(), StoreError> {
        unit(self, move |tx| {
            Box::pin(async move { tx.flows().insert(&flow).await })
        })
        .await
    }

    /// [`write_flow_step`]: false when the flow was no longer in the state the step started
    /// from (nothing is written then).
    async fn advance_flow(&self, step: FlowStep) -> Result<bool, StoreError> {
        unit(self, move |tx| {
            Box::pin(async move { write_flow_step(tx, &step).await })
        })
        .await
    }

    /// [`write_logout`].
    async fn end_sessions(&self, logout: LogoutWrite) -> Result<Option<LogoutWritten>, StoreError> {
        unit(self, move |tx| {
            Box::pin(async move { write_logout(tx, &logout).await })
        })
        .await
    }

    /// [`write_consent`]; nothing is written unless it answers [`ConsentCompleted::Written`].
    async fn complete_consent(
        &self,
        completion: ConsentCompletion,
    ) -> Result<ConsentCompleted, StoreError> {
        unit(self, move |tx| {
            Box::pin(async move { write_consent(tx, &completion).await })
        })
        .await
    }

    /// Issues a client-credentials access token for a client authenticated from the cache: the
    /// token is stored only while `guard` holds; `false` when it did not.
    async fn insert_access_guarded(
        &self,
        token: AccessTokenRecord,
        guard: ClientGuard,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let written = unit_guarded(self, guard, now, move |tx| {
            Box::pin(async move { tx.tokens().insert_access(&token).await })
        })
        .await?;
        Ok(written.is_some())
    }

    /// [`write_exchange`] for a client authenticated from the cache; `None` when its guard did
    /// not hold.
    async fn exchange_code_guarded(
        &self,
        exchange: Exchange,
        guard: ClientGuard,
        now: UnixTime,
    ) -> Result<Option<Exchanged>, StoreError> {
        unit_guarded(self, guard, now, move |tx| {
            Box::pin(async move { write_exchange(tx, &exchange, now).await })
        })
        .await
    }

    /// [`write_revocation`] for a client authenticated from the cache; `None` when its guard
    /// did not hold.
    async fn revoke_access_guarded(
        &self,
        hash: TokenHash,
        guard: ClientGuard,
        now: UnixTime,
        audit: AuditEntry,
    ) -> Result<Option<bool>, StoreError> {
        unit_guarded(self, guard, now, move |tx| {
            Box::pin(async move { write_revocation(tx, &hash, now, &audit).await })
        })
        .await
    }

    /// [`write_family_revocation`] for a client authenticated from the cache; `None` when its
    /// guard did not hold.
    async fn revoke_family_guarded(
        &self,
        family_id: String,
        guard: ClientGuard,
        now: UnixTime,
        audit: AuditEntry,
    ) -> Result<Option<bool>, StoreError> {
        unit_guarded(self, guard, now, move |tx| {
            Box::pin(async move { write_family_revocation(tx, &family_id, now, &audit).await })
        })
        .await
    }

    /// [`write_rotation`] for a client authenticated from the cache; `None` when its guard did
    /// not hold, otherwise whether this call rotated the token.
    async fn rotate_refresh_guarded(
        &self,
        rotation: Rotation,
        guard: ClientGuard,
        now: UnixTime,
    ) -> Result<Option<bool>, StoreError> {
        unit_guarded(self, guard, now, move |tx| {
            Box::pin(async move { write_rotation(tx, &rotation, now).await })
        })
        .await
    }
}

impl<S: Store + ?Sized> StoreWrites for S {}

/// What rotating a refresh token writes.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The refresh token rotated.
    pub hash: TokenHash,
    /// Its grant, marked used.
    pub grant_id: Option<String>,
    pub access: AccessTokenRecord,
    /// The new refresh token, unless the client stopped getting them.
    pub refresh: Option<RefreshTokenRecord>,
    /// The response, sealed, for retries of the same request.
    pub successor: String,
}

/// One step of a flow through login and consent: its new state, written only while it is still
/// in state `from`, and the login session it created, if any.
#[derive(Debug, Clone)]
pub struct FlowStep {
    pub flow: FlowRecord,
    pub from: FlowState,
    pub session: Option<LoginSession>,
}

/// Writes a flow step in `tx`: the transition, then (only if it was made) the new session. A
/// device flow (RFC 8628) that ends with a rejected login or consent denies its device code, so
/// the device's next poll gets `access_denied`.
pub async fn write_flow_step(tx: &mut dyn Tx, step: &FlowStep) -> Result<bool, StoreError> {
    if !tx.flows().transition(&step.flow, step.from).await? {
        return Ok(false);
    }
    if let Some(session) = &step.session {
        tx.login_sessions().insert(session).await?;
    }
    if step.flow.state == FlowState::Done
        && matches!(
            step.from,
            FlowState::LoginRejected | FlowState::ConsentRejected
        )
        && let Some(device_code) = &step.flow.data.request.device_code
    {
        tx.device_codes()
            .deny(&TokenHash(device_code.clone()))
            .await?;
    }
    Ok(true)
}

/// What an accepted consent writes when the browser comes back with its verifier: the flow's last
/// step, the grant, the code issued for it and the audit entry of the grant. The code's
/// `grant_id` and the entry's `target_id` are replaced by the id of the grant written (a
/// consent updates the subject's active grant for the client in place), and the entry's
/// `account_id` by the account that owns the client, read where its status is checked, so that
/// the engine need not read the client first.
#[derive(Debug, Clone)]
pub struct ConsentCompletion {
    pub step: FlowStep,
    pub grant: Grant,
    pub code: AuthorizationCode,
    pub audit: AuditEntry,
    /// The most distinct users the client may have, when this consent is capped: a subject
    /// with no grant for it yet is refused once it has that many.
    pub user_cap: Option<i64>,
    /// For a device flow (RFC 8628): the device code the consent authorizes, instead of
    /// issuing `code` (whose data it keeps, for the token endpoint).
    pub device_code: Option<(TokenHash, DeviceCodeData)>,
}

/// What [`ClientRepository::active`] reads of an active client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveClient {
    /// The account that owns it: a platform app's; `None` for a client made through the admin
    /// API.
    pub owner_account_id: Option<String>,
}

/// What completing a consent found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentCompleted {
    /// Written; the id of the grant.
    Written { grant_id: String },
    /// The flow was no longer in the state the step started from: nothing was written.
    FlowUsed,
    /// The client is gone or no longer active: nothing was written.
    ClientGone,
    /// The client already has as many users as its cap allows: nothing was written.
    AtUserCap,
}

/// Completes a consent in `tx`: the client must still be active (and, when the consent is
/// capped, below its cap of users, counted while the client is locked against other consents),
/// and the flow still where the step started; then the grant, the code and the audit entry.
pub async fn write_consent(
    tx: &mut dyn Tx,
    c: &ConsentCompletion,
) -> Result<ConsentCompleted, StoreError> {
    let client_id = &c.grant.client_id;
    let Some(client) = tx.clients().active(client_id, c.user_cap.is_some()).await? else {
        return Ok(ConsentCompleted::ClientGone);
    };
    // The grant this consent replaces, if any: read once, for the cap and for the narrowing.
    let replaced = tx.grants().active(&c.grant.subject, client_id).await?;
    if let Some(cap) = c.user_cap
        && replaced.is_none()
        && tx.apps().user_count(client_id).await? >= cap
    {
        return Ok(ConsentCompleted::AtUserCap);
    }
    if !write_flow_step(tx, &c.step).await? {
        return Ok(ConsentCompleted::FlowUsed);
    }
    // A consent that grants less than the one it replaces leaves no token wider than this one:
    // the tokens of the grant it narrows are revoked.
    let narrowed = replaced.filter(|old| {
        !old.scope.is_subset_of(&c.grant.scope)
            || old.accounts.iter().any(|a| !c.grant.accounts.contains(a))
    });
    if let Some(old) = &narrowed {
        tx.tokens().revoke_grant(&old.id, c.code.created_at).await?;
    }
    let grant_id = tx.grants().upsert_active(&c.grant).await?;
    // The app takes part in the login session: a logout of that session signs it out.
    if let Some(sid) = &c.grant.login_session_id {
        tx.logouts()
            .join_session(sid, client_id, c.code.created_at)
            .await?;
    }
    if let Some((device_code, data)) = &c.device_code {
        let code = c.code_of(&grant_id);
        let data = DeviceCodeData {
            authorization: Some(crate::oauth::device::DeviceAuthorization {
                grant_id: code.grant_id,
                family_id: code.family_id,
                data: code.data,
            }),
            ..data.clone()
        };
        // Only a code a user verified, once: a second flow for the same code writes nothing.
        if !tx.device_codes().authorize(device_code, &data).await? {
            return Err(StoreError::Conflict(
                "the device code was authorized already".into(),
            ));
        }
    } else {
        tx.codes().insert(&c.code_of(&grant_id)).await?;
    }
    tx.audit()
        .append(&c.audit_of(&grant_id, client.owner_account_id))
        .await?;
    if let Some(old) = narrowed {
        tx.revocation_log()
            .append(
                RevocationKind::Grant,
                &RevokedIds::grant(&old.id, Some(client_id), Some(&old.subject)),
                c.code.created_at,
            )
            .await?;
    }
    Ok(ConsentCompleted::Written { grant_id })
}

impl ConsentCompletion {
    /// The code, issued under the grant `grant_id`.
    pub fn code_of(&self, grant_id: &str) -> AuthorizationCode {
        AuthorizationCode {
            grant_id: grant_id.to_owned(),
            ..self.code.clone()
        }
    }
    /// The audit entry, about the grant `grant_id`, in the account `account_id` (the client's
    /// owner).
    pub fn audit_of(&self, grant_id: &str, account_id: Option<String>) -> AuditEntry {
        AuditEntry {
            target_id: grant_id.to_owned(),
            account_id,
            ..self.audit.clone()
        }
    }
}

/// Withdraws `scope` from every unrevoked grant of `client_id` (an operator refused it): each
/// grant that held it is narrowed, and every token issued under it revoked, since those tokens
/// carry the scope. `audit` is appended once per grant narrowed, about it. Returns how many.
pub async fn write_scope_withdrawal(
    tx: &mut dyn Tx,
    client_id: &str,
    scope: &str,
    now: UnixTime,
    audit: &AuditEntry,
) -> Result<u64, StoreError> {
    let mut narrowed = 0;
    for grant in tx.grants().list_for_client(client_id).await? {
        if !grant.scope.contains(scope) {
            continue;
        }
        let kept: Vec<&str> = grant.scope.iter().filter(|s| *s != scope).collect();
        let kept = Scope::from_tokens(kept).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.grants()
            .narrow(&grant.id, &kept, &grant.accounts, now)
            .await?;
        tx.tokens().revoke_grant(&grant.id, now).await?;
        tx.audit()
            .append(&AuditEntry {
                id: format!("{}-{narrowed}", audit.id),
                target_id: grant.id.clone(),
                ..audit.clone()
            })
            .await?;
        tx.revocation_log()
            .append(
                RevocationKind::Grant,
                &RevokedIds::grant(&grant.id, Some(client_id), Some(&grant.subject)),
                now,
            )
            .await?;
        narrowed += 1;
    }
    Ok(narrowed)
}

/// What exchanging an authorization code writes.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The code, marked used.
    pub code: TokenHash,
    /// Its grant, marked used.
    pub grant_id: String,
    pub access: AccessTokenRecord,
    /// The refresh token, when the grant has offline access.
    pub refresh: Option<RefreshTokenRecord>,
}

/// What a code exchange found, and so what it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchanged {
    /// The code was marked used and the tokens stored.
    Written,
    /// The code was used already (or is gone): nothing was written.
    CodeUsed,
    /// The grant was revoked since the code was issued: the code was marked used, and no token
    /// stored.
    GrantRevoked,
}

/// Exchanges an authorization code in `tx`: marks the code used, then (only if it was unused)
/// its grant, then (only if the grant is still granted) stores the tokens.
pub async fn write_exchange(
    tx: &mut dyn Tx,
    e: &Exchange,
    now: UnixTime,
) -> Result<Exchanged, StoreError> {
    if !tx.codes().consume(&e.code, now).await? {
        return Ok(Exchanged::CodeUsed);
    }
    if !tx.grants().touch(&e.grant_id, now).await? {
        return Ok(Exchanged::GrantRevoked);
    }
    tx.tokens().insert_access(&e.access).await?;
    if let Some(refresh) = &e.refresh {
        tx.tokens().insert_refresh(refresh).await?;
    }
    Ok(Exchanged::Written)
}

/// What a user's answer to a device challenge writes (RFC 8628 §3.3): the challenge gets the
/// verifier that starts the login, and the device code is marked verified.
#[derive(Debug, Clone)]
pub struct DeviceAcceptance {
    pub challenge_hash: String,
    pub device_code: TokenHash,
    pub verifier_hash: String,
    pub now: UnixTime,
}

/// Answers a device challenge in `tx`: marks the device code verified (if it is pending and
/// live: one statement, so a user code works once however many answers race), then binds it and
/// the verifier to the challenge (if the challenge is unanswered). False when the code was not
/// pending; `Conflict` (rolling back the whole unit) when the challenge was answered meanwhile.
pub async fn write_device_acceptance(
    tx: &mut dyn Tx,
    a: &DeviceAcceptance,
) -> Result<bool, StoreError> {
    if !tx.device_codes().verify(&a.device_code, a.now).await? {
        return Ok(false);
    }
    if !tx
        .device_codes()
        .answer_challenge(&a.challenge_hash, &a.device_code, &a.verifier_hash)
        .await?
    {
        return Err(StoreError::Conflict(
            "the device challenge was answered already".into(),
        ));
    }
    Ok(true)
}

/// What redeeming an authorized device code writes: like [`Exchange`], with the device code.
#[derive(Debug, Clone)]
pub struct DeviceRedemption {
    pub device_code: TokenHash,
    pub client_id: String,
    pub grant_id: String,
    pub access: AccessTokenRecord,
    pub refresh: Option<RefreshTokenRecord>,
}

/// Redeems a device code in `tx`: marks it used (if it is this client's, authorized and live:
/// one statement, so it works once), then its grant, then (only if the grant is still granted)
/// stores the tokens.
pub async fn write_device_redemption(
    tx: &mut dyn Tx,
    r: &DeviceRedemption,
    now: UnixTime,
) -> Result<Exchanged, StoreError> {
    if !tx
        .device_codes()
        .redeem(&r.device_code, &r.client_id, now)
        .await?
    {
        return Ok(Exchanged::CodeUsed);
    }
    if !tx.grants().touch(&r.grant_id, now).await? {
        return Ok(Exchanged::GrantRevoked);
    }
    tx.tokens().insert_access(&r.access).await?;
    if let Some(refresh) = &r.refresh {
        tx.tokens().insert_refresh(refresh).await?;
    }
    Ok(Exchanged::Written)
}

/// Revokes an access token in `tx`, and appends `audit` when this call revoked it; false when it
/// was revoked already, or does not exist.
pub async fn write_revocation(
    tx: &mut dyn Tx,
    hash: &TokenHash,
    now: UnixTime,
    audit: &AuditEntry,
) -> Result<bool, StoreError> {
    let revoked = tx.tokens().revoke_access(hash, now).await?;
    if revoked {
        tx.audit().append(audit).await?;
        tx.revocation_log()
            .append(
                RevocationKind::Token,
                &RevokedIds::token(hash.as_str()),
                now,
            )
            .await?;
    }
    Ok(revoked)
}

/// Revokes every token of the family `family_id` in `tx` (what revoking a refresh token does,
/// RFC 7009 §2.1), and records `audit` if any was revoked; whether any was.
pub async fn write_family_revocation(
    tx: &mut dyn Tx,
    family_id: &str,
    now: UnixTime,
    audit: &AuditEntry,
) -> Result<bool, StoreError> {
    let revoked = tx.tokens().revoke_family(family_id, now).await? > 0;
    if revoked {
        tx.audit().append(audit).await?;
        tx.revocation_log()
            .append(RevocationKind::Family, &RevokedIds::family(family_id), now)
            .await?;
    }
    Ok(revoked)
}

/// Rotates a refresh token in `tx`: claims it (marks it used, if it is neither used nor
/// revoked), marks its grant used, stores the new tokens and keeps the response. False when the
/// claim failed, and nothing was written.
pub async fn write_rotation(
    tx: &mut dyn Tx,
    r: &Rotation,
    now: UnixTime,
) -> Result<bool, StoreError> {
    if !tx.tokens().claim_refresh(&r.hash, now).await? {
        return Ok(false);
    }
    if let Some(grant_id) = &r.grant_id {
        // Found revoked only if the claim was too: a grant is revoked with its tokens, in one
        // transaction.
        tx.grants().touch(grant_id, now).await?;
    }
    tx.tokens().insert_access(&r.access).await?;
    if let Some(refresh) = &r.refresh {
        tx.tokens().insert_refresh(refresh).await?;
    }
    tx.tokens().set_successor(&r.hash, &r.successor).await?;
    Ok(true)
}

/// A unit of work: the repositories, then `commit`.
#[async_trait]
pub trait Tx: Send {
    fn clients(&mut self) -> &mut dyn ClientRepository;
    fn signing_keys(&mut self) -> &mut dyn SigningKeyRepository;
    fn audit(&mut self) -> &mut dyn AuditRepository;
    fn login_sessions(&mut self) -> &mut dyn LoginSessionRepository;
    fn flows(&mut self) -> &mut dyn FlowRepository;
    fn grants(&mut self) -> &mut dyn GrantRepository;
    fn codes(&mut self) -> &mut dyn CodeRepository;
    fn tokens(&mut self) -> &mut dyn TokenRepository;
    fn client_assertions(&mut self) -> &mut dyn ClientAssertionRepository;
    fn accounts(&mut self) -> &mut dyn AccountRepository;
    fn apps(&mut self) -> &mut dyn AppRepository;
    fn console_sessions(&mut self) -> &mut dyn ConsoleSessionRepository;
    fn login_throttle(&mut self) -> &mut dyn LoginThrottleRepository;
    fn logouts(&mut self) -> &mut dyn LogoutRepository;
    fn revocation_log(&mut self) -> &mut dyn RevocationLogRepository;
    fn janitor(&mut self) -> &mut dyn JanitorRepository;
    fn device_codes(&mut self) -> &mut dyn DeviceRepository;
    fn trusted_issuers(&mut self) -> &mut dyn TrustedIssuerRepository;
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

#[async_trait]
pub trait ClientRepository: Send {
    /// Inserts a client; `Conflict` when its id exists.
    async fn insert(&mut self, client: &Client) -> Result<(), StoreError>;
    async fn get(&mut self, id: &str) -> Result<Option<Client>, StoreError>;
    /// The client, when it exists and is active: what a write made for it needs of its row.
    /// With `lock`, the row stays locked against other writers until the transaction ends.
    async fn active(&mut self, id: &str, lock: bool) -> Result<Option<ActiveClient>, StoreError>;
    /// Clients ordered by id, after `after`, at most `limit`.
    async fn list(
        &mut self,
        filter: &ClientFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Client>, StoreError>;
    /// Replaces a client's fields; false when it does not exist.
    async fn update(&mut self, client: &Client) -> Result<bool, StoreError>;
    /// Deletes a client and, by cascade, everything that belongs to it; false when it did not exist.
    async fn delete(&mut self, id: &str) -> Result<bool, StoreError>;
    async fn insert_secret(&mut self, secret: &ClientSecretRecord) -> Result<(), StoreError>;
    /// The client's secrets, newest first.
    async fn secrets(&mut self, client_id: &str) -> Result<Vec<ClientSecretRecord>, StoreError>;
    /// Deletes the given secret; false when it did not exist.
    async fn delete_secret(&mut self, client_id: &str, secret_id: &str)
    -> Result<bool, StoreError>;
    /// True while what a cached authentication rested on still holds: the client exists, is
    /// active and its row is the version cached (`updated_at`), and the secret that matched (if
    /// any) exists and has not expired at `now`.
    async fn guard_holds(&mut self, guard: &ClientGuard, now: UnixTime)
    -> Result<bool, StoreError>;
    /// Records the hash of a dynamically registered client's registration access token.
    async fn insert_registration(
        &mut self,
        client_id: &str,
        token_hash: &str,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// The hash of the client's registration access token, when it registered itself.
    async fn registration_token(&mut self, client_id: &str) -> Result<Option<String>, StoreError>;
    /// Writes a metadata-document client as its document describes it now: inserted, or its
    /// fields replaced (its status kept). Only a `metadata_document` client is ever replaced.
    async fn upsert_document_client(&mut self, client: &Client) -> Result<(), StoreError>;
}

#[async_trait]
pub trait SigningKeyRepository: Send {
    async fn insert(&mut self, key: &StoredSigningKey) -> Result<(), StoreError>;
    /// Every key that is not expired at `now`, newest first.
    async fn list(&mut self, now: UnixTime) -> Result<Vec<StoredSigningKey>, StoreError>;
    /// Marks a key retired: it no longer signs, and it leaves the JWKS at `expires_at`.
    async fn retire(
        &mut self,
        kid: &str,
        retired_at: UnixTime,
        expires_at: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Deletes keys that expired before `now`; returns how many.
    async fn delete_expired(&mut self, now: UnixTime) -> Result<u64, StoreError>;
}

#[async_trait]
pub trait AuditRepository: Send {
    async fn append(&mut self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// Entries newest first.
    async fn list(
        &mut self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}

#[async_trait]
pub trait LoginSessionRepository: Send {
    async fn insert(&mut self, session: &LoginSession) -> Result<(), StoreError>;
    /// The unexpired session whose cookie hashes to `cookie_hash`.
    async fn by_cookie(
        &mut self,
        cookie_hash: &str,
        now: UnixTime,
    ) -> Result<Option<LoginSession>, StoreError>;
    async fn get(&mut self, id: &str) -> Result<Option<LoginSession>, StoreError>;
    /// Moves a session's expiry; false when it does not exist.
    async fn extend(&mut self, id: &str, expires_at: UnixTime) -> Result<bool, StoreError>;
    async fn delete(&mut self, id: &str) -> Result<bool, StoreError>;
    /// Ends every session of a subject; returns how many.
    async fn delete_by_subject(&mut self, subject: &str) -> Result<u64, StoreError>;
    /// The subject's login sessions, newest first.
    async fn list_for_subject(&mut self, subject: &str) -> Result<Vec<LoginSession>, StoreError>;
    /// Records that the session was used at `now`.
    async fn touch(&mut self, id: &str, now: UnixTime) -> Result<bool, StoreError>;
    /// Deletes up to `limit` sessions that expired before `now`.
    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError>;
}

/// Which bearer value of a flow a lookup is by (each stored as a hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKey {
    LoginChallenge,
    LoginVerifier,
    ConsentChallenge,
    ConsentVerifier,
}

#[async_trait]
pub trait FlowRepository: Send {
    async fn insert(&mut self, flow: &FlowRecord) -> Result<(), StoreError>;
    async fn find(&mut self, key: FlowKey, hash: &str) -> Result<Option<FlowRecord>, StoreError>;
    /// Writes `flow` (its state, bearer hashes, subject and data) only if the stored flow is in
    /// state `from`: the single-use guard of every challenge and verifier. False when another
    /// request moved it first.
    async fn transition(&mut self, flow: &FlowRecord, from: FlowState) -> Result<bool, StoreError>;
    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError>;
}

#[async_trait]
pub trait GrantRepository: Send {
    /// Records a consent: updates the subject's active grant for the client in place (keeping
    /// its id and creation time), or inserts `grant`. Returns the id of the grant written.
    async fn upsert_active(&mut self, grant: &Grant) -> Result<String, StoreError>;
    async fn get(&mut self, id: &str) -> Result<Option<Grant>, StoreError>;
    /// The subject's unrevoked grant for a client.
    async fn active(&mut self, subject: &str, client_id: &str)
    -> Result<Option<Grant>, StoreError>;
    /// Every unrevoked grant of a subject, newest first.
    async fn list_active(&mut self, subject: &str) -> Result<Vec<Grant>, StoreError>;
    /// Every unrevoked grant of a client, oldest first.
    async fn list_for_client(&mut self, client_id: &str) -> Result<Vec<Grant>, StoreError>;
    /// Replaces an unrevoked grant's scope and accounts; false when it is revoked or gone.
    async fn narrow(
        &mut self,
        id: &str,
        scope: &Scope,
        accounts: &[String],
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Revokes the subject's grants (for one client, or all); returns the revoked grant ids.
    async fn revoke_for_subject(
        &mut self,
        subject: &str,
        client_id: Option<&str>,
        now: UnixTime,
    ) -> Result<Vec<String>, StoreError>;
    /// Records that a grant was used, if it exists and is not revoked; whether it was.
    async fn touch(&mut self, id: &str, now: UnixTime) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait CodeRepository: Send {
    async fn insert(&mut self, code: &AuthorizationCode) -> Result<(), StoreError>;
    async fn get(&mut self, hash: &TokenHash) -> Result<Option<AuthorizationCode>, StoreError>;
    /// Marks an unconsumed code consumed, in one statement; false when it was consumed already.
    async fn consume(&mut self, hash: &TokenHash, now: UnixTime) -> Result<bool, StoreError>;
    /// Deletes up to `limit` codes that expired before `now`.
    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError>;
}

#[async_trait]
pub trait TokenRepository: Send {
    async fn insert_access(&mut self, token: &AccessTokenRecord) -> Result<(), StoreError>;
    async fn insert_refresh(&mut self, token: &RefreshTokenRecord) -> Result<(), StoreError>;
    async fn access(
        &mut self,
        hash: &TokenHash,
    ) -> Result<Option<TokenLookup<AccessTokenRecord>>, StoreError>;
    async fn refresh(
        &mut self,
        hash: &TokenHash,
    ) -> Result<Option<TokenLookup<RefreshTokenRecord>>, StoreError>;
    /// Claims an unused, unrevoked refresh token for rotation: marks it used, in one statement.
    /// False when another request claimed it first (on PostgreSQL, a concurrent claim waits for
    /// the first one's transaction to end, then sees it used).
    async fn claim_refresh(&mut self, hash: &TokenHash, now: UnixTime) -> Result<bool, StoreError>;
    /// Keeps the (sealed) response a refresh token was exchanged for, for the grace period.
    async fn set_successor(&mut self, hash: &TokenHash, successor: &str) -> Result<(), StoreError>;
    /// Counts one more retry of a used refresh token whose response is still kept; false when the
    /// token already had `max` retries, or was revoked.
    async fn count_reuse(&mut self, hash: &TokenHash, max: u32) -> Result<bool, StoreError>;
    /// Forgets kept responses of refresh tokens used before `used_before`; returns how many.
    async fn expire_successors(
        &mut self,
        used_before: UnixTime,
        limit: u32,
    ) -> Result<u64, StoreError>;
    async fn revoke_access(&mut self, hash: &TokenHash, now: UnixTime) -> Result<bool, StoreError>;
    /// Revokes every access and refresh token of a family; returns how many.
    async fn revoke_family(&mut self, family_id: &str, now: UnixTime) -> Result<u64, StoreError>;
    /// Revokes every token of a grant; returns how many.
    async fn revoke_grant(&mut self, grant_id: &str, now: UnixTime) -> Result<u64, StoreError>;
    /// Revokes every token of a client; returns how many.
    async fn revoke_client(&mut self, client_id: &str, now: UnixTime) -> Result<u64, StoreError>;
    /// Deletes up to `limit` access tokens that expired before `now`, and up to `limit` refresh
    /// tokens whose whole family has (the janitor's rules, `crate::janitor`).
    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError>;
}

#[async_trait]
pub trait ClientAssertionRepository: Send {
    /// Records a client assertion's `jti` until it expires; false when it was seen before.
    async fn record_jti(
        &mut self,
        jti_hash: &str,
        client_id: &str,
        expires_at: UnixTime,
    ) -> Result<bool, StoreError>;
    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError>;
}

/// Accounts, users and memberships.
#[async_trait]
pub trait AccountRepository: Send {
    /// Inserts an account; `Conflict` when its id exists.
    async fn insert_account(&mut self, account: &Account) -> Result<(), StoreError>;
    async fn account(&mut self, id: &str) -> Result<Option<Account>, StoreError>;
    /// Every account, by name.
    async fn list_accounts(&mut self) -> Result<Vec<Account>, StoreError>;
    /// Sets the account's policy on public third-party apps; false when it does not exist.
    async fn set_block_third_party_apps(
        &mut self,
        id: &str,
        block: bool,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Inserts a user; `Conflict` when the id or the email exists.
    async fn insert_user(&mut self, user: &User) -> Result<(), StoreError>;
    async fn user(&mut self, id: &str) -> Result<Option<User>, StoreError>;
    /// The user with this (lower-case) email.
    async fn user_by_email(&mut self, email: &str) -> Result<Option<User>, StoreError>;
    /// Adds a member, or changes the member's role.
    async fn upsert_membership(&mut self, membership: &Membership) -> Result<(), StoreError>;
    /// The accounts a user belongs to, by account name.
    async fn memberships_of(&mut self, user_id: &str)
    -> Result<Vec<AccountMembership>, StoreError>;
    /// The members of an account, by email.
    async fn members(&mut self, account_id: &str) -> Result<Vec<Member>, StoreError>;
}

/// The platform's side of apps.
#[async_trait]
pub trait AppRepository: Send {
    /// Inserts a profile; `Conflict` when the client has one.
    async fn insert(&mut self, app: &AppProfile) -> Result<(), StoreError>;
    async fn get(&mut self, client_id: &str) -> Result<Option<AppProfile>, StoreError>;
    /// Replaces a profile's fields; `Conflict` when its verified domain belongs to another app;
    /// false when it does not exist.
    async fn update(&mut self, app: &AppProfile) -> Result<bool, StoreError>;
    /// The apps of an account, oldest first.
    async fn list_for_account(&mut self, account_id: &str) -> Result<Vec<AppProfile>, StoreError>;
    /// Every app, newest first, at most `limit`.
    async fn list_all(&mut self, limit: u32) -> Result<Vec<AppProfile>, StoreError>;
    /// How many distinct users hold an unrevoked grant for the client.
    async fn user_count(&mut self, client_id: &str) -> Result<i64, StoreError>;
    /// The names of the apps users already trust, other than `except`: with why, `verified`
    /// (domain verified), `public`, or `first-party` (owned by a platform account).
    async fn trusted_names(
        &mut self,
        except: Option<&str>,
    ) -> Result<Vec<(String, String)>, StoreError>;
}

/// Sessions of the platform's pages.
#[async_trait]
pub trait ConsoleSessionRepository: Send {
    async fn insert(&mut self, session: &ConsoleSession) -> Result<(), StoreError>;
    /// The unexpired session whose cookie hashes to `cookie_hash`.
    async fn by_cookie(
        &mut self,
        cookie_hash: &str,
        now: UnixTime,
    ) -> Result<Option<ConsoleSession>, StoreError>;
    async fn delete(&mut self, id: &str) -> Result<bool, StoreError>;
    /// Deletes up to `limit` sessions that expired before `now`.
    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError>;
}

/// Failed login counters, kept in the database so the backoff holds across replicas.
#[async_trait]
pub trait LoginThrottleRepository: Send {
    async fn get(&mut self, key: &str) -> Result<Option<ThrottleRecord>, StoreError>;
    /// Counts one more failure under `key`, in one statement; returns the new count.
    async fn record_failure(&mut self, key: &str, now: UnixTime) -> Result<i64, StoreError>;
    /// Takes back one failure counted under `key` (an attempt that turned out right), in one
    /// statement; returns the count left.
    async fn forgive(&mut self, key: &str) -> Result<i64, StoreError>;
    /// Refuses logins under `key` until `until`.
    async fn block(&mut self, key: &str, until: UnixTime) -> Result<(), StoreError>;
    /// Forgets the failures under `key`.
    async fn clear(&mut self, key: &str) -> Result<(), StoreError>;
    /// Deletes up to `limit` records whose last failure is before `before`.
    async fn purge(&mut self, before: UnixTime, limit: u32) -> Result<u64, StoreError>;
}

/// Logout: the logout requests (challenge, verifier), the apps that took part in each login
/// session, and the outbox of back-channel logout tokens.
#[async_trait]
pub trait LogoutRepository: Send {
    async fn insert_request(&mut self, request: &LogoutRecord) -> Result<(), StoreError>;
    /// A logout request by the hash of its challenge or of its verifier.
    async fn find_request(
        &mut self,
        key: LogoutKey,
        hash: &str,
    ) -> Result<Option<LogoutRecord>, StoreError>;
    /// Writes the request's state and verifier while it is still in state `from`.
    async fn transition_request(
        &mut self,
        request: &LogoutRecord,
        from: LogoutState,
    ) -> Result<bool, StoreError>;
    /// Records that `client_id` signed in through the login session `sid` (once).
    async fn join_session(
        &mut self,
        sid: &str,
        client_id: &str,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// The apps that signed in through the login session `sid`, with their logout channels.
    async fn participants(&mut self, sid: &str) -> Result<Vec<Participant>, StoreError>;
    /// Forgets which apps took part in the login session `sid`.
    async fn forget_session(&mut self, sid: &str) -> Result<u64, StoreError>;
    async fn enqueue(&mut self, delivery: &BackchannelDelivery) -> Result<(), StoreError>;
    /// Deliveries due at `now`, oldest first.
    async fn due(
        &mut self,
        now: UnixTime,
        limit: u32,
    ) -> Result<Vec<BackchannelDelivery>, StoreError>;
    /// Takes a due delivery for one sender until `until`: false when another took it first.
    async fn claim(
        &mut self,
        delivery: &BackchannelDelivery,
        until: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Records an attempt's outcome: its count, when to try again (`None`: never), when it was
    /// delivered and the last error.
    async fn record_attempt(&mut self, delivery: &BackchannelDelivery) -> Result<(), StoreError>;
    /// The deliveries of the logout of session `sid`, for an operator (and the tests).
    async fn deliveries(&mut self, sid: &str) -> Result<Vec<BackchannelDelivery>, StoreError>;
}

/// Which login sessions a logout ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionSelector {
    /// One session (its `sid`), of `subject`.
    One { sid: String, subject: String },
    /// Every session of a subject.
    Subject(String),
}

/// What ending login sessions writes: the logout request's last step (when a browser asked),
/// the sessions' end, and one back-channel delivery per app with a back-channel URI.
#[derive(Debug, Clone)]
pub struct LogoutWrite {
    pub sessions: SessionSelector,
    /// The logout request's step, written only while it is still in the state it started from.
    pub request: Option<(LogoutRecord, LogoutState)>,
    /// The prefix of the deliveries' ids (each is `{batch}.{n}`, and the logout token's `jti`).
    pub batch: String,
    pub now: UnixTime,
    /// What the revocation log records: a logout, or sessions ended by the admin API.
    pub kind: crate::revocations::RevocationKind,
}

/// What a logout ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogoutWritten {
    /// The sessions ended (`sid`s).
    pub ended: Vec<String>,
    /// The apps that took part in them, per session.
    pub participants: Vec<(String, Participant)>,
    /// The back-channel deliveries queued.
    pub queued: usize,
}

/// Ends login sessions in `tx`: the one definition of a logout, whoever asks (the browser
/// through the logout challenge, the admin API, the "Your sessions" page). `None`, and nothing
/// written, when the logout request was no longer where its step started.
pub async fn write_logout(
    tx: &mut dyn Tx,
    w: &LogoutWrite,
) -> Result<Option<LogoutWritten>, StoreError> {
    if let Some((request, from)) = &w.request
        && !tx.logouts().transition_request(request, *from).await?
    {
        return Ok(None);
    }
    let sessions: Vec<(String, String)> = match &w.sessions {
        SessionSelector::One { sid, subject } => vec![(sid.clone(), subject.clone())],
        SessionSelector::Subject(subject) => tx
            .login_sessions()
            .list_for_subject(subject)
            .await?
            .into_iter()
            .map(|s| (s.id, s.subject))
            .collect(),
    };
    let mut out = LogoutWritten::default();
    for (sid, subject) in sessions {
        for p in tx.logouts().participants(&sid).await? {
            if let Some(uri) = &p.channels.backchannel_uri {
                out.queued += 1;
                tx.logouts()
                    .enqueue(&BackchannelDelivery {
                        id: format!("{}.{}", w.batch, out.queued),
                        client_id: p.client_id.clone(),
                        uri: uri.clone(),
                        subject: subject.clone(),
                        sid: sid.clone(),
                        include_sid: p.channels.backchannel_session_required,
                        attempts: 0,
                        next_attempt_at: Some(w.now),
                        delivered_at: None,
                        last_error: None,
                        created_at: w.now,
                    })
                    .await?;
            }
            out.participants.push((sid.clone(), p));
        }
        tx.logouts().forget_session(&sid).await?;
        tx.login_sessions().delete(&sid).await?;
        out.ended.push(sid);
    }
    // Last in the unit, as the revocation log asks.
    if !out.ended.is_empty() {
        let ids = match &w.sessions {
            SessionSelector::One { sid, .. } => crate::revocations::RevokedIds::sid(sid),
            SessionSelector::Subject(subject) => crate::revocations::RevokedIds::subject(subject),
        };
        tx.revocation_log().append(w.kind, &ids, w.now).await?;
    }
    Ok(Some(out))
}

/// The revocation log (see [`crate::revocations`]).
#[async_trait]
pub trait RevocationLogRepository: Send {
    /// Appends an entry under the next cursor, in this unit of work: the one place a revocation
    /// is logged. Call it last in the unit (on PostgreSQL it holds the log's lock until the
    /// transaction ends, so that cursors are drawn in commit order).
    async fn append(
        &mut self,
        kind: RevocationKind,
        ids: &RevokedIds,
        at: UnixTime,
    ) -> Result<(), StoreError>;
    /// The entries after `after`, oldest first, at most `limit`.
    async fn after(&mut self, after: i64, limit: u32) -> Result<Vec<RevocationEntry>, StoreError>;
    /// The greatest cursor in the log (0 when it is empty; the janitor always keeps the newest
    /// entry, so this never goes back).
    async fn last_cursor(&mut self) -> Result<i64, StoreError>;
    /// Deletes up to `limit` entries older than `before`, never the newest one.
    async fn purge(&mut self, before: UnixTime, limit: u32) -> Result<u64, StoreError>;
}

/// The janitor's one definition of a dead row, per kind (see [`crate::janitor`]).
#[async_trait]
pub trait JanitorRepository: Send {
    /// Deletes up to `limit` rows of `kind` dead at `cutoffs` (for kept refresh responses:
    /// forgets them); how many.
    async fn purge_dead(
        &mut self,
        kind: crate::janitor::DeadKind,
        cutoffs: &crate::janitor::Cutoffs,
        limit: u32,
    ) -> Result<u64, StoreError>;
    /// How many rows of `kind` are dead at `cutoffs`; changes nothing.
    async fn count_dead(
        &mut self,
        kind: crate::janitor::DeadKind,
        cutoffs: &crate::janitor::Cutoffs,
    ) -> Result<u64, StoreError>;
}

/// Device codes and device challenges (RFC 8628). Every state change is one conditional
/// statement, so it holds across replicas.
#[async_trait]
pub trait DeviceRepository: Send {
    /// Inserts a device code; `Conflict` when its user code is taken.
    async fn insert_code(&mut self, code: &DeviceCodeRecord) -> Result<(), StoreError>;
    async fn code(&mut self, hash: &TokenHash) -> Result<Option<DeviceCodeRecord>, StoreError>;
    async fn code_by_user_code(
        &mut self,
        user_code_hash: &str,
    ) -> Result<Option<DeviceCodeRecord>, StoreError>;
    /// Marks a pending, live code verified; false when it was not.
    async fn verify(&mut self, hash: &TokenHash, now: UnixTime) -> Result<bool, StoreError>;
    /// Marks a verified code authorized, with `data`; false when it was not verified.
    async fn authorize(
        &mut self,
        hash: &TokenHash,
        data: &DeviceCodeData,
    ) -> Result<bool, StoreError>;
    /// Marks a verified code denied; false when it was not verified.
    async fn deny(&mut self, hash: &TokenHash) -> Result<bool, StoreError>;
    /// Records a poll at `now`, only if the last one recorded is still `last` (so two polls
    /// racing count as too fast); `slow_down` adds 5 seconds to the code's interval.
    async fn record_poll(
        &mut self,
        hash: &TokenHash,
        last: Option<UnixTime>,
        now: UnixTime,
        slow_down: bool,
    ) -> Result<bool, StoreError>;
    /// Marks an authorized, live code of `client_id` used; false when it was not.
    async fn redeem(
        &mut self,
        hash: &TokenHash,
        client_id: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    async fn insert_challenge(&mut self, challenge: &DeviceChallenge) -> Result<(), StoreError>;
    async fn challenge(&mut self, hash: &str) -> Result<Option<DeviceChallenge>, StoreError>;
    async fn challenge_by_verifier(
        &mut self,
        verifier_hash: &str,
    ) -> Result<Option<DeviceChallenge>, StoreError>;
    /// Counts one more wrong user code for an unanswered challenge; the new count.
    async fn count_failure(&mut self, hash: &str) -> Result<i64, StoreError>;
    /// Binds a device code and a verifier to an unanswered challenge; false when it was
    /// answered already.
    async fn answer_challenge(
        &mut self,
        hash: &str,
        device_code: &TokenHash,
        verifier_hash: &str,
    ) -> Result<bool, StoreError>;
    /// Marks a challenge's verifier used; false when it was used already.
    async fn use_verifier(
        &mut self,
        verifier_hash: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Deletes up to `limit` codes and up to `limit` challenges that expired before `now`.
    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError>;
}

/// Issuers trusted for the JWT bearer grant (RFC 7523 §2.1).
#[async_trait]
pub trait TrustedIssuerRepository: Send {
    /// Inserts a trust relationship; `Conflict` when the issuer already trusts this key for
    /// this subject.
    async fn insert(
        &mut self,
        trust: &crate::oauth::jwt_bearer::TrustedIssuer,
    ) -> Result<(), StoreError>;
    async fn get(
        &mut self,
        id: &str,
    ) -> Result<Option<crate::oauth::jwt_bearer::TrustedIssuer>, StoreError>;
    /// Every trust relationship (of `issuer`, when given), oldest first.
    async fn list(
        &mut self,
        issuer: Option<&str>,
    ) -> Result<Vec<crate::oauth::jwt_bearer::TrustedIssuer>, StoreError>;
    /// The trust relationships of `issuer`: what an assertion of it is checked against.
    async fn for_issuer(
        &mut self,
        issuer: &str,
    ) -> Result<Vec<crate::oauth::jwt_bearer::TrustedIssuer>, StoreError>;
    /// Deletes a trust relationship; false when it did not exist.
    async fn delete(&mut self, id: &str) -> Result<bool, StoreError>;
}
