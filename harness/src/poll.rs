//! The one poll loop: for conditions no event announces (a server starting to listen, a process
//! exiting in another namespace), try again at a fixed interval until the answer is the one wanted
//! or the time is up. Each try ends as soon as its answer is known, so the interval alone sets how
//! late a change is seen.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Runs `attempt` every `interval` until `done` holds for its result or `timeout` has passed, and
/// returns the last result (the caller tells a timeout from `done` by looking at it).
pub async fn until<T, F, Fut>(
    timeout: Duration,
    interval: Duration,
    mut attempt: F,
    done: impl Fn(&T) -> bool,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let got = attempt().await;
        if done(&got) || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stops_at_the_wanted_answer_and_returns_the_last_one_on_timeout() {
        let mut n = 0;
        let got = until(
            Duration::from_secs(10),
            Duration::from_millis(50),
            || {
                n += 1;
                let v = n;
                async move { v }
            },
            |v| *v == 3,
        )
        .await;
        assert_eq!(got, 3, "ends on the third try, not before and not after");

        let start = Instant::now();
        let got =
            until(Duration::from_millis(200), Duration::from_millis(50), || async { false }, |v| *v).await;
        assert!(!got, "the condition never held: the last answer comes back");
        assert!(start.elapsed() >= Duration::from_millis(200), "tried until the deadline");
        assert!(start.elapsed() < Duration::from_millis(300), "and stopped one interval after it");
    }
}
