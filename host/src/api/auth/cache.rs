//! The token validation cache: what Keystone answered about a user token, remembered for at
//! most `ttl` and never past the token's own expiry, bounded to `capacity` entries (when
//! full: expired entries go first, then the oldest). Tokens are kept only as SHA-256 digests.
//! Time is passed in, so expiry is unit-tested without sleeping.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

type Key = [u8; 32];

struct Entry<V> {
    value: V,
    inserted: Instant,
    fresh_until: Instant,
}

/// A bounded map from token to validation outcome with per-entry expiry.
pub struct TokenCache<V> {
    ttl: Duration,
    capacity: usize,
    entries: HashMap<Key, Entry<V>>,
}

fn key(token: &str) -> Key {
    Sha256::digest(token.as_bytes()).into()
}

impl<V: Clone> TokenCache<V> {
    /// A cache keeping entries `ttl` at most; `ttl` zero or `capacity` zero keeps nothing.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        TokenCache {
            ttl,
            capacity,
            entries: HashMap::new(),
        }
    }

    /// The remembered outcome for `token`, unless it has gone stale at `now`.
    pub fn get(&mut self, token: &str, now: Instant) -> Option<V> {
        let k = key(token);
        match self.entries.get(&k) {
            Some(e) if now < e.fresh_until => Some(e.value.clone()),
            Some(_) => {
                self.entries.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Remember `value` for `token` from `now` until `now + ttl`, or `expires` if sooner.
    pub fn insert(&mut self, token: &str, value: V, now: Instant, expires: Option<Instant>) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let mut fresh_until = now + self.ttl;
        if let Some(expires) = expires {
            fresh_until = fresh_until.min(expires);
        }
        if fresh_until <= now {
            return;
        }
        let k = key(token);
        if !self.entries.contains_key(&k) && self.entries.len() >= self.capacity {
            self.entries.retain(|_, e| now < e.fresh_until);
            if self.entries.len() >= self.capacity {
                let oldest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.inserted)
                    .map(|(k, _)| *k);
                if let Some(oldest) = oldest {
                    self.entries.remove(&oldest);
                }
            }
        }
        self.entries.insert(
            k,
            Entry {
                value,
                inserted: now,
                fresh_until,
            },
        );
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn entries_expire_after_the_ttl() {
        let t0 = Instant::now();
        let mut c = TokenCache::new(10 * S, 100);
        c.insert("tok", 1, t0, None);
        assert_eq!(c.get("tok", t0), Some(1));
        assert_eq!(c.get("tok", t0 + 9 * S), Some(1));
        assert_eq!(c.get("tok", t0 + 10 * S), None);
        assert!(c.is_empty(), "a stale entry is dropped when read");
        assert_eq!(c.get("other", t0), None);
    }

    #[test]
    fn a_token_is_never_remembered_past_its_own_expiry() {
        let t0 = Instant::now();
        let mut c = TokenCache::new(300 * S, 100);
        c.insert("short", "v", t0, Some(t0 + 5 * S));
        assert_eq!(c.get("short", t0 + 4 * S), Some("v"));
        assert_eq!(c.get("short", t0 + 5 * S), None);
        // Already expired: not stored at all.
        c.insert("dead", "v", t0 + 10 * S, Some(t0 + 5 * S));
        assert!(c.is_empty());
        // A later expiry than the ttl: the ttl bounds it.
        c.insert("long", "v", t0, Some(t0 + 3600 * S));
        assert_eq!(c.get("long", t0 + 299 * S), Some("v"));
        assert_eq!(c.get("long", t0 + 300 * S), None);
    }

    #[test]
    fn the_cache_is_bounded_dropping_expired_then_oldest() {
        let t0 = Instant::now();
        let mut c = TokenCache::new(100 * S, 3);
        c.insert("a", 1, t0, Some(t0 + S));
        c.insert("b", 2, t0 + S, None);
        c.insert("c", 3, t0 + 2 * S, None);
        // Full: "a" has expired, so it goes and the others stay.
        c.insert("d", 4, t0 + 3 * S, None);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("a", t0 + 3 * S), None);
        assert_eq!(c.get("b", t0 + 3 * S), Some(2));
        // Full of fresh entries: the oldest ("b") goes.
        c.insert("e", 5, t0 + 4 * S, None);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("b", t0 + 4 * S), None);
        for (k, v) in [("c", 3), ("d", 4), ("e", 5)] {
            assert_eq!(c.get(k, t0 + 4 * S), Some(v), "{k}");
        }
        // Replacing an existing key never evicts another.
        c.insert("e", 6, t0 + 5 * S, None);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("e", t0 + 5 * S), Some(6));
        assert_eq!(c.get("c", t0 + 5 * S), Some(3));
    }

    #[test]
    fn a_zero_ttl_disables_the_cache() {
        let t0 = Instant::now();
        let mut c = TokenCache::new(Duration::ZERO, 10);
        c.insert("a", 1, t0, None);
        assert_eq!(c.get("a", t0), None);
        let mut c = TokenCache::new(S, 0);
        c.insert("a", 1, t0, None);
        assert!(c.is_empty());
    }
}
