//! Byte encoding of openraft values for sled and the wire: a format-version byte followed
//! by JSON. openraft does not promise a stable serde layout across versions, so the byte
//! lets a future binary recognise (and migrate or refuse) what an older one wrote.
use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub const FORMAT_V1: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    let mut out = vec![FORMAT_V1];
    serde_json::to_writer(&mut out, value).map_err(io::Error::other)?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    match bytes.split_first() {
        Some((&FORMAT_V1, body)) => {
            serde_json::from_slice(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }
        Some((v, _)) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown encoding version {v}"),
        )),
        None => Err(io::Error::new(io::ErrorKind::InvalidData, "empty value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_unknown_versions_are_refused() {
        let bytes = encode(&vec![1u64, 2]).expect("encodes");
        assert_eq!(decode::<Vec<u64>>(&bytes).expect("decodes"), vec![1, 2]);
        let mut future = bytes.clone();
        future[0] = 9;
        assert!(decode::<Vec<u64>>(&future).is_err());
        assert!(decode::<Vec<u64>>(&[]).is_err());
    }
}
