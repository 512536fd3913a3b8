//! The binary: MHA names through argv[0], MHA exit codes, and clear errors on bad input.
use std::path::Path;
use std::process::Command;

use raftmha_node::binlog::synth::SynthBinlog;

const BIN: &str = env!("CARGO_BIN_EXE_raftmha-node");

fn run(cmd: &mut Command) -> (i32, String, String) {
    let o = cmd.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn binlogs(dir: &Path) -> u64 {
    let mut a = SynthBinlog::new(1, true);
    a.trx(0, 1, 50).trx(0, 2, 50);
    a.rotate(1, 0, 4, "binlog.000002");
    std::fs::write(dir.join("binlog.000001"), &a.bytes).unwrap();
    let mut b = SynthBinlog::new(1, true);
    b.trx(0, 3, 50);
    std::fs::write(dir.join("binlog.000002"), &b.bytes).unwrap();
    b.bytes.len() as u64
}

#[test]
fn save_binary_logs_by_its_mha_name_with_mha_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let end = binlogs(dir.path());
    let link = dir.path().join("save_binary_logs");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let out = dir.path().join("saved.binlog");
    let args = |file: &str, pos: u64| {
        let mut c = Command::new(&link);
        c.arg("--command=save")
            .arg(format!("--start_file={file}"))
            .arg(format!("--start_pos={pos}"))
            .arg(format!("--binlog_dir={}", dir.path().display()))
            .arg(format!("--output_file={}", out.display()))
            .arg("--handle_raw_binlog=1")
            .arg("--manager_version=0.58");
        c
    };
    let (code, stdout, stderr) = run(&mut args("binlog.000001", 4));
    assert_eq!(code, 0, "{stdout}{stderr}");
    // The saved file dumps as one stream with 3 transactions.
    let (code, stdout, _) = run(Command::new(BIN).arg("dump").arg("--json").arg(&out));
    assert_eq!(code, 0);
    let gtids = stdout
        .lines()
        .filter(|l| l.contains("\"MARIADB_GTID\""))
        .count();
    assert_eq!(gtids, 3, "{stdout}");
    // Nothing after the end: MHA's exit code 10.
    let (code, _, stderr) = run(&mut args("binlog.000002", end));
    assert_eq!(code, 10, "{stderr}");
    // Not an event boundary: a failure naming the file and offset.
    let (code, _, stderr) = run(&mut args("binlog.000001", 300));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("binlog.000001") && stderr.contains("offset 300"),
        "{stderr}"
    );
    // Unknown flag: usage error.
    let (code, _, _) = run(Command::new(&link).arg("--no_such_flag=1"));
    assert_eq!(code, 2);
}

#[test]
fn dump_reports_corruption_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = SynthBinlog::new(1, true);
    a.trx(0, 1, 50);
    let n = a.bytes.len();
    a.bytes[n - 10] ^= 0x55;
    let p = dir.path().join("binlog.000001");
    std::fs::write(&p, &a.bytes).unwrap();
    let (code, stdout, stderr) = run(Command::new(BIN).arg("dump").arg(&p));
    assert_eq!(code, 1);
    assert!(stdout.contains("FORMAT_DESCRIPTION"));
    assert!(
        stderr.contains("binlog.000001: offset") && stderr.contains("CRC32 mismatch"),
        "{stderr}"
    );
}
