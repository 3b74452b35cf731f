//! An in-process cache of sessions and principals in front of [`PgIdentityStore`], and of API
//! keys and instance tokens in front of [`PgCredentialStore`], so the per-request `session()`,
//! `principal()`, `api_key()` and `instance_token()` calls rarely reach the database.
//!
//! Coherence:
//! - every mutating method delegates to the store, then drops the affected entries here at once;
//! - every mutating SQL path runs `pg_notify('whatpro_iam', ..)` in its transaction, and the
//!   listener task ([`CachedIdentityStore::spawn_listener`]) drops the named entries on every
//!   instance; while that listener is not connected the cache is bypassed, and each
//!   (re)connection starts from an empty cache;
//! - a load that raced an invalidation of its key (or a clear) is not stored: per-key-slot
//!   epochs and a generation counter are checked under the shard lock, and entries expire after a TTL as a safety net.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::StreamExt;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;
use whatpro_iam::{
    ApiKeyId, ApiKeyPage, ApiKeyRecord, AuditContext, ChatwootProfile, CredentialStore,
    IdentityStore, InstanceTokenRecord, KeyChange, KeyDenial, LoginRecord, NewApiKey, Principal,
    RefreshRotation, RotateOutcome, SessionId, SessionRecord, SessionRevocation, StoreError,
    TenantScope,
};
use whatpro_kernel::{Limit, UserId};

use crate::credentials::PgCredentialStore;
use crate::iam::{NOTIFY_CHANNEL, PgIdentityStore};

/// `application_name` of the listener's connection (visible in `pg_stat_activity`).
pub const LISTENER_APPLICATION_NAME: &str = "whatpro-iam-listener";
/// Number of independently locked shards per map.
const SHARDS: usize = 16;
/// Number of invalidation counters per map (keys share them by hash).
const EPOCH_SLOTS: usize = 1024;
/// Bound on opening the listener's connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// With no notification for this long, the listener checks its connection.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// Bound on the heartbeat query.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);
/// First and longest wait before reconnecting.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Size and lifetime of cached entries.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    /// Most sessions held, and most principals held (arbitrary entries are evicted beyond it).
    pub capacity: usize,
    /// An entry is not served after this long, whatever happened.
    pub ttl: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            ttl: Duration::from_secs(60),
        }
    }
}

struct Entry<V> {
    value: V,
    stored: Instant,
}

/// Seeded fast hashing for the shard choice and the maps (keys are ids from verified
/// credentials, read on every authenticated request).
type FastHash = foldhash::fast::RandomState;

/// One shard's map.
type ShardMap<K, V> = HashMap<K, Entry<V>, FastHash>;

/// A bounded map split into independently locked shards.
struct Shards<K, V> {
    shards: Vec<RwLock<ShardMap<K, V>>>,
    per_shard: usize,
    hasher: FastHash,
    /// Bumped when a key hashing here is invalidated; a load that saw another value is not
    /// stored.
    epochs: Vec<AtomicU64>,
}

impl<K: Hash + Eq + Copy, V: Clone> Shards<K, V> {
    fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(ShardMap::default()))
                .collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: FastHash::default(),
            epochs: (0..EPOCH_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn shard(&self, key: &K) -> &RwLock<ShardMap<K, V>> {
        let index = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        &self.shards[index]
    }

    fn slot(&self, key: &K) -> &AtomicU64 {
        let hash = self.hasher.hash_one(key) >> 16;
        let index = usize::try_from(hash % EPOCH_SLOTS as u64).unwrap_or(0);
        &self.epochs[index]
    }

    /// The invalidation counter of `key`, read before loading it.
    fn epoch(&self, key: &K) -> u64 {
        self.slot(key).load(Ordering::SeqCst)
    }

    fn get(&self, key: &K, ttl: Duration) -> Option<V> {
        let shard = self
            .shard(key)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard
            .get(key)
            .filter(|entry| entry.stored.elapsed() < ttl)
            .map(|entry| entry.value.clone())
    }

    /// Stores `value` unless `key` was invalidated since its epoch was `seen`, or
    /// `still_valid()` fails, both checked while the shard is write-locked.
    fn insert_if(&self, key: K, value: V, seen: u64, still_valid: impl FnOnce() -> bool) {
        let mut shard = self
            .shard(&key)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if self.epoch(&key) != seen || !still_valid() {
            return;
        }
        if shard.len() >= self.per_shard
            && !shard.contains_key(&key)
            && let Some(victim) = shard.keys().next().copied()
        {
            shard.remove(&victim);
        }
        shard.insert(
            key,
            Entry {
                value,
                stored: Instant::now(),
            },
        );
    }

    /// Drops `key` and makes in-flight loads of it unstorable.
    fn invalidate(&self, key: &K) {
        self.slot(key).fetch_add(1, Ordering::SeqCst);
        self.shard(key)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    fn clear(&self) {
        for shard in &self.shards {
            shard
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

/// The shared state of one instance's cache.
struct IamCache {
    sessions: Shards<SessionId, Arc<SessionRecord>>,
    principals: Shards<UserId, Arc<Principal>>,
    api_keys: Shards<ApiKeyId, ApiKeyRecord>,
    instance_tokens: Shards<Uuid, InstanceTokenRecord>,
    ttl: Duration,
    /// Bumped by every clear; a load that saw another value is not stored.
    generation: AtomicU64,
    /// False while a listener exists but is not connected: reads then bypass the cache.
    usable: AtomicBool,
    /// Whether the listener is connected and listening.
    listening: AtomicBool,
    /// How many times the listener has started listening.
    connections: AtomicU64,
}

impl IamCache {
    fn new(settings: CacheSettings) -> Self {
        Self {
            sessions: Shards::new(settings.capacity),
            principals: Shards::new(settings.capacity),
            api_keys: Shards::new(settings.capacity),
            instance_tokens: Shards::new(settings.capacity),
            ttl: settings.ttl,
            generation: AtomicU64::new(0),
            usable: AtomicBool::new(true),
            listening: AtomicBool::new(false),
            connections: AtomicU64::new(0),
        }
    }

    fn usable(&self) -> bool {
        self.usable.load(Ordering::SeqCst)
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn still_valid(&self, generation: u64) -> bool {
        self.usable() && self.generation() == generation
    }

    fn drop_session(&self, id: SessionId) {
        self.sessions.invalidate(&id);
    }

    fn drop_user(&self, user: UserId) {
        self.principals.invalidate(&user);
    }

    fn drop_api_key(&self, key: ApiKeyId) {
        self.api_keys.invalidate(&key);
    }

    fn drop_instance_token(&self, jti: Uuid) {
        self.instance_tokens.invalidate(&jti);
    }

    fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.sessions.clear();
        self.principals.clear();
        self.api_keys.clear();
        self.instance_tokens.clear();
    }

    fn go_offline(&self) {
        self.usable.store(false, Ordering::SeqCst);
        self.listening.store(false, Ordering::SeqCst);
        self.clear();
    }

    fn go_online(&self) {
        self.clear();
        self.usable.store(true, Ordering::SeqCst);
        self.listening.store(true, Ordering::SeqCst);
        self.connections.fetch_add(1, Ordering::SeqCst);
    }

    /// Applies one notification payload; anything unreadable clears everything.
    fn apply(&self, payload: &str) {
        let parsed: Option<Value> = serde_json::from_str(payload).ok();
        let session = parsed
            .as_ref()
            .and_then(|v| v.get("session"))
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
            .map(SessionId::from_uuid);
        let user = parsed
            .as_ref()
            .and_then(|v| v.get("user"))
            .and_then(Value::as_i64)
            .map(UserId::new);
        let uuid_of = |field: &str| {
            parsed
                .as_ref()
                .and_then(|v| v.get(field))
                .and_then(Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok())
        };
        let api_key = uuid_of("api_key").map(ApiKeyId::from_uuid);
        let instance_token = uuid_of("instance_token");
        if session.is_none() && user.is_none() && api_key.is_none() && instance_token.is_none() {
            tracing::warn!(
                payload,
                "unreadable identity notification; clearing the cache"
            );
            self.clear();
            return;
        }
        if let Some(session) = session {
            self.drop_session(session);
        }
        if let Some(user) = user {
            self.drop_user(user);
        }
        if let Some(key) = api_key {
            self.drop_api_key(key);
        }
        if let Some(jti) = instance_token {
            self.drop_instance_token(jti);
        }
    }
}

/// Drops entries of one instance's identity cache; handed to other adapters (e.g.
/// `PgMemberRepository`) so their changes take effect locally at once.
#[derive(Clone)]
pub struct IamInvalidator(Arc<IamCache>);

impl std::fmt::Debug for IamInvalidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IamInvalidator").finish_non_exhaustive()
    }
}

impl IamInvalidator {
    /// Drops the user's cached principal.
    pub fn user(&self, user: UserId) {
        self.0.drop_user(user);
    }

    /// Drops the cached session.
    pub fn session(&self, session: SessionId) {
        self.0.drop_session(session);
    }

    /// Drops the cached API key.
    pub fn api_key(&self, key: ApiKeyId) {
        self.0.drop_api_key(key);
    }

    /// Drops the cached instance token.
    pub fn instance_token(&self, jti: Uuid) {
        self.0.drop_instance_token(jti);
    }

    /// Drops everything.
    pub fn clear(&self) {
        self.0.clear();
    }
}

/// [`IdentityStore`] that serves `session()` and `principal()` from memory and delegates the
/// rest to [`PgIdentityStore`]. Run [`CachedIdentityStore::spawn_listener`] once per process
/// when several instances share the database.
pub struct CachedIdentityStore {
    inner: PgIdentityStore,
    cache: Arc<IamCache>,
}

impl std::fmt::Debug for CachedIdentityStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedIdentityStore")
            .field("sessions", &self.cache.sessions.len())
            .field("principals", &self.cache.principals.len())
            .field("listening", &self.is_listening())
            .finish_non_exhaustive()
    }
}

impl CachedIdentityStore {
    /// A cache with [`CacheSettings::default`] (100k entries, 60 s) in front of `inner`.
    pub fn new(inner: PgIdentityStore) -> Self {
        Self::with_settings(inner, CacheSettings::default())
    }

    /// A cache with explicit settings in front of `inner`.
    pub fn with_settings(inner: PgIdentityStore, settings: CacheSettings) -> Self {
        Self {
            inner,
            cache: Arc::new(IamCache::new(settings)),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &PgIdentityStore {
        &self.inner
    }

    /// A handle that drops entries of this cache.
    pub fn invalidator(&self) -> IamInvalidator {
        IamInvalidator(Arc::clone(&self.cache))
    }

    /// Whether the listener is connected (then other instances' changes arrive).
    pub fn is_listening(&self) -> bool {
        self.cache.listening.load(Ordering::SeqCst)
    }

    /// How many times the listener has (re)connected and started listening.
    pub fn listener_connections(&self) -> u64 {
        self.cache.connections.load(Ordering::SeqCst)
    }

    /// Number of cached sessions and principals.
    pub fn cached_entries(&self) -> (usize, usize) {
        (self.cache.sessions.len(), self.cache.principals.len())
    }

    /// A [`CredentialStore`] in front of `inner` that shares this cache (and its listener):
    /// API keys and instance tokens are served from memory and dropped by the same
    /// notifications.
    pub fn credential_store(&self, inner: PgCredentialStore) -> CachedCredentialStore {
        CachedCredentialStore {
            inner,
            cache: Arc::clone(&self.cache),
        }
    }

    /// Starts the task that keeps this cache coherent with other instances: it holds a
    /// dedicated connection to `database_url`, runs `LISTEN whatpro_iam` and drops the entries
    /// named by each notification. Until it listens, and whenever its connection is lost, the
    /// cache is bypassed and emptied; it reconnects with backoff. Aborting the task leaves the
    /// cache bypassed. Needs a Tokio runtime; call it once.
    pub fn spawn_listener(&self, database_url: impl Into<String>) -> tokio::task::JoinHandle<()> {
        let cache = Arc::clone(&self.cache);
        cache.go_offline();
        let url = database_url.into();
        tokio::spawn(listen_forever(cache, url))
    }

    fn cached_session(&self, id: SessionId) -> Option<Arc<SessionRecord>> {
        if self.cache.usable() {
            self.cache.sessions.get(&id, self.cache.ttl)
        } else {
            None
        }
    }

    fn cached_principal(&self, user: UserId) -> Option<Arc<Principal>> {
        if self.cache.usable() {
            self.cache.principals.get(&user, self.cache.ttl)
        } else {
            None
        }
    }
}

/// Marks the cache offline when the listener task ends (including when it is aborted).
struct OfflineOnDrop(Arc<IamCache>);

impl Drop for OfflineOnDrop {
    fn drop(&mut self) {
        self.0.go_offline();
    }
}

async fn listen_forever(cache: Arc<IamCache>, url: String) {
    let _offline = OfflineOnDrop(Arc::clone(&cache));
    let mut backoff = MIN_BACKOFF;
    loop {
        let error = listen_once(&cache, &url, &mut backoff).await;
        cache.go_offline();
        tracing::warn!(%error, retry_in_ms = backoff.as_millis(), "identity cache listener disconnected; cache bypassed until it reconnects");
        tokio::time::sleep(with_jitter(backoff)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Up to a quarter more, so instances do not reconnect in lockstep.
fn with_jitter(base: Duration) -> Duration {
    let noise = RandomState::new().hash_one(Instant::now());
    let quarter = u64::try_from(base.as_millis() / 4).unwrap_or(0).max(1);
    base + Duration::from_millis(noise % quarter)
}

/// Listens until the connection fails; returns why.
async fn listen_once(cache: &IamCache, url: &str, backoff: &mut Duration) -> String {
    // Scoped here: `RunQueryDsl` is implemented for every type and would shadow atomics' `load`.
    use diesel_async::RunQueryDsl;

    let mut conn =
        match tokio::time::timeout(CONNECT_TIMEOUT, AsyncPgConnection::establish(url)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return format!("connect failed: {e}"),
            Err(_) => return "connect timed out".to_owned(),
        };
    let name = format!("SET application_name = '{LISTENER_APPLICATION_NAME}'");
    if let Err(e) = diesel::sql_query(name).execute(&mut conn).await {
        return format!("setting the application name failed: {e}");
    }
    if let Err(e) = diesel::sql_query(format!("LISTEN {NOTIFY_CHANNEL}"))
        .execute(&mut conn)
        .await
    {
        return format!("LISTEN failed: {e}");
    }
    cache.go_online();
    *backoff = MIN_BACKOFF;
    tracing::info!("identity cache listener connected");
    loop {
        let next = {
            let stream = conn.notifications_stream();
            let mut stream = std::pin::pin!(stream);
            tokio::time::timeout(HEARTBEAT, stream.next()).await
        };
        match next {
            Ok(Some(Ok(notification))) => {
                if notification.channel == NOTIFY_CHANNEL {
                    cache.apply(&notification.payload);
                }
            }
            Ok(Some(Err(e))) => return format!("connection error: {e}"),
            Ok(None) => return "connection closed".to_owned(),
            Err(_) => {
                let ping = diesel::sql_query("SELECT 1").execute(&mut conn);
                match tokio::time::timeout(HEARTBEAT_TIMEOUT, ping).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return format!("heartbeat failed: {e}"),
                    Err(_) => return "heartbeat timed out".to_owned(),
                }
            }
        }
    }
}

#[async_trait]
impl IdentityStore for CachedIdentityStore {
    async fn record_login(&self, login: &LoginRecord) -> Result<Principal, StoreError> {
        let result = self.inner.record_login(login).await;
        self.cache.drop_user(login.profile.user_id);
        self.cache.drop_session(login.session_id);
        result
    }

    async fn sync_memberships(
        &self,
        profile: &ChatwootProfile,
        super_admin: bool,
    ) -> Result<Principal, StoreError> {
        let result = self.inner.sync_memberships(profile, super_admin).await;
        self.cache.drop_user(profile.user_id);
        result
    }

    async fn record_login_failure(
        &self,
        user: Option<UserId>,
        reason: &str,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        self.inner.record_login_failure(user, reason, audit).await
    }

    async fn principal(&self, user: UserId) -> Result<Option<Arc<Principal>>, StoreError> {
        if let Some(principal) = self.cached_principal(user) {
            return Ok(Some(principal));
        }
        let generation = self.cache.generation();
        let epoch = self.cache.principals.epoch(&user);
        let found = self.inner.principal(user).await?;
        if let Some(principal) = &found {
            self.cache
                .principals
                .insert_if(user, Arc::clone(principal), epoch, || {
                    self.cache.still_valid(generation)
                });
        }
        Ok(found)
    }

    async fn session(&self, id: SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        if let Some(session) = self.cached_session(id) {
            return Ok(Some(session));
        }
        let generation = self.cache.generation();
        let epoch = self.cache.sessions.epoch(&id);
        let found = self.inner.session(id).await?;
        if let Some(session) = &found {
            self.cache
                .sessions
                .insert_if(id, Arc::clone(session), epoch, || {
                    self.cache.still_valid(generation)
                });
        }
        Ok(found)
    }

    fn remembered(
        &self,
        session: SessionId,
        user: UserId,
    ) -> Option<(Arc<SessionRecord>, Arc<Principal>)> {
        Some((self.cached_session(session)?, self.cached_principal(user)?))
    }

    async fn session_for_refresh(&self, hash: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
        self.inner.session_for_refresh(hash).await
    }

    async fn rotate_refresh(
        &self,
        rotation: &RefreshRotation,
    ) -> Result<RotateOutcome, StoreError> {
        let outcome = self.inner.rotate_refresh(rotation).await?;
        match &outcome {
            RotateOutcome::Rotated(session) | RotateOutcome::Replayed(session) => {
                self.cache.drop_session(session.id);
            }
            RotateOutcome::Reused(id) => self.cache.drop_session(*id),
            RotateOutcome::Unknown | RotateOutcome::Expired | RotateOutcome::SessionEnded => {}
        }
        Ok(outcome)
    }

    async fn revoke_session(
        &self,
        user: UserId,
        session: SessionId,
        why: SessionRevocation,
        audit: &AuditContext,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let result = self
            .inner
            .revoke_session(user, session, why, audit, now)
            .await;
        self.cache.drop_session(session);
        result
    }

    async fn revoke_other_sessions(
        &self,
        user: UserId,
        keep: SessionId,
        audit: &AuditContext,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let ids = self
            .inner
            .revoke_other_sessions_returning(user, keep, audit, now)
            .await?;
        for id in &ids {
            self.cache.drop_session(*id);
        }
        Ok(u64::try_from(ids.len()).unwrap_or(u64::MAX))
    }

    async fn live_sessions(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        self.inner.live_sessions(user, now).await
    }
}

/// [`CredentialStore`] that serves `api_key()` and `instance_token()` from the identity cache
/// (see [`CachedIdentityStore::credential_store`]) and delegates the rest to
/// [`PgCredentialStore`]; rotations and revocations drop the local copy at once, and their
/// notifications drop it on every other instance.
pub struct CachedCredentialStore {
    inner: PgCredentialStore,
    cache: Arc<IamCache>,
}

impl std::fmt::Debug for CachedCredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedCredentialStore")
            .field("api_keys", &self.cache.api_keys.len())
            .field("instance_tokens", &self.cache.instance_tokens.len())
            .finish_non_exhaustive()
    }
}

impl CachedCredentialStore {
    /// Number of cached API keys and instance tokens.
    pub fn cached_entries(&self) -> (usize, usize) {
        (self.cache.api_keys.len(), self.cache.instance_tokens.len())
    }

    /// The wrapped store.
    pub fn inner(&self) -> &PgCredentialStore {
        &self.inner
    }
}

#[async_trait]
impl CredentialStore for CachedCredentialStore {
    async fn create_api_key(&self, key: &NewApiKey) -> Result<bool, StoreError> {
        self.inner.create_api_key(key).await
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.inner.api_key_by_prefix(prefix).await
    }

    async fn api_key(&self, id: ApiKeyId) -> Result<Option<ApiKeyRecord>, StoreError> {
        if self.cache.usable()
            && let Some(key) = self.cache.api_keys.get(&id, self.cache.ttl)
        {
            return Ok(Some(key));
        }
        let generation = self.cache.generation();
        let epoch = self.cache.api_keys.epoch(&id);
        let found = self.inner.api_key(id).await?;
        if let Some(key) = &found {
            self.cache.api_keys.insert_if(id, key.clone(), epoch, || {
                self.cache.still_valid(generation)
            });
        }
        Ok(found)
    }

    async fn list_api_keys(
        &self,
        scope: &TenantScope,
        after: Option<ApiKeyId>,
        limit: Limit,
    ) -> Result<ApiKeyPage, StoreError> {
        self.inner.list_api_keys(scope, after, limit).await
    }

    async fn rotate_api_key(
        &self,
        scope: &TenantScope,
        id: ApiKeyId,
        secret_hash: &str,
        audit: &AuditContext,
        now: OffsetDateTime,
    ) -> Result<KeyChange, StoreError> {
        let result = self
            .inner
            .rotate_api_key(scope, id, secret_hash, audit, now)
            .await;
        self.cache.drop_api_key(id);
        result
    }

    async fn revoke_api_key(
        &self,
        scope: &TenantScope,
        id: ApiKeyId,
        audit: &AuditContext,
        now: OffsetDateTime,
    ) -> Result<KeyChange, StoreError> {
        let result = self.inner.revoke_api_key(scope, id, audit, now).await;
        self.cache.drop_api_key(id);
        result
    }

    async fn touch_api_key(&self, id: ApiKeyId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.inner.touch_api_key(id, at).await
    }

    async fn record_api_key_denial(
        &self,
        key: &ApiKeyRecord,
        denial: &KeyDenial,
    ) -> Result<(), StoreError> {
        self.inner.record_api_key_denial(key, denial).await
    }

    async fn record_instance_token(
        &self,
        token: &InstanceTokenRecord,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        self.inner.record_instance_token(token, audit).await
    }

    async fn instance_token(&self, id: Uuid) -> Result<Option<InstanceTokenRecord>, StoreError> {
        if self.cache.usable()
            && let Some(token) = self.cache.instance_tokens.get(&id, self.cache.ttl)
        {
            return Ok(Some(token));
        }
        let generation = self.cache.generation();
        let epoch = self.cache.instance_tokens.epoch(&id);
        let found = self.inner.instance_token(id).await?;
        if let Some(token) = &found {
            self.cache
                .instance_tokens
                .insert_if(id, token.clone(), epoch, || {
                    self.cache.still_valid(generation)
                });
        }
        Ok(found)
    }

    async fn revoke_instance_token(
        &self,
        id: Uuid,
        by: UserId,
        audit: &AuditContext,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let result = self.inner.revoke_instance_token(id, by, audit, now).await;
        self.cache.drop_instance_token(id);
        result
    }
}
