//! RTSP messages: incremental request parsing (`Ok(None)` until a whole request is
//! buffered), responses, the Transport header and the channel's SDP. Pure.

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub cseq: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Why a request could not be parsed (the connection is answered 400 and closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("request head over {0} bytes")]
    TooLong(usize),
    #[error("bad request line {0:?}; expected `METHOD rtsp://host/channel RTSP/1.0`")]
    BadRequestLine(String),
    #[error("bad header line {0:?}")]
    BadHeader(String),
    #[error("request bodies are not accepted")]
    Body,
}

/// Largest request head accepted.
pub const MAX_HEAD: usize = 8192;

/// Parses one request from the start of `buf`: the request and the bytes it used, or
/// `None` while incomplete.
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request, usize)>, MessageError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD { Err(MessageError::TooLong(MAX_HEAD)) } else { Ok(None) };
    };
    if end > MAX_HEAD {
        return Err(MessageError::TooLong(MAX_HEAD));
    }
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let parts: Vec<&str> = line.split(' ').collect();
    if parts.len() != 3 || !parts[2].starts_with("RTSP/1.") || parts[0].is_empty() || !parts[0].bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        return Err(MessageError::BadRequestLine(line.chars().take(200).collect()));
    }
    let mut headers = Vec::new();
    for l in lines {
        let (k, v) = l.split_once(':').ok_or_else(|| MessageError::BadHeader(l.chars().take(200).collect()))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    if headers.iter().any(|(k, v)| k == "content-length" && v != "0") {
        return Err(MessageError::Body);
    }
    let cseq = headers.iter().find(|(k, _)| k == "cseq").map(|(_, v)| v.clone()).unwrap_or_default();
    Ok(Some((Request { method: parts[0].to_owned(), uri: parts[1].to_owned(), cseq, headers }, end + 4)))
}

/// A response with `headers` and an optional body.
pub fn response(status: u16, reason: &str, cseq: &str, headers: &[(&str, String)], body: &str) -> Vec<u8> {
    let mut out = format!("RTSP/1.0 {status} {reason}\r\nCSeq: {cseq}\r\nServer: headend\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// How the client wants the RTP stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Over the RTSP connection, `$`-framed on channel `rtp` (RTCP on `rtp + 1`).
    Interleaved { rtp: u8 },
    /// RTP/UDP unicast to the client's address at `client_rtp`.
    Udp { client_rtp: u16 },
}

impl Transport {
    /// Parses the client's `Transport` header (the first acceptable alternative).
    pub fn parse(header: &str) -> Option<Transport> {
        for alt in header.split(',') {
            let params: Vec<&str> = alt.split(';').map(str::trim).collect();
            let spec = params.first().copied().unwrap_or_default();
            let value = |name: &str| params.iter().find_map(|p| p.strip_prefix(name).and_then(|v| v.strip_prefix('=')));
            let first_of = |v: &str| v.split('-').next().and_then(|n| n.parse::<u16>().ok());
            match spec {
                "RTP/AVP/TCP" => {
                    let rtp = value("interleaved").and_then(first_of).unwrap_or(0);
                    if rtp < 255 {
                        return Some(Transport::Interleaved { rtp: rtp as u8 });
                    }
                }
                "RTP/AVP" | "RTP/AVP/UDP" => {
                    if params.contains(&"multicast") {
                        continue;
                    }
                    if let Some(port) = value("client_port").and_then(first_of).filter(|p| *p != 0) {
                        return Some(Transport::Udp { client_rtp: port });
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// The `Transport` header of the answer.
    pub fn answer(self, server_rtp: u16) -> String {
        match self {
            Transport::Interleaved { rtp } => format!("RTP/AVP/TCP;unicast;interleaved={rtp}-{}", rtp as u16 + 1),
            Transport::Udp { client_rtp } => {
                format!("RTP/AVP;unicast;client_port={client_rtp}-{};server_port={server_rtp}-{}", client_rtp + 1, server_rtp + 1)
            }
        }
    }
}

/// The channel id named by a request URI (`rtsp://host[:port]/<channel>[/track...]`).
pub fn channel_of(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("rtsp://")?;
    let path = rest.split_once('/')?.1;
    let id = path.split(['/', '?']).next()?;
    let ok = !id.is_empty() && id.len() <= 63 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    ok.then(|| id.to_owned())
}

/// The session description of a channel: one MPEG-TS RTP stream.
pub fn sdp(channel: &str, host: &str) -> String {
    format!(
        "v=0\r\no=- 0 0 IN IP4 {host}\r\ns={channel}\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=control:*\r\nm=video 0 RTP/AVP 33\r\na=rtpmap:33 MP2T/90000\r\na=control:track0\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_incrementally() {
        let req = b"DESCRIBE rtsp://127.0.0.1:8554/rock RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\nOPTIONS";
        assert_eq!(parse_request(&req[..20]).unwrap(), None);
        let (r, used) = parse_request(req).unwrap().unwrap();
        assert_eq!((r.method.as_str(), r.cseq.as_str(), used), ("DESCRIBE", "2", req.len() - 7));
        assert_eq!(r.header("accept"), Some("application/sdp"));
        assert_eq!(channel_of(&r.uri).as_deref(), Some("rock"));
    }

    #[test]
    fn bad_requests_are_errors() {
        assert!(matches!(parse_request(b"GET / HTTP/1.1\r\n\r\n"), Err(MessageError::BadRequestLine(_))));
        assert!(matches!(parse_request(b"OPTIONS * RTSP/1.0\r\nno colon\r\n\r\n"), Err(MessageError::BadHeader(_))));
        assert!(matches!(parse_request(&vec![b'A'; MAX_HEAD + 1]), Err(MessageError::TooLong(_))));
        assert!(matches!(parse_request(b"ANNOUNCE rtsp://h/x RTSP/1.0\r\nContent-Length: 5\r\n\r\n"), Err(MessageError::Body)));
        assert_eq!(channel_of("rtsp://h/../etc"), None);
        assert_eq!(channel_of("http://h/rock"), None);
        assert_eq!(channel_of("rtsp://h:1/rock/track0").as_deref(), Some("rock"));
    }

    #[test]
    fn transports_are_parsed_and_answered() {
        assert_eq!(Transport::parse("RTP/AVP/TCP;unicast;interleaved=2-3"), Some(Transport::Interleaved { rtp: 2 }));
        assert_eq!(Transport::parse("RTP/AVP;unicast;client_port=5000-5001"), Some(Transport::Udp { client_rtp: 5000 }));
        assert_eq!(Transport::parse("RTP/AVP;multicast,RTP/AVP/TCP;interleaved=0-1"), Some(Transport::Interleaved { rtp: 0 }));
        assert_eq!(Transport::parse("RAW/RAW/UDP;unicast"), None);
        assert_eq!(Transport::Udp { client_rtp: 5000 }.answer(6000), "RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001");
    }

    #[test]
    fn responses_carry_cseq_and_length() {
        let r = String::from_utf8(response(200, "OK", "7", &[("Session", "abc".into())], "v=0\r\n")).unwrap();
        assert!(r.starts_with("RTSP/1.0 200 OK\r\nCSeq: 7\r\n"));
        assert!(r.contains("Session: abc\r\n") && r.contains("Content-Length: 5\r\n") && r.ends_with("\r\n\r\nv=0\r\n"));
        assert!(sdp("rock", "127.0.0.1").contains("a=rtpmap:33 MP2T/90000"));
    }
}
