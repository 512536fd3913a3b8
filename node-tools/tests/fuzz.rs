//! Corrupt, truncated and random input never panics the walker (or the tools built on it) and
//! always yields an error naming the file and an offset.
//!
//! Bounded by default; for a long run: `RMHA_FUZZ_ITERS=1000000 cargo nextest run -p raftmha-node fuzz`.
use raftmha_node::binlog::Walker;
use raftmha_node::binlog::relay::{MasterCoord, find_position};
use raftmha_node::binlog::synth::SynthBinlog;
use raftmha_node::tools::apply::gtid::GtidPos;
use raftmha_node::tools::apply::stream;
use rand::{Rng, SeedableRng};

fn iterations() -> u64 {
    std::env::var("RMHA_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

fn seed_file() -> Vec<u8> {
    let mut b = SynthBinlog::relay(2, 1, "binlog.000001", 4);
    for seq in 1..=20 {
        b.trx(0, seq, (seq as usize * 37) % 300);
    }
    b.gtid(0, 21, true).query("d", "CREATE TABLE x (id INT)");
    b.bytes
}

#[test]
fn walker_survives_mutated_and_random_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.000001");
    let out = dir.path().join("out.binlog");
    let seed = seed_file();
    let mut rng = rand::rngs::StdRng::seed_from_u64(
        std::env::var("RMHA_FUZZ_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(7),
    );
    for i in 0..iterations() {
        let mut data = match i % 4 {
            0 => {
                let n = rng.random_range(0..2048);
                let mut v = vec![0u8; n];
                rng.fill(&mut v[..]);
                if rng.random_bool(0.5) && v.len() >= 4 {
                    v[..4].copy_from_slice(&[0xfe, 0x62, 0x69, 0x6e]);
                }
                v
            }
            1 => {
                let cut = rng.random_range(0..seed.len());
                seed[..cut].to_vec()
            }
            _ => {
                let mut v = seed.clone();
                for _ in 0..rng.random_range(1..6) {
                    let at = rng.random_range(0..v.len());
                    v[at] = rng.random();
                }
                v
            }
        };
        if i % 7 == 0 && !data.is_empty() {
            let at = rng.random_range(0..data.len());
            data.truncate(at);
        }
        std::fs::write(&path, &data).unwrap();
        let name = path.display().to_string();
        // Walk with and without CRC verification.
        for verify in [true, false] {
            match Walker::open(&path) {
                Err(e) => assert!(e.to_string().contains(&name), "{e}"),
                Ok(w) => {
                    let mut w = w.verify_crc(verify);
                    loop {
                        match w.next_event() {
                            Ok(Some(_)) => {}
                            Ok(None) => break,
                            Err(e) => {
                                assert!(e.to_string().contains(&name), "{e}");
                                assert!(e.to_string().contains("offset"), "{e}");
                                break;
                            }
                        }
                    }
                }
            }
        }
        // The tools on top must not panic either.
        let files = vec![path.clone()];
        let _ = find_position(
            &files,
            &MasterCoord {
                file: "binlog.000001".into(),
                pos: 500,
            },
            Some(&MasterCoord {
                file: "binlog.000001".into(),
                pos: 2000,
            }),
        );
        let _ = stream::build(&files, &GtidPos::default(), &out, true);
    }
}
