//! Parsing and validating like requests (pure: bytes in, `Like`s or a
//! `GatewayError` out).
//!
//! - `POST /videos/{id}/likes` takes an empty body (one like) or
//!   `{"count": n}` with an optional `"ts"` (epoch ms).
//! - `POST /likes` takes `[{"video_id": "...", "count": n, "ts": ms}, ...]`
//!   or the same list under `{"likes": [...]}`.

use super::Like;
use crate::error::GatewayError;
use serde::Deserialize;
use videocounter_protocol::validate_video_id;

/// Most likes one item may carry. In the `raw` format each like is one
/// record, so this bounds how many records one request can fan out to.
pub const MAX_COUNT_PER_ITEM: u32 = 1_000;
/// Most items in one batch request.
pub const MAX_BATCH_ITEMS: usize = 1_000;
/// Most likes (sum of counts) in one batch request.
pub const MAX_LIKES_PER_REQUEST: u64 = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SingleBody {
    count: Option<i64>,
    ts: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchItem {
    video_id: String,
    count: Option<i64>,
    ts: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum BatchBody {
    List(Vec<BatchItem>),
    Wrapped { likes: Vec<BatchItem> },
}

/// The gateway's rule for video ids: the workers' (1 to 256 bytes of UTF-8,
/// no control characters), and not blank nor padded with whitespace. The
/// workers count `" cat"` apart from `"cat"`; at the gateway such an id is
/// almost always a typo or a broken client, so it is refused here.
pub fn video_id_problem(id: &str) -> Option<String> {
    if let Err(e) = validate_video_id(id) {
        return Some(e.to_string());
    }
    if id.trim().is_empty() {
        return Some("video id is blank (only whitespace)".into());
    }
    if id.trim() != id {
        return Some("video id starts or ends with whitespace".into());
    }
    None
}

pub fn check_video_id(id: &str) -> Result<(), GatewayError> {
    match video_id_problem(id) {
        None => Ok(()),
        Some(reason) => Err(GatewayError::InvalidVideoId {
            id: truncate_for_message(id),
            reason,
        }),
    }
}

/// A path's video id that is not UTF-8 once percent-decoded (`%FF`): the
/// error quotes it as it was sent.
pub fn undecodable_video_id(raw: &str) -> GatewayError {
    GatewayError::InvalidVideoId {
        id: truncate_for_message(raw),
        reason: "it is not UTF-8 once percent-decoded".into(),
    }
}

/// The body of `POST /videos/{id}/likes`.
pub fn parse_single(video_id: &str, body: &[u8]) -> Result<Like, GatewayError> {
    check_video_id(video_id)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Like::one(video_id));
    }
    let parsed: SingleBody = serde_json::from_slice(body).map_err(|e| {
        GatewayError::InvalidBody(format!("expected {{\"count\": <1..={MAX_COUNT_PER_ITEM}>}}: {e}"))
    })?;
    Ok(Like {
        video_id: video_id.to_owned(),
        count: check_count(parsed.count, "count")?,
        ts: check_ts(parsed.ts, "ts")?,
    })
}

/// The body of `POST /likes`; every item is checked before anything is sent.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Like>, GatewayError> {
    let parsed: BatchBody = serde_json::from_slice(body).map_err(|e| {
        GatewayError::InvalidBody(format!(
            "expected a list of {{\"video_id\": \"...\", \"count\": n}} (or {{\"likes\": [...]}}): {e}"
        ))
    })?;
    let items = match parsed {
        BatchBody::List(items) | BatchBody::Wrapped { likes: items } => items,
    };
    if items.is_empty() {
        return Err(GatewayError::InvalidBody("the batch is empty".into()));
    }
    if items.len() > MAX_BATCH_ITEMS {
        return Err(GatewayError::InvalidBody(format!(
            "the batch has {} items, the limit is {MAX_BATCH_ITEMS}",
            items.len()
        )));
    }
    let mut likes = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        check_video_id(&item.video_id).map_err(|e| match e {
            GatewayError::InvalidVideoId { id, reason } => GatewayError::InvalidVideoId {
                id,
                reason: format!("{reason} (item {i})"),
            },
            other => other,
        })?;
        likes.push(Like {
            count: check_count(item.count, &format!("item {i}: count"))?,
            ts: check_ts(item.ts, &format!("item {i}: ts"))?,
            video_id: item.video_id,
        });
    }
    let total: u64 = likes.iter().map(|l| u64::from(l.count)).sum();
    if total > MAX_LIKES_PER_REQUEST {
        return Err(GatewayError::InvalidBody(format!(
            "the batch carries {total} likes, the limit is {MAX_LIKES_PER_REQUEST} per request"
        )));
    }
    Ok(likes)
}

pub fn check_count(count: Option<i64>, field: &str) -> Result<u32, GatewayError> {
    match count {
        None => Ok(1),
        Some(n) if (1..=i64::from(MAX_COUNT_PER_ITEM)).contains(&n) => Ok(n as u32),
        Some(n) => Err(GatewayError::InvalidBody(format!(
            "{field} is {n}, it must be between 1 and {MAX_COUNT_PER_ITEM}"
        ))),
    }
}

pub fn check_ts(ts: Option<i64>, field: &str) -> Result<Option<i64>, GatewayError> {
    match ts {
        Some(t) if t < 0 => Err(GatewayError::InvalidBody(format!(
            "{field} is {t}, it must be milliseconds since the Unix epoch"
        ))),
        other => Ok(other),
    }
}

/// Error messages echo the id, but never a 100 KB one.
pub fn truncate_for_message(id: &str) -> String {
    const SHOWN: usize = 64;
    if id.len() <= SHOWN {
        return id.to_owned();
    }
    let mut end = SHOWN;
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &id[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_body_is_one_like() {
        assert_eq!(parse_single("v1", b"").unwrap(), Like::one("v1"));
        assert_eq!(parse_single("v1", b" \n").unwrap(), Like::one("v1"));
    }

    #[test]
    fn count_and_ts_are_read() {
        let like = parse_single("v1", br#"{"count": 5, "ts": 1700000000000}"#).unwrap();
        assert_eq!(
            like,
            Like {
                video_id: "v1".into(),
                count: 5,
                ts: Some(1_700_000_000_000)
            }
        );
    }

    #[test]
    fn counts_out_of_range_are_rejected() {
        for body in [r#"{"count": 0}"#, r#"{"count": -3}"#, r#"{"count": 1001}"#] {
            let err = parse_single("v1", body.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("between 1 and 1000"), "{body}: {err}");
        }
        assert_eq!(parse_single("v1", br#"{"count": 1000}"#).unwrap().count, 1000);
    }

    #[test]
    fn malformed_and_unknown_fields_are_rejected() {
        for body in [
            "{",
            "[1]",
            r#"{"cnt": 2}"#,
            r#"{"count": "2"}"#,
            r#"{"count": 1.5}"#,
        ] {
            let err = parse_single("v1", body.as_bytes()).unwrap_err();
            assert!(matches!(err, GatewayError::InvalidBody(_)), "{body}: {err}");
        }
    }

    #[test]
    fn bad_ids_are_rejected_with_the_shared_rule() {
        assert!(matches!(
            parse_single("", b""),
            Err(GatewayError::InvalidVideoId { .. })
        ));
        assert!(matches!(
            parse_single("a\u{7}b", b""),
            Err(GatewayError::InvalidVideoId { .. })
        ));
        let long = "x".repeat(300);
        let err = parse_single(&long, b"").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("300 bytes long, the limit is 256"), "{text}");
        assert!(text.len() < 200, "the message must not echo the whole id: {text}");
        assert_eq!(parse_single("vidéo-1", b"").unwrap().video_id, "vidéo-1");
    }

    #[test]
    fn blank_and_padded_ids_are_rejected_naming_the_problem() {
        for (id, reason) in [
            (" ", "video id is blank (only whitespace)"),
            ("\u{3000}", "video id is blank (only whitespace)"),
            (" cat", "video id starts or ends with whitespace"),
            ("cat ", "video id starts or ends with whitespace"),
        ] {
            assert_eq!(
                parse_single(id, b""),
                Err(GatewayError::InvalidVideoId {
                    id: id.into(),
                    reason: reason.into()
                }),
                "{id:?}"
            );
        }
        assert_eq!(parse_single("cat video", b"").unwrap().video_id, "cat video");
        let err = parse_batch(br#"[{"video_id": "a"}, {"video_id": " "}]"#).unwrap_err();
        assert!(
            err.to_string().contains("blank") && err.to_string().contains("(item 1)"),
            "{err}"
        );
    }

    #[test]
    fn an_undecodable_id_is_quoted_as_sent() {
        assert_eq!(
            undecodable_video_id("%FF").to_string(),
            "invalid video id \"%FF\": it is not UTF-8 once percent-decoded"
        );
    }

    #[test]
    fn batch_in_both_shapes() {
        let want = vec![
            Like {
                video_id: "a".into(),
                count: 2,
                ts: None,
            },
            Like::one("b"),
        ];
        let list = br#"[{"video_id": "a", "count": 2}, {"video_id": "b"}]"#;
        let wrapped = br#"{"likes": [{"video_id": "a", "count": 2}, {"video_id": "b"}]}"#;
        assert_eq!(parse_batch(list).unwrap(), want);
        assert_eq!(parse_batch(wrapped).unwrap(), want);
    }

    #[test]
    fn batch_errors_name_the_item() {
        let err = parse_batch(br#"[{"video_id": "a"}, {"video_id": ""}]"#).unwrap_err();
        assert!(err.to_string().contains("(item 1)"), "{err}");
        let err = parse_batch(br#"[{"video_id": "a", "count": 0}]"#).unwrap_err();
        assert!(err.to_string().contains("item 0: count is 0"), "{err}");
        assert!(parse_batch(b"[]").unwrap_err().to_string().contains("empty"));
    }

    #[test]
    fn batch_limits() {
        let items: Vec<_> = (0..=MAX_BATCH_ITEMS)
            .map(|i| serde_json::json!({ "video_id": format!("v{i}") }))
            .collect();
        let body = serde_json::to_vec(&items).unwrap();
        assert!(
            parse_batch(&body)
                .unwrap_err()
                .to_string()
                .contains("limit is 1000")
        );

        let items: Vec<_> = (0..11)
            .map(|i| serde_json::json!({ "video_id": format!("v{i}"), "count": 1000 }))
            .collect();
        let body = serde_json::to_vec(&items).unwrap();
        let err = parse_batch(&body).unwrap_err().to_string();
        assert!(err.contains("11000 likes, the limit is 10000"), "{err}");
    }
}
