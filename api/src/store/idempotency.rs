//! Idempotency records: the first response to each (caller, key), replayed
//! for every retry of the same request.

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};

use super::entities::idempotency_record;
use super::{Store, StoreError};

/// A response as recorded for replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedResponse {
    pub status: u16,
    /// The headers a replay must carry (content type, location, ETag).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What to do with a request carrying an Idempotency-Key.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// First time: handle it, then [`Store::finish_idempotent`].
    Fresh,
    /// Seen and finished: replay this.
    Replay(RecordedResponse),
    /// Seen with a different method, path or body.
    Mismatch,
    /// The first request with this key is still being handled.
    InProgress,
    /// The first request with this key was never finished: it claimed the
    /// key longer ago than any request runs, so its server stopped part
    /// way, perhaps after its write took effect.
    Abandoned,
}

impl Store {
    /// Claims `key` for `principal`. A claim left unfinished for longer
    /// than `stale_after_ms` is [`Claim::Abandoned`].
    pub async fn claim_idempotent(
        &self,
        principal: &str,
        key: &str,
        request_digest: &str,
        now: i64,
        stale_after_ms: i64,
    ) -> Result<Claim, StoreError> {
        let insert = idempotency_record::Entity::insert(idempotency_record::ActiveModel {
            principal: Set(principal.to_owned()),
            key: Set(key.to_owned()),
            request_digest: Set(request_digest.to_owned()),
            status: Set(None),
            headers: Set(None),
            body: Set(None),
            created_at: Set(now),
        })
        .exec(self.db())
        .await;
        match insert.map_err(StoreError::from) {
            Ok(_) => return Ok(Claim::Fresh),
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        let Some(rec) =
            idempotency_record::Entity::find_by_id((principal.to_owned(), key.to_owned()))
                .one(self.db())
                .await?
        else {
            // Deleted between the two statements (a failed first attempt):
            // claim again.
            return Box::pin(self.claim_idempotent(
                principal,
                key,
                request_digest,
                now,
                stale_after_ms,
            ))
            .await;
        };
        if rec.request_digest != request_digest {
            return Ok(Claim::Mismatch);
        }
        match (rec.status, rec.body) {
            (Some(status), body) => {
                let headers: Vec<(String, String)> = rec
                    .headers
                    .as_deref()
                    .and_then(|h| serde_json::from_str(h).ok())
                    .unwrap_or_default();
                Ok(Claim::Replay(RecordedResponse {
                    status: u16::try_from(status).unwrap_or(500),
                    headers,
                    body: body.unwrap_or_default(),
                }))
            }
            (None, _) if now - rec.created_at > stale_after_ms => Ok(Claim::Abandoned),
            (None, _) => Ok(Claim::InProgress),
        }
    }

    pub async fn finish_idempotent(
        &self,
        principal: &str,
        key: &str,
        response: &RecordedResponse,
    ) -> Result<(), StoreError> {
        let headers = serde_json::to_string(&response.headers).expect("headers serialize");
        idempotency_record::Entity::update_many()
            .col_expr(
                idempotency_record::Column::Status,
                Expr::value(i32::from(response.status)),
            )
            .col_expr(idempotency_record::Column::Headers, Expr::value(headers))
            .col_expr(
                idempotency_record::Column::Body,
                Expr::value(response.body.clone()),
            )
            .filter(idempotency_record::Column::Principal.eq(principal))
            .filter(idempotency_record::Column::Key.eq(key))
            .exec(self.db())
            .await?;
        Ok(())
    }

    /// Forgets an unfinished claim, so that a retry runs the request again
    /// (the first attempt failed without an effect worth replaying).
    pub async fn release_idempotent(&self, principal: &str, key: &str) -> Result<(), StoreError> {
        idempotency_record::Entity::delete_many()
            .filter(idempotency_record::Column::Principal.eq(principal))
            .filter(idempotency_record::Column::Key.eq(key))
            .filter(idempotency_record::Column::Status.is_null())
            .exec(self.db())
            .await?;
        Ok(())
    }

    /// Drops records of keys first used before `before` (retention),
    /// answered or not: past the retention a key is forgotten whole.
    pub async fn expire_idempotent(&self, before: i64) -> Result<u64, StoreError> {
        let r = idempotency_record::Entity::delete_many()
            .filter(idempotency_record::Column::CreatedAt.lt(before))
            .exec(self.db())
            .await?;
        Ok(r.rows_affected)
    }
}
