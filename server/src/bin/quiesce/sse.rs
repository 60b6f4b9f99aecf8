//! A minimal reader of the server's live stream (`GET /api/events`, server-sent events): splits
//! the body into messages and yields each one's `event` name and `data`.

/// One server-sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `message` unless the server named it (`hello`, `resync`, `signed_out`).
    pub event: String,
    pub data: String,
}

/// Longest message kept while waiting for its end (a stream that never ends one is cut off).
const MAX_MESSAGE: usize = 1 << 20;

/// An open stream.
pub struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    pub fn new(response: reqwest::Response) -> Self {
        Stream { response, buffer: String::new() }
    }

    /// The next message; `None` when the stream ended or broke.
    pub async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(message) = take_message(&mut self.buffer) {
                if message.event.is_empty() && message.data.is_empty() {
                    continue; // a comment (keep-alive)
                }
                return Some(message);
            }
            match self.response.chunk().await {
                Ok(Some(bytes)) => {
                    self.buffer.push_str(&String::from_utf8_lossy(&bytes));
                    if self.buffer.len() > MAX_MESSAGE {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }
}

/// Removes the first complete message (ended by a blank line) from `buffer`.
fn take_message(buffer: &mut String) -> Option<Message> {
    let normalized = buffer.replace("\r\n", "\n");
    let end = normalized.find("\n\n")?;
    let block = normalized[..end].to_string();
    *buffer = normalized[end + 2..].to_string();
    let mut event = String::new();
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = value.to_string(),
            "data" => data.push(value),
            _ => {}
        }
    }
    if event.is_empty() && !data.is_empty() {
        event = "message".into();
    }
    Some(Message { event, data: data.join("\n") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_split_on_blank_lines() {
        let mut b = String::from(
            "event: hello\nretry: 2000\ndata: live\n\n: keep-alive\n\ndata: {\"a\":1}\n\ndata: part",
        );
        assert_eq!(take_message(&mut b), Some(Message { event: "hello".into(), data: "live".into() }));
        assert_eq!(take_message(&mut b), Some(Message { event: String::new(), data: String::new() }));
        assert_eq!(take_message(&mut b), Some(Message { event: "message".into(), data: "{\"a\":1}".into() }));
        assert_eq!(take_message(&mut b), None);
        assert_eq!(b, "data: part");
    }
}
