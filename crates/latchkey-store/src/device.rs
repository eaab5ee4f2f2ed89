//! Device codes and device challenges (RFC 8628). Every change of state is one conditional
//! statement.

use async_trait::async_trait;
use latchkey_core::clock::UnixTime;
use latchkey_core::crypto::TokenHash;
use latchkey_core::oauth::device::{
    DeviceChallenge, DeviceCodeData, DeviceCodeRecord, DeviceCodeState, SLOW_DOWN_STEP,
};
use latchkey_core::store::{DeviceRepository, StoreError};

use crate::sql::{Columns, from_json, params, parse_enum, to_json};
use crate::tx::SqlTx;

macro_rules! code_columns {
    () => {
        "device_code_hash, user_code_hash, client_id, state, data, poll_interval, polled_at, \
         created_at, expires_at"
    };
}

macro_rules! challenge_columns {
    () => {
        "challenge_hash, csrf, address, failures, device_code_hash, verifier_hash, \
         verifier_used_at, created_at, expires_at"
    };
}

fn code_from_row(r: &dyn Columns) -> Result<DeviceCodeRecord, StoreError> {
    Ok(DeviceCodeRecord {
        device_code_hash: TokenHash(r.text("device_code_hash")?),
        user_code_hash: r.text("user_code_hash")?,
        client_id: r.text("client_id")?,
        state: parse_enum("state", &r.text("state")?, DeviceCodeState::parse)?,
        data: from_json("data", &r.text("data")?)?,
        poll_interval: r.int("poll_interval")?,
        polled_at: r.opt_int("polled_at")?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
    })
}

fn challenge_from_row(r: &dyn Columns) -> Result<DeviceChallenge, StoreError> {
    Ok(DeviceChallenge {
        challenge_hash: r.text("challenge_hash")?,
        csrf: r.text("csrf")?,
        address: r.text("address")?,
        failures: r.int("failures")?,
        device_code_hash: r.opt_text("device_code_hash")?,
        verifier_hash: r.opt_text("verifier_hash")?,
        verifier_used_at: r.opt_int("verifier_used_at")?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
    })
}

fn failures_from_row(r: &dyn Columns) -> Result<i64, StoreError> {
    r.int("failures")
}

#[async_trait]
impl DeviceRepository for SqlTx<'_> {
    async fn insert_code(&mut self, c: &DeviceCodeRecord) -> Result<(), StoreError> {
        self.execute(
            concat!(
                "INSERT INTO device_codes (",
                code_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            params![
                c.device_code_hash.as_str(),
                &c.user_code_hash,
                &c.client_id,
                c.state.as_str(),
                to_json(&c.data),
                c.poll_interval,
                c.polled_at,
                c.created_at,
                c.expires_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn code(&mut self, hash: &TokenHash) -> Result<Option<DeviceCodeRecord>, StoreError> {
        self.optional(
            concat!(
                "SELECT ",
                code_columns!(),
                " FROM device_codes WHERE device_code_hash = $1"
            ),
            params![hash.as_str()],
            code_from_row,
        )
        .await
    }

    async fn code_by_user_code(
        &mut self,
        user_code_hash: &str,
    ) -> Result<Option<DeviceCodeRecord>, StoreError> {
        self.optional(
            concat!(
                "SELECT ",
                code_columns!(),
                " FROM device_codes WHERE user_code_hash = $1"
            ),
            params![user_code_hash],
            code_from_row,
        )
        .await
    }

    async fn verify(&mut self, hash: &TokenHash, now: UnixTime) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "UPDATE device_codes SET state = 'verified' \
                 WHERE device_code_hash = $1 AND state = 'pending' AND expires_at > $2",
                params![hash.as_str(), now],
            )
            .await?;
        Ok(done == 1)
    }

    async fn authorize(
        &mut self,
        hash: &TokenHash,
        data: &DeviceCodeData,
    ) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "UPDATE device_codes SET state = 'authorized', data = $2 \
                 WHERE device_code_hash = $1 AND state = 'verified'",
                params![hash.as_str(), to_json(data)],
            )
            .await?;
        Ok(done == 1)
    }

    async fn deny(&mut self, hash: &TokenHash) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "UPDATE device_codes SET state = 'denied' \
                 WHERE device_code_hash = $1 AND state = 'verified'",
                params![hash.as_str()],
            )
            .await?;
        Ok(done == 1)
    }

    async fn record_poll(
        &mut self,
        hash: &TokenHash,
        last: Option<UnixTime>,
        now: UnixTime,
        slow_down: bool,
    ) -> Result<bool, StoreError> {
        let step = if slow_down { SLOW_DOWN_STEP } else { 0 };
        let done = self
            .execute(
                "UPDATE device_codes SET polled_at = $3, poll_interval = poll_interval + $4 \
                 WHERE device_code_hash = $1 AND COALESCE(polled_at, -1) = $2",
                params![hash.as_str(), last.unwrap_or(-1), now, step],
            )
            .await?;
        Ok(done == 1)
    }

    async fn redeem(
        &mut self,
        hash: &TokenHash,
        client_id: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "UPDATE device_codes SET state = 'used' \
                 WHERE device_code_hash = $1 AND client_id = $2 AND state = 'authorized' \
                 AND expires_at > $3",
                params![hash.as_str(), client_id, now],
            )
            .await?;
        Ok(done == 1)
    }

    async fn insert_challenge(&mut self, c: &DeviceChallenge) -> Result<(), StoreError> {
        self.execute(
            concat!(
                "INSERT INTO device_challenges (",
                challenge_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            params![
                &c.challenge_hash,
                &c.csrf,
                &c.address,
                c.failures,
                c.device_code_hash.as_deref(),
                c.verifier_hash.as_deref(),
                c.verifier_used_at,
                c.created_at,
                c.expires_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn challenge(&mut self, hash: &str) -> Result<Option<DeviceChallenge>, StoreError> {
        self.optional(
            concat!(
                "SELECT ",
                challenge_columns!(),
                " FROM device_challenges WHERE challenge_hash = $1"
            ),
            params![hash],
            challenge_from_row,
        )
        .await
    }

    async fn challenge_by_verifier(
        &mut self,
        verifier_hash: &str,
    ) -> Result<Option<DeviceChallenge>, StoreError> {
        self.optional(
            concat!(
                "SELECT ",
                challenge_columns!(),
                " FROM device_challenges WHERE verifier_hash = $1"
            ),
            params![verifier_hash],
            challenge_from_row,
        )
        .await
    }

    async fn count_failure(&mut self, hash: &str) -> Result<i64, StoreError> {
        Ok(self
            .optional(
                "UPDATE device_challenges SET failures = failures + 1 \
                 WHERE challenge_hash = $1 AND verifier_hash IS NULL RETURNING failures",
                params![hash],
                failures_from_row,
            )
            .await?
            .unwrap_or(0))
    }

    async fn answer_challenge(
        &mut self,
        hash: &str,
        device_code: &TokenHash,
        verifier_hash: &str,
    ) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "UPDATE device_challenges SET device_code_hash = $2, verifier_hash = $3 \
                 WHERE challenge_hash = $1 AND verifier_hash IS NULL",
                params![hash, device_code.as_str(), verifier_hash],
            )
            .await?;
        Ok(done == 1)
    }

    async fn use_verifier(
        &mut self,
        verifier_hash: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "UPDATE device_challenges SET verifier_used_at = $2 \
                 WHERE verifier_hash = $1 AND verifier_used_at IS NULL",
                params![verifier_hash, now],
            )
            .await?;
        Ok(done == 1)
    }

    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError> {
        let codes = self
            .purge_expired_kind(latchkey_core::janitor::DeadKind::DeviceCodes, now, limit)
            .await?;
        let challenges = self
            .purge_expired_kind(
                latchkey_core::janitor::DeadKind::DeviceChallenges,
                now,
                limit,
            )
            .await?;
        Ok(codes + challenges)
    }
}
