//! Records history events from many tasks onto one monotonic clock and into `history.jsonl`.
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::history::{Event, HistoryWriter, Record};

/// Cheap to clone; every task that observes or acts holds one.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    tx: mpsc::UnboundedSender<Record>,
    /// Acknowledged writes so far, so the run can wait for the first one after healing.
    acks: Arc<AtomicU64>,
}

impl Recorder {
    /// Starts the writer task. The handle resolves to every record once all recorders are
    /// dropped, so the checker reads exactly what was written.
    pub fn start(path: &Path) -> Result<(Recorder, JoinHandle<Result<Vec<Record>>>)> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Record>();
        let handle = tokio::task::spawn_blocking(move || {
            let mut writer = HistoryWriter::new(std::io::BufWriter::new(file));
            let mut all = Vec::new();
            while let Some(record) = rx.blocking_recv() {
                writer.write(&record)?;
                all.push(record);
            }
            Ok(all)
        });
        Ok((
            Recorder {
                start: Instant::now(),
                tx,
                acks: Arc::new(AtomicU64::new(0)),
            },
            handle,
        ))
    }

    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// How many writes were acknowledged (recorded as `Ok`) so far.
    pub fn acks(&self) -> u64 {
        self.acks.load(Ordering::Relaxed)
    }

    pub fn record(&self, event: Event) {
        if matches!(event, Event::Ok { .. }) {
            self.acks.fetch_add(1, Ordering::Relaxed);
        }
        // The writer outlives every recorder; a send error means it failed and reports that.
        let _ = self.tx.send(Record {
            time_ns: self.now_ns(),
            event,
        });
    }
}
