//! MySQL 8.4+ GTID_TAGGED_LOG_EVENT (type 42), whose body is written in the format of MySQL's
//! serialization library (`libs/mysql/serialization/readme.md` in the MySQL source):
//!
//! - `version(1) size(varlen) last_non_ignorable_field_id(varlen) { field_id(varlen) data }`,
//!   where `size` counts the whole message from the version byte on;
//! - unsigned varlen integers take 1–9 bytes: the number of trailing one bits of the first
//!   byte, plus one, is the byte count; for 1–8 bytes the value is the little-endian number
//!   shifted right by the byte count, for 9 bytes (first byte 0xff) it is the next 8 bytes;
//! - signed ones are zig-zag encoded in that (`x ≥ 0 → x<<1`, `x < 0 → (-(x+1))<<1 | 1`);
//! - strings are `length(varlen) bytes`; fixed arrays are their elements one after another.
//!
//! The GTID event's fields, in order: 0 gtid_flags, 1 the source UUID (16 varlen bytes),
//! 2 gno (signed), 3 tag (string), then commit-order fields we do not need.

use std::fmt::Write as _;

/// The GTID a tagged GTID event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedGtid {
    pub uuid: [u8; 16],
    pub tag: String,
    pub gno: i64,
}

impl std::fmt::Display for TaggedGtid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&uuid_text(&self.uuid))?;
        if !self.tag.is_empty() {
            write!(f, ":{}", self.tag)?;
        }
        write!(f, ":{}", self.gno)
    }
}

/// `8-4-4-4-12` hex text of a 16-byte UUID.
pub fn uuid_text(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A cursor over a serialized message; every read says what was being read when it fails.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn byte(&mut self, what: &str) -> Result<u8, String> {
        let v = *self
            .b
            .get(self.at)
            .ok_or_else(|| format!("{what}: ends at byte {}", self.at))?;
        self.at += 1;
        Ok(v)
    }

    fn uint(&mut self, what: &str) -> Result<u64, String> {
        let first = *self
            .b
            .get(self.at)
            .ok_or_else(|| format!("{what}: ends at byte {}", self.at))?;
        let n = first.trailing_ones() as usize + 1;
        let bytes = self
            .b
            .get(self.at..self.at + n)
            .ok_or_else(|| format!("{what}: {n}-byte integer at byte {} is cut", self.at))?;
        self.at += n;
        let mut v = 0u64;
        if n == 9 {
            for (i, x) in bytes[1..].iter().enumerate() {
                v |= u64::from(*x) << (8 * i);
            }
        } else {
            for (i, x) in bytes.iter().enumerate() {
                v |= u64::from(*x) << (8 * i);
            }
            v >>= n;
        }
        Ok(v)
    }

    fn int(&mut self, what: &str) -> Result<i64, String> {
        let u = self.uint(what)?;
        let magnitude = (u >> 1) as i64;
        Ok(if u & 1 == 0 {
            magnitude
        } else {
            -magnitude - 1
        })
    }
}

/// Decodes the body of a GTID_TAGGED_LOG event (without header and checksum).
pub fn parse(body: &[u8]) -> Result<TaggedGtid, String> {
    let mut c = Cursor { b: body, at: 0 };
    let _version = c.byte("serialization version")?;
    let size = c.uint("message size")?;
    let end = usize::try_from(size)
        .ok()
        .filter(|s| *s <= body.len() && *s >= c.at)
        .ok_or_else(|| {
            format!(
                "message size {size} does not fit the {}-byte body",
                body.len()
            )
        })?;
    c.b = &body[..end];
    let _last_non_ignorable = c.uint("last non-ignorable field id")?;
    let mut uuid = None;
    let mut gno = None;
    let mut tag = String::new();
    while c.at < c.b.len() {
        match c.uint("field id")? {
            0 => {
                c.uint("gtid_flags")?;
            }
            1 => {
                let mut u = [0u8; 16];
                for b in &mut u {
                    *b = u8::try_from(c.uint("uuid")?).map_err(|_| "uuid byte over 255")?;
                }
                uuid = Some(u);
            }
            2 => gno = Some(c.int("gno")?),
            3 => {
                let len = c.uint("tag length")?;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|l| *l <= 32 && c.at + l <= c.b.len())
                    .ok_or_else(|| format!("tag length {len} does not fit"))?;
                let raw = &c.b[c.at..c.at + len];
                if !raw.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_') {
                    return Err("tag is not [A-Za-z0-9_]".into());
                }
                tag = String::from_utf8_lossy(raw).into_owned();
                c.at += len;
            }
            // Fields 4 on (commit order, timestamps, lengths) are not needed for the GTID.
            _ => break,
        }
    }
    let uuid = uuid.ok_or("no uuid field")?;
    let gno = gno.ok_or("no gno field")?;
    if gno < 1 {
        return Err(format!("gno {gno} is not positive"));
    }
    Ok(TaggedGtid { uuid, tag, gno })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes an unsigned varlen integer (test side only).
    fn uint(v: u64) -> Vec<u8> {
        let bits = 64 - v.leading_zeros() as usize;
        let n = (1..=8).find(|n| bits <= 7 * n).unwrap_or(9);
        if n == 9 {
            let mut b = vec![0xff];
            b.extend_from_slice(&v.to_le_bytes());
            return b;
        }
        let enc = (v << n) | ((1u64 << (n - 1)) - 1);
        enc.to_le_bytes()[..n].to_vec()
    }

    fn message(fields: &[u8]) -> Vec<u8> {
        // version, size (1 byte while the message is < 128 bytes), lnif 0
        let size = 3 + fields.len();
        assert!(size < 128);
        let mut b = vec![2];
        b.extend(uint(size as u64));
        b.extend(uint(0));
        b.extend_from_slice(fields);
        b
    }

    #[test]
    fn varlen_examples_from_the_format_description() {
        // 65535 is `00000111 11111111 11111011` (big-endian display) in 3 bytes.
        assert_eq!(uint(65535), vec![0xfb, 0xff, 0x07]);
        let mut c = Cursor {
            b: &[0xfb, 0xff, 0x07],
            at: 0,
        };
        assert_eq!(c.uint("x"), Ok(65535));
        // Signed 65535 is `00001111 11111111 11110011`, -65535 `… 11101011`.
        let mut c = Cursor {
            b: &[0xf3, 0xff, 0x0f, 0xeb, 0xff, 0x0f, 0xfb, 0xff, 0x0f],
            at: 0,
        };
        assert_eq!(c.int("x"), Ok(65535));
        assert_eq!(c.int("x"), Ok(-65535));
        assert_eq!(c.int("x"), Ok(-65536));
        for v in [0, 1, 127, 128, u64::from(u32::MAX), 1 << 56, u64::MAX] {
            let b = uint(v);
            let mut c = Cursor { b: &b, at: 0 };
            assert_eq!(c.uint("x"), Ok(v), "{v}");
            assert_eq!(c.at, b.len());
        }
    }

    #[test]
    fn decodes_uuid_tag_and_gno() {
        let uuid: [u8; 16] = core::array::from_fn(|i| (i as u8) * 17);
        let mut f = vec![];
        f.extend(uint(0));
        f.extend(uint(1));
        f.extend(uint(1));
        for b in uuid {
            f.extend(uint(u64::from(b)));
        }
        f.extend(uint(2));
        f.extend(uint(2 * 42)); // signed 42
        f.extend(uint(3));
        f.extend(uint(5));
        f.extend_from_slice(b"mytag");
        f.extend(uint(4));
        f.extend(uint(0));
        let g = parse(&message(&f)).unwrap();
        assert_eq!(
            g.to_string(),
            "00112233-4455-6677-8899-aabbccddeeff:mytag:42"
        );
    }

    #[test]
    fn refuses_cut_or_inconsistent_messages() {
        assert!(parse(&[]).is_err());
        assert!(parse(&[2, 0xfe]).is_err()); // size cut
        assert!(parse(&[2, uint(100)[0], 0]).is_err()); // size beyond body
        let mut f = uint(1);
        f.extend(uint(1)); // uuid cut after one byte
        assert!(parse(&message(&f)).is_err());
        let mut f = uint(3);
        f.extend(uint(3));
        f.extend_from_slice(b"a-b"); // not a valid tag
        assert!(parse(&message(&f)).is_err());
    }
}
