//! The replay cache for signed gateway requests: a nonce is accepted once
//! while a request carrying it could still pass the clock-skew check. In
//! Redis when configured, so a request replayed to another API node is
//! refused too; in-process otherwise.

use std::fmt;

use aura_engine::identity::dualtoken::{InMemoryNonceStore, NonceStore, NonceUse};
use aura_engine::time::Timestamp;
use redis::aio::ConnectionManager;

#[derive(Debug, thiserror::Error)]
#[error("the shared replay cache (Redis) did not answer: {0}")]
pub struct ReplayCacheUnavailable(String);

pub enum ReplayCache {
    Local(InMemoryNonceStore),
    Redis(ConnectionManager),
}

impl fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplayCache::Local(_) => "ReplayCache::Local",
            ReplayCache::Redis(_) => "ReplayCache::Redis",
        })
    }
}

impl ReplayCache {
    pub fn local() -> ReplayCache {
        ReplayCache::Local(InMemoryNonceStore::default())
    }

    /// Records the nonce; false if it was already used.
    pub async fn first_use(
        &self,
        nonce: &NonceUse,
        now: Timestamp,
    ) -> Result<bool, ReplayCacheUnavailable> {
        match self {
            ReplayCache::Local(store) => Ok(store.first_use(&nonce.key, nonce.remember_until, now)),
            ReplayCache::Redis(conn) => {
                let ttl_ms = (nonce.remember_until.0 - now.0).max(1);
                let mut conn = conn.clone();
                let set: Option<String> = redis::cmd("SET")
                    .arg(format!("aura:nonce:{}", nonce.key))
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| ReplayCacheUnavailable(e.to_string()))?;
                Ok(set.is_some())
            }
        }
    }
}
