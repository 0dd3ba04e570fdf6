//! Reading `text/event-stream` bodies (the event stream format of the HTML standard's
//! server-sent events): what a REST subscription field streams from, and GraphQL
//! subgraphs subscribed over `graphql-sse`. Bytes arrive in arbitrary chunks; lines end
//! with CRLF, LF or CR; an event ends at a blank line. One event's size is bounded, so
//! a backend that never ends a line cannot grow memory.

use std::collections::VecDeque;

use futures::StreamExt;
use futures::stream::BoxStream;

/// One dispatched event.
#[derive(Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, `message` when absent.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// An event grew past the limit.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLarge(pub usize);

/// Why an event stream stopped before its body ended.
#[derive(Debug)]
pub enum ReadError {
    TooLarge(usize),
    /// The connection broke (the cause, as text).
    Broken(String),
}

/// The events of a response body; the stream ends with the body or after an error.
pub fn read(
    response: reqwest::Response,
    max_event_bytes: usize,
) -> BoxStream<'static, Result<SseEvent, ReadError>> {
    struct Reader {
        response: reqwest::Response,
        decoder: SseDecoder,
        queue: VecDeque<SseEvent>,
        ended: bool,
    }
    let reader = Reader {
        response,
        decoder: SseDecoder::new(max_event_bytes),
        queue: VecDeque::new(),
        ended: false,
    };
    futures::stream::unfold(reader, |mut r| async move {
        loop {
            if let Some(event) = r.queue.pop_front() {
                return Some((Ok(event), r));
            }
            if r.ended {
                return None;
            }
            let error = match r.response.chunk().await {
                Ok(Some(bytes)) => match r.decoder.feed(&bytes, &mut r.queue) {
                    Ok(()) => continue,
                    Err(TooLarge(limit)) => ReadError::TooLarge(limit),
                },
                Ok(None) => {
                    r.ended = true;
                    continue;
                }
                Err(e) => ReadError::Broken(crate::sources::root_cause(&e)),
            };
            r.ended = true;
            r.queue.clear();
            return Some((Err(error), r));
        }
    })
    .boxed()
}

pub struct SseDecoder {
    line: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
    /// The last byte was a CR: an LF right after it ends nothing more.
    after_cr: bool,
    /// Bytes seen so far, to drop a leading byte order mark.
    seen: usize,
    max_event_bytes: usize,
}

impl SseDecoder {
    pub fn new(max_event_bytes: usize) -> Self {
        SseDecoder {
            line: Vec::new(),
            event: String::new(),
            data: String::new(),
            has_data: false,
            after_cr: false,
            seen: 0,
            max_event_bytes,
        }
    }

    /// Decodes `bytes`; the events they complete are appended to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<SseEvent>) -> Result<(), TooLarge> {
        for &b in bytes {
            self.seen += 1;
            if self.seen <= 3 && self.line.is_empty() && b == [0xef, 0xbb, 0xbf][self.seen - 1] {
                continue;
            }
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => self.end_line(out),
                _ => {
                    if self.line.len() + self.data.len() + self.event.len() >= self.max_event_bytes
                    {
                        return Err(TooLarge(self.max_event_bytes));
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(())
    }

    fn end_line(&mut self, out: &mut VecDeque<SseEvent>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            let data = std::mem::take(&mut self.data);
            let event = std::mem::take(&mut self.event);
            if std::mem::take(&mut self.has_data) {
                out.push_back(SseEvent {
                    event: if event.is_empty() {
                        "message".into()
                    } else {
                        event
                    },
                    data,
                });
            }
            return;
        }
        let line = String::from_utf8_lossy(&line);
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // `id` and `retry` serve reconnecting browsers; unknown fields are ignored.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new(64);
        let mut out = VecDeque::new();
        for chunk in chunks {
            decoder.feed(chunk, &mut out).expect("within the limit");
        }
        out.into()
    }

    fn event(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_split_across_chunks_and_line_endings() {
        let events = decode(&[
            b"\xef\xbb\xbfdata: {\"a\"",
            b":1}\r",
            b"\n\r\n: a comment\nevent: error\ndata:x\ndata: y\r\rid: 7\nretry: 10\n\n",
            b"data\n\nevent: lonely\n\n",
        ]);
        assert_eq!(
            events,
            [
                event("message", "{\"a\":1}"),
                event("error", "x\ny"),
                event("message", ""),
            ]
        );
    }

    #[test]
    fn an_event_past_the_limit_is_refused() {
        let mut decoder = SseDecoder::new(16);
        let mut out = VecDeque::new();
        assert_eq!(
            decoder.feed(b"data: 0123456789abcdef", &mut out),
            Err(TooLarge(16))
        );
        let mut decoder = SseDecoder::new(16);
        decoder.feed(b"data: 012345\n", &mut out).expect("fits");
        assert!(decoder.feed(b"data: 6789abcdef\n", &mut out).is_err());
    }
}
