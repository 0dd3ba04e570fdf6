//! Telemetry: Prometheus metrics, request ids, structured logs.

pub mod config;
pub mod metrics;
pub mod tracing;

use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderValue;

pub use metrics::Metrics;

pub const REQUEST_ID: &str = "x-request-id";

/// The client's request id when it is well formed (1–128 characters of
/// `[A-Za-z0-9._:-]`), otherwise a fresh one.
pub fn request_id(from_client: Option<&HeaderValue>) -> HeaderValue {
    if let Some(value) = from_client
        && let Ok(text) = value.to_str()
        && (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        return value.clone();
    }
    HeaderValue::from_str(&new_id()).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// 128 bits as hex: a per-process random seed mixed with a counter (unique within the
/// process, unpredictable across processes), without a random-number dependency.
fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let seed = SEED.get_or_init(std::collections::hash_map::RandomState::new);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut a = seed.build_hasher();
    a.write_u64(n);
    let mut b = seed.build_hasher();
    b.write_u64(!n);
    format!("{:016x}{:016x}", a.finish(), b.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_well_formed_ids_and_replaces_others() {
        let good = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(request_id(Some(&good)), good);
        let bad = HeaderValue::from_static("has space");
        assert_ne!(request_id(Some(&bad)), bad);
        let long = HeaderValue::from_str(&"a".repeat(200)).expect("ascii");
        assert_eq!(request_id(Some(&long)).len(), 32);
        assert_ne!(request_id(None), request_id(None));
    }
}
