//! The server side of the MySQL client/server protocol, as little of it as the managers' and
//! agents' clients (mysql_async) need: the v10 handshake with `mysql_native_password`
//! (any password is accepted: a simulated server holds no data), `COM_QUERY` answered with a
//! text result set or OK, `COM_PING`, `COM_INIT_DB`, `COM_QUIT`. No TLS, no prepared
//! statements, no compression; EOF packets (the server does not offer `CLIENT_DEPRECATE_EOF`).
//!
//! Why not a crate: `opensrv-mysql` 0.7 (the maintained server-side crate) depends on
//! `mysql_common` 0.32 with its default features, which adds ~45 crates to this workspace
//! (a second `mysql_common`, zstd-sys and libz-sys C builds, bindgen, bigdecimal,
//! rust_decimal, frunk) on a machine where two cores build everything; the subset below is
//! a page of packet framing.
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a query returns: a result set (column names, rows of optional text) or OK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
    },
    Error {
        code: u16,
        message: String,
    },
}

const CLIENT_LONG_PASSWORD: u32 = 1;
const CLIENT_FOUND_ROWS: u32 = 2;
const CLIENT_LONG_FLAG: u32 = 4;
const CLIENT_CONNECT_WITH_DB: u32 = 8;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_TRANSACTIONS: u32 = 0x2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_MULTI_STATEMENTS: u32 = 0x1_0000;
const CLIENT_MULTI_RESULTS: u32 = 0x2_0000;
const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
const CAPABILITIES: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_FOUND_ROWS
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_STATEMENTS
    | CLIENT_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH;
const STATUS_AUTOCOMMIT: u16 = 2;
const UTF8MB4_GENERAL_CI: u8 = 45;
const MAX_PACKET: usize = 16 << 20;

fn lenenc_int(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=250 => out.push(n as u8),
        251..=0xffff => {
            out.push(0xfc);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xff_ffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xfe);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

fn lenenc_str(out: &mut Vec<u8>, s: &[u8]) {
    lenenc_int(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// The handshake the server sends first.
pub fn handshake(version: &str, connection_id: u32, scramble: &[u8; 20]) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(version.as_bytes());
    p.push(0);
    p.extend_from_slice(&connection_id.to_le_bytes());
    p.extend_from_slice(&scramble[..8]);
    p.push(0);
    p.extend_from_slice(&(CAPABILITIES as u16).to_le_bytes());
    p.push(UTF8MB4_GENERAL_CI);
    p.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
    p.extend_from_slice(&((CAPABILITIES >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(&scramble[8..]);
    p.push(0);
    p.extend_from_slice(b"mysql_native_password\0");
    p
}

pub fn ok_packet() -> Vec<u8> {
    let mut p = vec![0, 0, 0];
    p.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    p
}

fn eof_packet() -> Vec<u8> {
    let mut p = vec![0xfe, 0, 0];
    p.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
    p
}

fn err_packet(code: u16, message: &str) -> Vec<u8> {
    let mut p = vec![0xff];
    p.extend_from_slice(&code.to_le_bytes());
    p.extend_from_slice(b"#HY000");
    p.extend_from_slice(message.as_bytes());
    p
}

fn column_definition(name: &str) -> Vec<u8> {
    let mut p = Vec::new();
    for part in ["def", "", "", ""] {
        lenenc_str(&mut p, part.as_bytes());
    }
    lenenc_str(&mut p, name.as_bytes());
    lenenc_str(&mut p, name.as_bytes());
    p.push(0x0c);
    p.extend_from_slice(&u16::from(UTF8MB4_GENERAL_CI).to_le_bytes());
    p.extend_from_slice(&1024u32.to_le_bytes());
    p.push(0xfd); // MYSQL_TYPE_VAR_STRING
    p.extend_from_slice(&0u16.to_le_bytes());
    p.push(0);
    p.extend_from_slice(&[0, 0]);
    p
}

/// The packets (payloads, in order) that answer one query.
pub fn answer_packets(answer: &Answer) -> Vec<Vec<u8>> {
    match answer {
        Answer::Ok => vec![ok_packet()],
        Answer::Error { code, message } => vec![err_packet(*code, message)],
        Answer::Rows { columns, rows } => {
            let mut out = Vec::with_capacity(columns.len() + rows.len() + 3);
            let mut count = Vec::new();
            lenenc_int(&mut count, columns.len() as u64);
            out.push(count);
            out.extend(columns.iter().map(|c| column_definition(c)));
            out.push(eof_packet());
            for row in rows {
                let mut p = Vec::new();
                for value in row {
                    match value {
                        Some(v) => lenenc_str(&mut p, v.as_bytes()),
                        None => p.push(0xfb),
                    }
                }
                out.push(p);
            }
            out.push(eof_packet());
            out
        }
    }
}

/// Reads one packet: (sequence id, payload). `None` at end of stream.
pub async fn read_packet<R: AsyncReadExt + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 4];
    match r.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    if len >= MAX_PACKET {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "packet too large for a simulated server",
        ));
    }
    let mut payload = vec![0; len];
    r.read_exact(&mut payload).await?;
    Ok(Some((header[3], payload)))
}

/// Writes `packets` with sequence ids from `seq`, in one write.
pub async fn write_packets<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    mut seq: u8,
    packets: &[Vec<u8>],
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    for p in packets {
        let len = p.len() as u32;
        buf.extend_from_slice(&len.to_le_bytes()[..3]);
        buf.push(seq);
        buf.extend_from_slice(p);
        seq = seq.wrapping_add(1);
    }
    w.write_all(&buf).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_encoded_as_the_protocol_says() {
        let mut v = Vec::new();
        lenenc_int(&mut v, 250);
        lenenc_int(&mut v, 251);
        lenenc_int(&mut v, 70_000);
        assert_eq!(v, [250, 0xfc, 251, 0, 0xfd, 0x70, 0x11, 0x01]);
    }

    #[test]
    fn a_result_set_is_count_columns_eof_rows_eof() {
        let a = Answer::Rows {
            columns: vec!["1".into()],
            rows: vec![vec![Some("1".into())], vec![None]],
        };
        let p = answer_packets(&a);
        assert_eq!(p.len(), 1 + 1 + 1 + 2 + 1);
        assert_eq!(p[0], [1]);
        assert_eq!(p[2][0], 0xfe);
        assert_eq!(p[3], [1, b'1']);
        assert_eq!(p[4], [0xfb]);
    }
}
