//! Server-sent events, parsed incrementally from bytes that may be split anywhere (inside a
//! line, inside a `\r\n`, inside a UTF-8 character), as the HTML standard's event-stream
//! interpretation describes: `event:` and `data:` fields, multi-line data joined by `\n`,
//! comments (`:`) ignored, an event dispatched at a blank line.

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// The `event:` field; `message` when absent.
    pub(crate) event: String,
    pub(crate) data: String,
}

/// Feeds bytes in, takes events out.
#[derive(Debug)]
pub(crate) struct Parser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    /// A `\r` ended the last line: a `\n` right after it belongs to the same line end.
    after_cr: bool,
    /// The most bytes an event (its lines so far) may hold.
    limit: usize,
}

impl Default for Parser {
    fn default() -> Self {
        Self::with_limit(usize::MAX)
    }
}

impl Parser {
    /// A parser of events of at most `limit` bytes.
    pub(crate) fn with_limit(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            event: None,
            data: None,
            after_cr: false,
            limit,
        }
    }

    /// Adds `bytes` and returns the events they complete; `Err(limit)` when the event being
    /// read grows past the limit (a line that never ends, data that never stops): what it
    /// held is dropped, and the stream should not be read further.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, usize> {
        let mut events = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.buf);
                    if let Some(event) = self.line(&line) {
                        events.push(event);
                    }
                }
                b => self.buf.push(b),
            }
            if self.buf.len() > self.limit || self.data.as_ref().map_or(0, String::len) > self.limit
            {
                *self = Self::with_limit(self.limit);
                return Err(self.limit);
            }
        }
        Ok(events)
    }

    /// Whether bytes of an unfinished event are held (the stream ended mid-event).
    pub(crate) fn has_partial(&self) -> bool {
        !self.buf.is_empty() || self.data.is_some()
    }

    fn line(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            let data = self.data.take();
            let event = self.event.take();
            return data.map(|data| Event {
                event: event.unwrap_or_else(|| "message".to_owned()),
                data,
            });
        }
        if line[0] == b':' {
            return None;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.find(':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (&line[..], ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "event: message_start\r\ndata: {\"a\":\"é\"}\r\n\r\n: ping\n\nevent: delta\ndata: one\ndata: two\n\ndata: [DONE]\n\n";

    fn all_at_once() -> Vec<Event> {
        Parser::default().push(STREAM.as_bytes()).unwrap()
    }

    #[test]
    fn fields_comments_and_multiline_data() {
        let events = all_at_once();
        assert_eq!(
            events,
            vec![
                Event {
                    event: "message_start".into(),
                    data: "{\"a\":\"é\"}".into()
                },
                Event {
                    event: "delta".into(),
                    data: "one\ntwo".into()
                },
                Event {
                    event: "message".into(),
                    data: "[DONE]".into()
                },
            ]
        );
    }

    #[test]
    fn any_split_gives_the_same_events() {
        let bytes = STREAM.as_bytes();
        for a in 0..bytes.len() {
            for b in a..bytes.len() {
                let mut p = Parser::default();
                let mut events = p.push(&bytes[..a]).unwrap();
                events.extend(p.push(&bytes[a..b]).unwrap());
                events.extend(p.push(&bytes[b..]).unwrap());
                assert_eq!(events, all_at_once(), "split at {a} and {b}");
                assert!(!p.has_partial());
            }
        }
    }

    #[test]
    fn an_event_past_the_limit_is_refused_and_nothing_is_kept() {
        let mut p = Parser::with_limit(64);
        assert_eq!(p.push(b"data: short\n\n").unwrap().len(), 1);
        // A line that never ends, fed in pieces.
        assert!(p.push(&[b'x'; 40]).is_ok());
        assert_eq!(p.push(&[b'x'; 40]), Err(64));
        assert!(!p.has_partial(), "what it held is dropped");
        // Data lines that never end an event.
        let mut p = Parser::with_limit(64);
        assert_eq!(p.push(&b"data: 0123456789\n".repeat(10)), Err(64));
    }

    #[test]
    fn a_cut_stream_leaves_a_partial_event() {
        let mut p = Parser::default();
        let events = p.push(b"event: delta\ndata: {\"te").unwrap();
        assert!(events.is_empty());
        assert!(p.has_partial());
    }
}
