//! Group commit: work that ends in a wait on the disk (fsync, a catalog flush) is handed to
//! one task that does it for everything that is waiting at once, on a blocking thread.
//!
//! The first request is committed alone, straight away; requests that arrive while a commit
//! runs form the next batch. A lone request therefore waits no longer than it would on its
//! own, and many requests at once share one disk flush instead of queueing for one each.

use tokio::sync::{mpsc, oneshot};

/// Largest batch committed at once.
const MAX_BATCH: usize = 256;

type Request<T, R> = (T, oneshot::Sender<R>);

/// Commits values of `T` in batches, answering each with an `R`.
pub struct GroupCommit<T, R> {
    tx: mpsc::UnboundedSender<Request<T, R>>,
    task: tokio::task::JoinHandle<()>,
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// Starts the commit task on the current runtime. `commit` gets a batch and returns one
    /// answer per value, in order; it runs on a blocking thread. `lost` answers a request
    /// whose batch could not be committed at all (the blocking task panicked).
    pub fn start(
        commit: impl Fn(Vec<T>) -> Vec<R> + Send + Sync + 'static,
        lost: impl Fn(String) -> R + Send + Sync + 'static,
    ) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Request<T, R>>();
        let commit = std::sync::Arc::new(commit);
        let task = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                let (values, replies): (Vec<T>, Vec<oneshot::Sender<R>>) = batch.into_iter().unzip();
                let n = values.len();
                let f = commit.clone();
                match tokio::task::spawn_blocking(move || f(values)).await {
                    Ok(answers) => {
                        debug_assert_eq!(answers.len(), n, "one answer per value");
                        for (answer, reply) in answers.into_iter().zip(replies) {
                            let _ = reply.send(answer);
                        }
                    }
                    Err(e) => {
                        for reply in replies {
                            let _ = reply.send(lost(format!("the commit task failed: {e}")));
                        }
                    }
                }
            }
        });
        GroupCommit { tx, task }
    }

    /// Waits for the commits under way, then stops the task (and drops what `commit`
    /// holds, such as an open database).
    pub async fn close(self) {
        drop(self.tx);
        let _ = self.task.await;
    }

    /// Commits `value` with whatever else is waiting.
    pub async fn commit(&self, value: T, lost: impl FnOnce(String) -> R) -> R {
        let (reply, answer) = oneshot::channel();
        if self.tx.send((value, reply)).is_err() {
            return lost("the commit task has stopped".into());
        }
        answer.await.unwrap_or_else(|_| lost("the commit task has stopped".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{mpsc as std_mpsc, Arc, Mutex};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_waiting_behind_a_commit_share_the_next_one() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = batches.clone();
        let (started_tx, started_rx) = std_mpsc::channel();
        let (release_tx, release_rx) = std_mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let g = Arc::new(GroupCommit::start(
            move |values: Vec<u32>| {
                if values == [0] {
                    // The first commit holds on until the others are queued behind it.
                    started_tx.send(()).unwrap();
                    release_rx.lock().unwrap().recv().unwrap();
                }
                seen.lock().unwrap().push(values.clone());
                values.iter().map(|v| v * 10).collect()
            },
            |_| u32::MAX,
        ));
        let first = tokio::spawn({
            let g = g.clone();
            async move { g.commit(0, |_| u32::MAX).await }
        });
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap()).await.unwrap();
        let answers: Vec<_> = (1..=5)
            .map(|v| {
                let (reply, answer) = oneshot::channel();
                g.tx.send((v, reply)).unwrap();
                answer
            })
            .collect();
        release_tx.send(()).unwrap();
        assert_eq!(first.await.unwrap(), 0);
        let answers: Vec<u32> = futures::future::join_all(answers).await.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(answers, vec![10, 20, 30, 40, 50]);
        assert_eq!(*batches.lock().unwrap(), vec![vec![0], vec![1, 2, 3, 4, 5]]);
    }
}
