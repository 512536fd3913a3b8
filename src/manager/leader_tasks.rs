//! The tasks only the leader runs: each cluster's run (failover, operation, unfence) and the
//! fence sweep, in one `JoinSet`. They all end when this manager stops leading, or leads again
//! under a newer term (a run belongs to the term that started it), and are awaited on shutdown,
//! so no leader-scoped work outlives the leadership it was started under. Each run also
//! checks its ownership before every effect; aborting is the fast path for a live process,
//! the check is what makes a paused one harmless.
use std::collections::BTreeMap;
use std::future::Future;

use tokio::task::{AbortHandle, JoinSet};

#[derive(Default)]
pub struct LeaderTasks {
    set: JoinSet<()>,
    per_cluster: BTreeMap<String, AbortHandle>,
    sweep: Option<AbortHandle>,
    /// The term the running tasks were started under.
    term: Option<u64>,
}

impl LeaderTasks {
    /// Aborts every task when this manager no longer leads in the term they started under;
    /// reaps finished ones.
    pub fn follow_leadership(&mut self, leading_term: Option<u64>) {
        if leading_term != self.term {
            if !self.per_cluster.is_empty() || self.sweep.is_some() {
                tracing::info!(
                    "leadership changed (term {:?} -> {:?}): stopping leader tasks",
                    self.term,
                    leading_term
                );
            }
            self.set.abort_all();
            self.per_cluster.clear();
            self.sweep = None;
            self.term = leading_term;
        }
        while let Some(done) = self.set.try_join_next() {
            if let Err(e) = done
                && e.is_panic()
            {
                tracing::error!("a leader task panicked: {e}");
            }
        }
        self.per_cluster.retain(|_, h| !h.is_finished());
        if self.sweep.as_ref().is_some_and(AbortHandle::is_finished) {
            self.sweep = None;
        }
    }

    /// Whether `cluster` has a task running (one at a time per cluster).
    pub fn busy(&self, cluster: &str) -> bool {
        self.per_cluster.contains_key(cluster)
    }

    pub fn spawn_for(&mut self, cluster: &str, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.set.spawn(task);
        self.per_cluster.insert(cluster.to_string(), handle);
    }

    pub fn sweep_running(&self) -> bool {
        self.sweep.is_some()
    }

    pub fn spawn_sweep(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.sweep = Some(self.set.spawn(task));
    }

    /// Aborts every task and waits until all have ended.
    pub async fn shutdown(mut self) {
        self.set.abort_all();
        while self.set.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn forever(flag: &Arc<AtomicBool>) -> impl Future<Output = ()> + Send + 'static {
        let guard = SetOnDrop(flag.clone());
        async move {
            let _guard = guard;
            std::future::pending::<()>().await
        }
    }

    #[tokio::test]
    async fn losing_or_changing_the_term_stops_every_leader_task() {
        let mut tasks = LeaderTasks::default();
        tasks.follow_leadership(Some(3));
        let (a, b) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        tasks.spawn_for("app1", forever(&a));
        tasks.spawn_sweep(forever(&b));
        tokio::task::yield_now().await;
        tasks.follow_leadership(Some(3));
        assert!(tasks.busy("app1") && tasks.sweep_running());
        // Re-elected under a newer term: the old term's runs end too.
        tasks.follow_leadership(Some(5));
        assert!(!tasks.busy("app1") && !tasks.sweep_running());
        tasks.shutdown().await;
        assert!(a.load(Ordering::SeqCst) && b.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn shutdown_waits_for_every_task() {
        let mut tasks = LeaderTasks::default();
        tasks.follow_leadership(Some(1));
        let a = Arc::new(AtomicBool::new(false));
        tasks.spawn_for("app1", forever(&a));
        tasks.shutdown().await;
        assert!(a.load(Ordering::SeqCst));
    }
}
