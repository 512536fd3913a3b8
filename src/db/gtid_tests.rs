use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
const U2: &str = "4a5b6c7d-0000-11e1-9e33-c80aa9429562";

fn mysql(s: &str) -> MySqlGtidSet {
    MySqlGtidSet::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn maria(s: &str) -> MariaGtidPos {
    MariaGtidPos::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

#[test]
fn mysql_set_parses_as_mysql_prints_it() {
    let printed = format!("{U1}:1-5:7-9,\n{}:1-3", U2.to_uppercase());
    let set = mysql(&printed);
    assert_eq!(set.to_string(), format!("{U1}:1-5:7-9,{U2}:1-3"));
    assert_eq!(set.count(), 11);
    assert!(set.contains_gtid(U1, 8) && !set.contains_gtid(U1, 6));
    assert!(mysql("").is_empty());
}

#[test]
fn mysql_set_normalizes_adjacent_and_overlapping_intervals() {
    assert_eq!(
        mysql(&format!("{U1}:1-3:4-6:5-10:12")).to_string(),
        format!("{U1}:1-10:12")
    );
    assert_eq!(
        mysql(&format!("{U1}:1-3,{U1}:4")).to_string(),
        format!("{U1}:1-4")
    );
}

#[test]
fn mysql_tagged_gtids_are_their_own_source() {
    let set = mysql(&format!("{U1}:1-3:audit:1-2"));
    assert!(set.contains_gtid(&format!("{U1}:audit"), 2));
    assert!(!set.contains_gtid(&format!("{U1}:audit"), 3));
    assert_eq!(set.count(), 5);
}

#[test]
fn mysql_set_rejects_garbage() {
    for bad in [
        "abc:1-3",
        U1,
        &format!("{U1}:0-3"),
        &format!("{U1}:5-3"),
        &format!("{U1}:x"),
        &format!("{U1}:1-"),
        "1-2-3",
    ] {
        assert!(
            MySqlGtidSet::parse(bad).is_err(),
            "{bad:?} should be rejected"
        );
    }
}

#[test]
fn mysql_difference_finds_errant_transactions() {
    let replica = mysql(&format!("{U1}:1-100,{U2}:1-2"));
    let master = mysql(&format!("{U1}:1-100"));
    assert_eq!(replica.difference(&master).to_string(), format!("{U2}:1-2"));
    assert!(replica.contains(&master) && !master.contains(&replica));
}

#[test]
fn mariadb_position_parses_and_compares_per_domain() {
    let a = maria("0-1-100, 1-2-5");
    let b = maria("0-1-90\n");
    assert!(a.contains(&b) && !b.contains(&a));
    assert_eq!(a.to_string(), "0-1-100,1-2-5");
    let gaps = a.difference(&b);
    assert_eq!(gaps.len(), 2);
    assert_eq!(
        gaps[0],
        MariaGap {
            last: MariaGtid {
                domain: 0,
                server_id: 1,
                seq: 100
            },
            other_seq: 90
        }
    );
    assert_eq!(gaps[1].other_seq, 0);
    assert!(maria("").is_empty());
}

#[test]
fn mariadb_same_seq_from_different_servers_is_divergence() {
    let replica_local_write = maria("0-2-13");
    let master_write = maria("0-1-13");
    assert!(!replica_local_write.contains(&master_write));
    assert!(!master_write.contains(&replica_local_write));
    let gaps = replica_local_write.difference(&master_write);
    assert_eq!(
        gaps,
        vec![MariaGap {
            last: MariaGtid {
                domain: 0,
                server_id: 2,
                seq: 13
            },
            other_seq: 12
        }]
    );
    let a = GtidSet::MariaDb(replica_local_write);
    assert_eq!(
        a.partial_cmp_sets(&GtidSet::MariaDb(master_write)),
        Ok(None)
    );
}

#[test]
fn mariadb_position_rejects_garbage() {
    for bad in ["0-1", "0-1-2-3", "a-1-2", "0-1-2,0-1-3", "-1-2-3"] {
        assert!(
            MariaGtidPos::parse(bad).is_err(),
            "{bad:?} should be rejected"
        );
    }
}

#[test]
fn gtid_set_partial_order_detects_divergence() {
    let a = GtidSet::MariaDb(maria("0-1-10,1-3-1"));
    let b = GtidSet::MariaDb(maria("0-1-12"));
    assert_eq!(a.partial_cmp_sets(&b), Ok(None));
    let c = GtidSet::MariaDb(maria("0-1-12,1-3-1"));
    assert_eq!(c.partial_cmp_sets(&a), Ok(Some(Ordering::Greater)));
    assert_eq!(a.partial_cmp_sets(&a), Ok(Some(Ordering::Equal)));
    let m = GtidSet::MySql(mysql(&format!("{U1}:1")));
    assert_eq!(a.contains(&m), Err(FlavorMismatch));
}

// ---- bounded property tests: the interval algebra against a plain set of (source, n) ----

type Model = BTreeSet<(String, u64)>;

fn random_set(rng: &mut StdRng) -> (MySqlGtidSet, Model) {
    let mut set = MySqlGtidSet::default();
    let mut model = Model::new();
    for _ in 0..rng.random_range(0..5) {
        let source = if rng.random_bool(0.5) { U1 } else { U2 };
        let start = rng.random_range(1..40u64);
        let end = start + rng.random_range(0..6u64);
        set.insert_interval(source, start, end);
        model.extend((start..=end).map(|n| (source.to_string(), n)));
    }
    (set, model)
}

fn model_of(set: &MySqlGtidSet) -> Model {
    let mut model = Model::new();
    for source in set.sources() {
        for n in 1..60 {
            if set.contains_gtid(source, n) {
                model.insert((source.to_string(), n));
            }
        }
    }
    model
}

#[test]
fn property_mysql_set_algebra_matches_the_model() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for _ in 0..2000 {
        let (a, ma) = random_set(&mut rng);
        let (b, mb) = random_set(&mut rng);
        assert_eq!(model_of(&a), ma, "insert of {a}");
        let union: Model = ma.union(&mb).cloned().collect();
        let diff: Model = ma.difference(&mb).cloned().collect();
        assert_eq!(model_of(&a.union(&b)), union, "{a} ∪ {b}");
        assert_eq!(model_of(&a.difference(&b)), diff, "{a} − {b}");
        assert_eq!(a.contains(&b), mb.is_subset(&ma), "{a} ⊇ {b}");
        assert_eq!(a.count(), ma.len() as u64);
        // The printed form parses back to the same set.
        assert_eq!(MySqlGtidSet::parse(&a.to_string()), Ok(a.clone()));
        // Laws: a ⊆ a ∪ b, (a − b) ∩ b = ∅, (a − b) ∪ b = a ∪ b.
        assert!(a.union(&b).contains(&a));
        assert!(a.difference(&b).difference(&b) == a.difference(&b));
        assert_eq!(a.difference(&b).union(&b), a.union(&b));
    }
}

#[test]
fn property_mariadb_position_algebra_laws() {
    let mut rng = StdRng::seed_from_u64(0xbeef);
    let random_pos = |rng: &mut StdRng| {
        MariaGtidPos::from_gtids((0..rng.random_range(0..4)).map(|_| MariaGtid {
            domain: rng.random_range(0..3),
            // One writer per domain: union is only defined for positions that did not diverge.
            server_id: 1,
            seq: rng.random_range(1..20),
        }))
    };
    for _ in 0..2000 {
        let a = random_pos(&mut rng);
        let b = random_pos(&mut rng);
        let u = a.union(&b);
        assert!(u.contains(&a) && u.contains(&b));
        let v = b.union(&a);
        assert!(
            u.contains(&v) && v.contains(&u),
            "union is commutative (per-domain seq)"
        );
        assert_eq!(u.union(&a), u, "union is idempotent");
        assert_eq!(a.contains(&b), b.difference(&a).is_empty());
        assert_eq!(MariaGtidPos::parse(&a.to_string()), Ok(a.clone()));
        for gap in a.difference(&b) {
            assert!(gap.last.seq > gap.other_seq);
            assert_eq!(b.get(gap.last.domain).map_or(0, |g| g.seq), gap.other_seq);
        }
    }
}
