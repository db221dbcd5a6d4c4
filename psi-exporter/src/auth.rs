//! Basic auth against the web configuration's bcrypt hashes.
//!
//! bcrypt is slow by design (77 ms a check at cost 10 on the test VM), so a check is cached
//! both ways: Prometheus sends the same credentials every scrape and pays
//! once, and a client repeating a wrong password pays nothing. Checks of new
//! credentials run one at a time, off the server's thread, and at most
//! [`CHECKS_PER_SECOND`]; a few requests wait their turn (and find the
//! verdict cached if theirs were the credentials just checked), the others
//! get `429` at once, so a client guessing passwords cannot take the CPU. The caches hold keyed
//! 128-bit digests of (user, password, hash), never a password, and forget
//! everything when full.

use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use base64::Engine as _;
use hyper::header::HeaderValue;
use tokio::sync::Semaphore;

use crate::stats::{Denied, Stats};

/// New credentials checked per second, at most (and in a burst).
pub const CHECKS_PER_SECOND: u32 = 4;

/// Entries kept in each cache before it is cleared.
const CACHE: usize = 1024;

/// Requests waiting for a check before more are refused at once.
const MAX_WAITING: usize = 16;

/// What [`Auth::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let the request through.
    Allowed,
    /// `401` for this reason.
    Refused(Denied),
}

#[derive(Debug)]
struct Caches {
    allowed: HashSet<u128>,
    denied: HashSet<u128>,
    /// Tokens for new checks, refilled at [`CHECKS_PER_SECOND`].
    tokens: f64,
    refilled: Instant,
}

/// The checker: caches, the rate of new checks, the counters.
#[derive(Debug)]
pub struct Auth {
    keys: (std::hash::RandomState, std::hash::RandomState),
    caches: Mutex<Caches>,
    /// The one check running, held (by its blocking thread) until bcrypt
    /// returns, even if the request that asked is gone.
    one_at_a_time: Arc<Semaphore>,
    /// Places in the queue for it; a permit is given back on drop, also by a
    /// request whose client went away while it waited.
    queue: Semaphore,
    stats: Arc<Stats>,
}

/// `user:password` from an `Authorization: Basic …` header.
fn credentials(header: Option<&HeaderValue>) -> Option<(String, String)> {
    let value = header?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// A hash that no password matches in practice, checked for unknown users
/// so that they take as long as known ones.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| bcrypt::hash("psi-exporter: no such user", 10).unwrap_or_default())
}

impl Auth {
    /// A checker counting into `stats`.
    pub fn new(stats: Arc<Stats>) -> Auth {
        Auth {
            keys: Default::default(),
            caches: Mutex::new(Caches {
                allowed: HashSet::new(),
                denied: HashSet::new(),
                tokens: f64::from(CHECKS_PER_SECOND),
                refilled: Instant::now(),
            }),
            one_at_a_time: Arc::new(Semaphore::new(1)),
            queue: Semaphore::new(MAX_WAITING),
            stats,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Caches> {
        self.caches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn digest(&self, parts: [&str; 3]) -> u128 {
        let one = |state: &std::hash::RandomState| state.hash_one(parts);
        (u128::from(one(&self.keys.0)) << 64) | u128::from(one(&self.keys.1))
    }

    /// The cached verdict on `key`, if any.
    fn cached(&self, key: u128) -> Option<Verdict> {
        let caches = self.lock();
        if caches.allowed.contains(&key) {
            return Some(Verdict::Allowed);
        }
        let denied = caches.denied.contains(&key);
        drop(caches);
        denied.then(|| self.refuse(Denied::Wrong))
    }

    /// Takes a token for a new check, if one is left this second.
    fn spend(&self) -> bool {
        let mut caches = self.lock();
        let now = Instant::now();
        let per_second = f64::from(CHECKS_PER_SECOND);
        let elapsed = now.duration_since(caches.refilled).as_secs_f64();
        caches.tokens = (caches.tokens + elapsed * per_second).min(per_second);
        caches.refilled = now;
        if caches.tokens < 1.0 {
            return false;
        }
        caches.tokens -= 1.0;
        true
    }

    fn refuse(&self, why: Denied) -> Verdict {
        self.stats.denied(why);
        Verdict::Refused(why)
    }

    /// Checks a request's `Authorization` header against `users` (user to
    /// bcrypt hash); with no users, every request is allowed.
    pub async fn check(
        &self,
        users: &BTreeMap<String, String>,
        header: Option<&HeaderValue>,
    ) -> Verdict {
        if users.is_empty() {
            return Verdict::Allowed;
        }
        let Some((user, password)) = credentials(header) else {
            return self.refuse(Denied::Missing);
        };
        let hash = users.get(&user).cloned();
        let key = self.digest([&user, &password, hash.as_deref().unwrap_or("")]);
        if let Some(verdict) = self.cached(key) {
            return verdict;
        }
        // One check at a time; a few wait their turn, the rest are refused
        // at once rather than holding their connections.
        let Ok(place) = self.queue.try_acquire() else {
            return self.refuse(Denied::Busy);
        };
        let permit = self.one_at_a_time.clone().acquire_owned().await;
        drop(place);
        let Ok(permit) = permit else {
            return self.refuse(Denied::Busy);
        };
        // The same credentials may have been checked while this one waited
        // (a scraper's first connections all come at once).
        if let Some(verdict) = self.cached(key) {
            return verdict;
        }
        if !self.spend() {
            return self.refuse(Denied::Busy);
        }
        let known = hash.is_some();
        let checked = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let hash = hash.unwrap_or_else(|| dummy_hash().to_owned());
            bcrypt::verify(password, &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let ok = checked && known;
        let mut caches = self.lock();
        let cache = if ok {
            &mut caches.allowed
        } else {
            &mut caches.denied
        };
        if cache.len() >= CACHE {
            cache.clear();
        }
        cache.insert(key);
        drop(caches);
        if ok {
            Verdict::Allowed
        } else {
            self.refuse(Denied::Wrong)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future as _;

    fn header(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).expect("a header value")
    }

    fn users() -> BTreeMap<String, String> {
        // Cost 4: the lowest, to keep the test fast.
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        BTreeMap::from([("prometheus".to_owned(), hash)])
    }

    #[tokio::test(flavor = "current_thread")]
    async fn right_wrong_missing_and_cached() {
        let stats = Arc::new(Stats::default());
        let auth = Auth::new(stats.clone());
        let users = users();
        let ok = header("prometheus", "s3cret");
        assert_eq!(auth.check(&users, Some(&ok)).await, Verdict::Allowed);
        // Cached: allowed again though no check is left to spend.
        auth.lock().tokens = 0.0;
        assert_eq!(auth.check(&users, Some(&ok)).await, Verdict::Allowed);
        assert_eq!(
            auth.check(&users, Some(&header("prometheus", "guess")))
                .await,
            Verdict::Refused(Denied::Busy),
            "new credentials beyond the rate are refused without a check"
        );
        auth.lock().tokens = 4.0;
        let wrong = header("prometheus", "guess");
        assert_eq!(
            auth.check(&users, Some(&wrong)).await,
            Verdict::Refused(Denied::Wrong)
        );
        auth.lock().tokens = 0.0;
        assert_eq!(
            auth.check(&users, Some(&wrong)).await,
            Verdict::Refused(Denied::Wrong),
            "a repeated wrong password is refused from the cache"
        );
        auth.lock().tokens = 4.0;
        assert_eq!(
            auth.check(&users, Some(&header("nobody", "s3cret"))).await,
            Verdict::Refused(Denied::Wrong)
        );
        for bad in ["Bearer abc", "Basic !!!", "Basic"] {
            let h = HeaderValue::from_static(bad);
            assert_eq!(
                auth.check(&users, Some(&h)).await,
                Verdict::Refused(Denied::Missing),
                "{bad}"
            );
        }
        assert_eq!(
            auth.check(&users, None).await,
            Verdict::Refused(Denied::Missing)
        );
        assert_eq!(
            auth.check(&BTreeMap::new(), None).await,
            Verdict::Allowed,
            "no users: no authentication"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn requests_dropped_while_waiting_give_their_place_back() {
        let auth = Auth::new(Arc::new(Stats::default()));
        let users = users();
        // The check is taken; every waiter is then dropped (its client gone).
        let held = auth.one_at_a_time.clone().acquire_owned().await;
        for i in 0..MAX_WAITING * 2 {
            let h = header("prometheus", &format!("guess{i}"));
            let waiting = auth.check(&users, Some(&h));
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            let mut waiting = std::pin::pin!(waiting);
            let _ = waiting.as_mut().poll(&mut cx);
        }
        drop(held);
        auth.lock().tokens = 4.0;
        let ok = header("prometheus", "s3cret");
        assert_eq!(
            auth.check(&users, Some(&ok)).await,
            Verdict::Allowed,
            "the queue is empty again"
        );
    }

    #[test]
    fn a_password_may_hold_colons() {
        let h = header("u", "a:b:c");
        assert_eq!(
            credentials(Some(&h)),
            Some(("u".to_owned(), "a:b:c".to_owned()))
        );
    }
}
