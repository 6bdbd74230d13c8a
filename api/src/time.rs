//! The API server's clock: the proposer stamps it into each command; the
//! engine itself never reads a clock.

use aura_engine::Timestamp;

pub fn now_millis() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(d.as_millis()).expect("milliseconds fit in i64")
}

pub fn now() -> Timestamp {
    Timestamp(now_millis())
}
