//! The sled store against openraft's storage conformance suite, and the data-dir refusals.
use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;

use super::*;
use crate::raft::TypeConfig;

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for SledBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError<TypeConfig>> {
        let to_storage = |e: String| StorageError::read(TypeConfig::err_from_string(e));
        let dir = tempfile::tempdir().map_err(|e| to_storage(e.to_string()))?;
        let data = DataDir::new(&dir.path().join("m1"), 1);
        let stores = data
            .open(DataDirState::Fresh)
            .await
            .map_err(|e| to_storage(e.to_string()))?;
        Ok((dir, stores.log, stores.state_machine))
    }
}

#[test]
fn the_sled_store_passes_openrafts_storage_suite() {
    TypeConfig::run(async {
        if let Err(e) = Suite::test_all(SledBuilder).await {
            panic!("storage suite failed: {e}");
        }
    });
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[tokio::test]
async fn a_created_data_dir_reopens_as_existing() {
    let tmp = tempdir();
    let dir = tmp.path().join("m1");
    let data = DataDir::new(&dir, 1);
    assert_eq!(data.inspect().expect("inspect"), DataDirState::Fresh);
    drop(data.open(DataDirState::Fresh).await.expect("create"));
    assert_eq!(data.inspect().expect("inspect"), DataDirState::Existing);
    data.open(DataDirState::Existing).await.expect("reopen");
}

#[tokio::test]
async fn another_nodes_data_dir_is_refused() {
    let tmp = tempdir();
    let dir = tmp.path().join("m1");
    drop(
        DataDir::new(&dir, 1)
            .open(DataDirState::Fresh)
            .await
            .expect("create"),
    );
    let err = DataDir::new(&dir, 2).inspect().expect_err("refused");
    assert!(err.to_string().contains("belongs to manager 1"), "{err}");
}

#[tokio::test]
async fn a_wiped_log_store_is_refused() {
    let tmp = tempdir();
    let dir = tmp.path().join("m1");
    let data = DataDir::new(&dir, 1);
    drop(data.open(DataDirState::Fresh).await.expect("create"));
    std::fs::remove_dir_all(dir.join(SLED_DIR)).expect("wipe");
    let err = data.inspect().expect_err("refused");
    assert!(err.to_string().contains("missing"), "{err}");
    // Recreated empty by hand: the format mark is missing.
    std::fs::create_dir_all(dir.join(SLED_DIR)).expect("mkdir");
    let state = data.inspect().expect("looks present");
    let err = data.open(state).await.err().expect("refused");
    assert!(err.to_string().contains("wiped"), "{err}");
}

#[tokio::test]
async fn a_corrupt_marker_or_unknown_dir_is_refused() {
    let tmp = tempdir();
    let dir = tmp.path().join("m1");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("something"), b"x").expect("write");
    let err = DataDir::new(&dir, 1).inspect().expect_err("refused");
    assert!(err.to_string().contains("no MANAGER marker"), "{err}");
    std::fs::write(dir.join(MARKER), b"{not json").expect("write");
    let err = DataDir::new(&dir, 1).inspect().expect_err("refused");
    assert!(err.to_string().contains("corrupt"), "{err}");
}

#[tokio::test]
async fn a_corrupt_snapshot_file_is_refused() {
    let tmp = tempdir();
    let dir = tmp.path().join("m1");
    let data = DataDir::new(&dir, 1);
    drop(data.open(DataDirState::Fresh).await.expect("create"));
    std::fs::write(
        dir.join(SNAPSHOT_DIR)
            .join(super::super::snapshot_file::file_name(7)),
        b"RMHASNAP garbage",
    )
    .expect("write");
    let err = data
        .open(DataDirState::Existing)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("corrupt"), "{err}");
}

#[tokio::test]
async fn vote_log_and_purge_survive_reopening_the_store() {
    use openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage};
    use openraft::testing::{blank_ent, log_id};

    let tmp = tempdir();
    let dir = tmp.path().join("m1");
    let data = DataDir::new(&dir, 1);
    let vote = crate::raft::Vote::new_committed(3, 2);
    {
        let mut stores = data.open(DataDirState::Fresh).await.expect("create");
        stores.log.save_vote(&vote).await.expect("vote");
        let entries: Vec<_> = (1..=10).map(|i| blank_ent::<TypeConfig>(3, 2, i)).collect();
        stores
            .log
            .append(entries, IOFlushed::noop())
            .await
            .expect("append");
        stores
            .log
            .purge(log_id::<TypeConfig>(3, 2, 4))
            .await
            .expect("purge");
        stores
            .log
            .truncate_after(Some(log_id::<TypeConfig>(3, 2, 8)))
            .await
            .expect("truncate");
        stores.db.flush_async().await.expect("flush");
    }
    // sled's background flusher may hold the file lock a moment after the drop (seen under
    // load): a restart is a new process in production, here the same one retries briefly.
    let mut stores = None;
    for _ in 0..50 {
        match data.open(data.inspect().expect("inspect")).await {
            Ok(s) => {
                stores = Some(s);
                break;
            }
            Err(e) => {
                eprintln!("reopen: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    let mut stores = stores.expect("reopen within 5 s");
    let state = stores.log.get_log_state().await.expect("state");
    assert_eq!(
        state.last_purged_log_id,
        Some(log_id::<TypeConfig>(3, 2, 4))
    );
    assert_eq!(state.last_log_id, Some(log_id::<TypeConfig>(3, 2, 8)));
    assert_eq!(stores.log.read_vote().await.expect("vote"), Some(vote));
    let entries = stores
        .log
        .try_get_log_entries(0..100)
        .await
        .expect("entries");
    let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
    assert_eq!(indexes, vec![5, 6, 7, 8]);
}
