//! Small shared helpers: wall-clock timestamps in the API server's formats, the
//! scaled controller clock, random names and UIDs, JSON path helpers.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use crate::jsonfmt::to_json;

use serde_json::{Map, Value};

/// RFC 3339 with second precision, as `metav1.Time` serialises.
pub fn now_rfc3339() -> String {
    fmt_secs(jiff::Timestamp::now())
}

/// RFC 3339 with microseconds, as `metav1.MicroTime` serialises (event `eventTime`).
pub fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}

/// Formats a timestamp with second precision.
pub fn fmt_secs(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses an RFC 3339 timestamp; `None` if it does not parse.
pub fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    s.parse::<jiff::Timestamp>().ok()
}

/// Adds whole seconds to an RFC 3339 timestamp string (used for deletionTimestamp).
pub fn add_secs(s: &str, secs: i64) -> String {
    match parse_time(s) {
        Some(t) => match t.checked_add(jiff::SignedDuration::from_secs(secs)) {
            Ok(t2) => fmt_secs(t2),
            Err(_) => s.to_string(),
        },
        None => s.to_string(),
    }
}

/// The scale applied to every controller and kubelet delay. Shared and settable
/// at run time.
#[derive(Clone, Debug)]
pub struct TimeScale(Arc<AtomicU64>);

impl TimeScale {
    pub fn new(scale: f64) -> Self {
        TimeScale(Arc::new(AtomicU64::new(scale.to_bits())))
    }
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    pub fn set(&self, scale: f64) {
        self.0.store(scale.to_bits(), Ordering::Relaxed);
    }
    /// Scales a simulated duration to the real one to wait (at least 1 ms for
    /// a non-zero duration, so periodic work never spins).
    pub fn scaled(&self, d: Duration) -> Duration {
        let s = d.mul_f64(self.get().max(0.0));
        if !d.is_zero() && s < Duration::from_millis(1) {
            Duration::from_millis(1)
        } else {
            s
        }
    }
    /// Scales a number of simulated seconds.
    pub fn secs(&self, s: f64) -> Duration {
        self.scaled(Duration::from_secs_f64(s.max(0.0)))
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// A random 64-bit number (SipHash with random keys over a counter).
pub fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// A version-4 UUID string.
pub fn new_uid() -> String {
    let a = random_u64();
    let b = random_u64();
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The alphabet apimachinery's `rand.String` and `SafeEncodeString` use.
pub const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `n` random characters from [`ALPHANUMS`] (generateName suffixes).
pub fn random_suffix(n: usize) -> String {
    let mut out = String::with_capacity(n);
    let mut r = random_u64();
    for i in 0..n {
        if i % 8 == 7 {
            r = random_u64();
        }
        out.push(ALPHANUMS[(r % ALPHANUMS.len() as u64) as usize] as char);
        r /= ALPHANUMS.len() as u64;
    }
    out
}

/// `SafeEncodeString`: maps every byte onto [`ALPHANUMS`].
pub fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| ALPHANUMS[b as usize % ALPHANUMS.len()] as char)
        .collect()
}

/// FNV-1a 32-bit hash.
pub fn fnv32a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in data {
        h ^= *b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h
}

/// Follows a dotted path of object keys.
pub fn path<'a>(v: &'a Value, p: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for k in p {
        cur = cur.get(*k)?;
    }
    Some(cur)
}

pub fn path_str<'a>(v: &'a Value, p: &[&str]) -> Option<&'a str> {
    path(v, p).and_then(|v| v.as_str())
}

pub fn path_i64(v: &Value, p: &[&str]) -> Option<i64> {
    path(v, p).and_then(|v| v.as_i64())
}

/// Mutable access to an object at `p`, creating empty objects on the way.
pub fn path_mut<'a>(v: &'a mut Value, p: &[&str]) -> &'a mut Value {
    let mut cur = v;
    for k in p {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        cur = match cur {
            Value::Object(m) => m.entry(k.to_string()).or_insert(Value::Null),
            _ => unreachable!("just made an object"),
        };
    }
    cur
}

/// Sets `p` to `val`, creating parents.
pub fn set_path(v: &mut Value, p: &[&str], val: Value) {
    *path_mut(v, p) = val;
}

/// Removes the key at `p`, if present.
pub fn remove_path(v: &mut Value, p: &[&str]) -> Option<Value> {
    let (last, parents) = p.split_last()?;
    let mut cur = v;
    for k in parents {
        cur = cur.get_mut(*k)?;
    }
    cur.as_object_mut()?.remove(*last)
}

/// `metadata.name`.
pub fn name_of(v: &Value) -> &str {
    path_str(v, &["metadata", "name"]).unwrap_or("")
}

/// `metadata.namespace`.
pub fn namespace_of(v: &Value) -> &str {
    path_str(v, &["metadata", "namespace"]).unwrap_or("")
}

/// `metadata.uid`.
pub fn uid_of(v: &Value) -> &str {
    path_str(v, &["metadata", "uid"]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_shape() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }

    #[test]
    fn time_arith() {
        assert_eq!(add_secs("2026-11-23T04:56:10Z", 2), "2026-11-23T04:56:12Z");
    }
}
