//! How an envelope is stored in the outbox: LZ4-compressed behind a marker byte, because the
//! row's size is most of what the outbox costs ingestion (migration V16). Envelopes stored
//! before V16 are plain JSON text and read as such.

/// The first byte of a packed envelope; a JSON text starts with `{`, never with it.
const PACKED: u8 = 0x01;

/// The stored form of a serialized envelope.
pub fn pack(envelope: &str) -> Vec<u8> {
    let compressed = lz4_flex::block::compress_prepend_size(envelope.as_bytes());
    let mut stored = Vec::with_capacity(compressed.len() + 1);
    stored.push(PACKED);
    stored.extend_from_slice(&compressed);
    stored
}

/// The serialized envelope of a stored one (packed, or plain JSON from before V16).
pub fn unpack(stored: &[u8]) -> Result<String, String> {
    let bytes = match stored.split_first() {
        Some((&PACKED, compressed)) => lz4_flex::block::decompress_size_prepended(compressed)
            .map_err(|e| format!("a packed envelope does not decompress: {e}"))?,
        _ => stored.to_vec(),
    };
    String::from_utf8(bytes).map_err(|e| format!("an envelope is not UTF-8: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_round_trips_smaller_and_plain_json_reads_as_is() {
        let id = "eyJQcm92aWRlciI6IkRVTU1ZLVBBWSIsIlJlZmVyZW5jZSI6IjRjMzViMDAxIn0";
        let envelope = format!(
            r#"{{"type":"SAVED_PAYMENT","payload":{{"id":"{id}x","connectorId":"{id}","destinationAccountId":"{id}y"}}}}"#
        );
        let stored = pack(&envelope);
        assert_eq!(stored[0], PACKED);
        assert!(stored.len() < envelope.len(), "{} bytes", stored.len());
        assert_eq!(unpack(&stored).as_deref(), Ok(envelope.as_str()));
        assert_eq!(unpack(br#"{"a":1}"#).as_deref(), Ok(r#"{"a":1}"#));
        assert!(
            unpack(&[PACKED, 9, 9]).is_err(),
            "a corrupt one is an error"
        );
    }
}
