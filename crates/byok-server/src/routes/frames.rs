//! The compact binary batch framing (`Content-Type: application/x-byok-batch`): raw bytes
//! instead of base64 in JSON, for services that batch many records.
//!
//! ```text
//! request  = item*                      (at least one; at most the batch limit)
//! item     = u32 len | context bytes | u32 len | payload bytes     (big-endian lengths)
//! response = result*                    (one per item, in order)
//! result   = u8 0 | u32 len | output bytes                       (sealed record / plaintext)
//!          | u8 1 | u32 len | error JSON {"code", "message"}      (this item failed alone)
//! ```
//!
//! The response also carries `X-Byok-Failed: N`. A body that does not parse (a length past the
//! end) is 400 `invalid_request`; an empty one 400 `empty_batch`; too many items 413.

use crate::error::ApiError;

pub const MEDIA_TYPE: &str = "application/x-byok-batch";
/// How many items failed, on a binary batch's response.
pub const FAILED_HEADER: &str = "x-byok-failed";

/// One item: its context and payload, borrowed from the body.
#[derive(Debug, PartialEq, Eq)]
pub struct Item<'a> {
    pub context: &'a [u8],
    pub payload: &'a [u8],
}

fn take<'a>(body: &mut &'a [u8], what: &str, index: usize) -> Result<&'a [u8], ApiError> {
    let short = || ApiError::Invalid(format!("item {index}: the {what} runs past the end of the body"));
    let (len, rest) = body.split_first_chunk::<4>().ok_or_else(short)?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err(short());
    }
    let (field, rest) = rest.split_at(len);
    *body = rest;
    Ok(field)
}

/// The items of a body, checked against the batch limit before any is used.
pub fn parse(mut body: &[u8], limit: usize) -> Result<Vec<Item<'_>>, ApiError> {
    let mut items = Vec::new();
    while !body.is_empty() {
        let index = items.len();
        let context = take(&mut body, "context", index)?;
        let payload = take(&mut body, "payload", index)?;
        items.push(Item { context, payload });
        if items.len() > limit {
            // Count the rest cheaply for the message, without keeping them.
            let mut count = items.len();
            while !body.is_empty() && take(&mut body, "context", count).is_ok() && take(&mut body, "payload", count).is_ok() {
                count += 1;
            }
            return Err(ApiError::BatchTooLarge { items: count, limit });
        }
    }
    if items.is_empty() {
        return Err(ApiError::EmptyBatch);
    }
    Ok(items)
}

/// Appends one result.
pub fn push(out: &mut Vec<u8>, result: Result<&[u8], (&str, &str)>) {
    match result {
        Ok(bytes) => {
            out.push(0);
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        Err((code, message)) => {
            let error = serde_json::json!({ "code": code, "message": message }).to_string();
            out.push(1);
            out.extend_from_slice(&(error.len() as u32).to_be_bytes());
            out.extend_from_slice(error.as_bytes());
        }
    }
}

/// Builds a request body (clients, tests, benchmarks).
pub fn encode<'a>(items: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (context, payload) in items {
        out.extend_from_slice(&(context.len() as u32).to_be_bytes());
        out.extend_from_slice(context);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
    }
    out
}

/// Reads a response body: each result's bytes, or its error JSON.
pub fn decode(mut body: &[u8]) -> Option<Vec<Result<Vec<u8>, serde_json::Value>>> {
    let mut results = Vec::new();
    while let Some((&outcome, rest)) = body.split_first() {
        body = rest;
        let field = take(&mut body, "result", results.len()).ok()?;
        results.push(match outcome {
            0 => Ok(field.to_vec()),
            1 => Err(serde_json::from_slice(field).ok()?),
            _ => return None,
        });
    }
    Some(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_bodies_are_refused() {
        let body = encode([(&b"r1"[..], &b"hello"[..]), (&b""[..], &b""[..])]);
        let items = parse(&body, 10).expect("parse");
        assert_eq!(items, [Item { context: b"r1", payload: b"hello" }, Item { context: b"", payload: b"" }]);
        assert!(matches!(parse(&body[..body.len() - 1], 10), Err(ApiError::Invalid(m)) if m.contains("item 1")));
        assert!(matches!(parse(&body[..3], 10), Err(ApiError::Invalid(_))));
        assert!(matches!(parse(&[], 10), Err(ApiError::EmptyBatch)));
        assert!(matches!(parse(&body, 1), Err(ApiError::BatchTooLarge { items: 2, limit: 1 })));
        let mut huge = 0xffff_ffffu32.to_be_bytes().to_vec();
        huge.extend_from_slice(b"x");
        assert!(matches!(parse(&huge, 10), Err(ApiError::Invalid(_))), "a length past the end");

        let mut out = Vec::new();
        push(&mut out, Ok(b"sealed"));
        push(&mut out, Err(("invalid_ciphertext", "no")));
        let results = decode(&out).expect("decode");
        assert_eq!(results[0], Ok(b"sealed".to_vec()));
        assert_eq!(results[1].as_ref().expect_err("error")["code"], "invalid_ciphertext");
    }
}
