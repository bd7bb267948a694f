//! Retries with exponential backoff and jitter, for transfers that failed in a way
//! another try can fix.

use rand::Rng;
use std::future::Future;
use std::time::Duration;

/// Retries of a failed transfer: exponential backoff with jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Tries per transfer, the first included.
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 4, first_backoff: Duration::from_millis(500), max_backoff: Duration::from_secs(10) }
    }
}

impl RetryPolicy {
    /// The wait after failed try number `attempt` (1-based): half of it fixed, half random.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let full = self.first_backoff.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(self.max_backoff);
        full.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

/// Runs `f` until it succeeds, fails in a way `transient` says is final, or the tries run out.
pub async fn with_retry<T, E, F, Fut>(policy: &RetryPolicy, transient: impl Fn(&E) -> bool, mut f: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match f().await {
            Err(e) if transient(&e) && attempt < policy.attempts => {
                tokio::time::sleep(policy.backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let p = RetryPolicy { attempts: 5, first_backoff: Duration::from_millis(100), max_backoff: Duration::from_millis(350) };
        for _ in 0..100 {
            let b1 = p.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100), "{b1:?}");
            let b3 = p.backoff(3);
            assert!(b3 >= Duration::from_millis(175) && b3 <= Duration::from_millis(350), "{b3:?}");
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_and_final_ones_are_not() {
        let p = RetryPolicy { attempts: 3, first_backoff: Duration::from_millis(1), max_backoff: Duration::from_millis(2) };
        let tries = std::cell::Cell::new(0);
        let r: Result<(), &str> = with_retry(
            &p,
            |e| *e == "again",
            || async {
                tries.set(tries.get() + 1);
                Err("again")
            },
        )
        .await;
        assert_eq!((r, tries.get()), (Err("again"), 3));
        tries.set(0);
        let r: Result<(), &str> = with_retry(
            &p,
            |e| *e == "again",
            || async {
                tries.set(tries.get() + 1);
                Err("final")
            },
        )
        .await;
        assert_eq!((r, tries.get()), (Err("final"), 1));
    }
}
