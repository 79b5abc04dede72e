//! A minimal HTTP/1.1 client over one keep-alive `TcpStream`: just enough to
//! drive sessiond (Content-Length or chunked responses, no pipelining).

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// One parsed response.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// The server will close the connection after this response.
    pub(crate) close: bool,
}

impl Response {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text, shortened for error messages.
    pub(crate) fn body_snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.chars().take(300).collect()
    }
}

/// The bytes of one request, built once and sent many times.
pub(crate) fn request(
    method: &str,
    path: &str,
    addr: SocketAddr,
    bearer: Option<&str>,
    json_body: Option<&str>,
) -> Vec<u8> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: sessiond-bench/0.1\r\n\
         Accept: application/json\r\n"
    );
    if let Some(token) = bearer {
        req.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    match json_body {
        Some(body) => {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        }
        None => req.push_str("\r\n"),
    }
    req.into_bytes()
}

/// A keep-alive connection with its read buffer.
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub(crate) async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buf: Vec::with_capacity(8192) })
    }

    /// Writes `req` and reads exactly one response.
    pub(crate) async fn roundtrip(&mut self, req: &[u8]) -> io::Result<Response> {
        self.stream.write_all(req).await?;
        self.read_response().await
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(8192);
        }
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(())
    }

    async fn read_response(&mut self) -> io::Result<Response> {
        let (head_len, status, content_length, chunked, close) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 48];
            let mut parsed = httparse::Response::new(&mut headers);
            match parsed.parse(&self.buf).map_err(invalid)? {
                httparse::Status::Complete(n) => {
                    let status = parsed.code.unwrap_or(0);
                    let mut content_length = None;
                    let mut chunked = false;
                    let mut close = parsed.version == Some(0);
                    for h in parsed.headers.iter() {
                        let value = String::from_utf8_lossy(h.value);
                        if h.name.eq_ignore_ascii_case("content-length") {
                            content_length = Some(value.trim().parse::<usize>().map_err(invalid)?);
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            chunked = value.to_ascii_lowercase().contains("chunked");
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            let v = value.to_ascii_lowercase();
                            close = v.contains("close") || (close && !v.contains("keep-alive"));
                        }
                    }
                    break (n, status, content_length, chunked, close);
                }
                httparse::Status::Partial => self.fill().await?,
            }
        };
        if (100..200).contains(&status) {
            // An interim answer (100 Continue): drop it and read the real one.
            self.buf.drain(..head_len);
            return Box::pin(self.read_response()).await;
        }
        let (body, consumed, close) = if chunked {
            let (body, consumed) = self.read_chunked(head_len).await?;
            (body, consumed, close)
        } else if let Some(len) = content_length {
            while self.buf.len() < head_len + len {
                self.fill().await?;
            }
            (self.buf[head_len..head_len + len].to_vec(), head_len + len, close)
        } else if status == 204 || status == 304 {
            (Vec::new(), head_len, close)
        } else {
            // Delimited by the end of the connection.
            loop {
                match self.fill().await {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            (self.buf[head_len..].to_vec(), self.buf.len(), true)
        };
        self.buf.drain(..consumed);
        Ok(Response { status, body, close })
    }

    /// Decodes a chunked body starting at `pos`; returns it and the end offset.
    async fn read_chunked(&mut self, mut pos: usize) -> io::Result<(Vec<u8>, usize)> {
        let mut body = Vec::new();
        loop {
            match httparse::parse_chunk_size(&self.buf[pos..]).map_err(|_| invalid("bad chunk"))? {
                httparse::Status::Complete((used, size)) => {
                    let size = usize::try_from(size).map_err(invalid)?;
                    let end = pos + used + size + 2; // data and its CRLF
                    while self.buf.len() < end {
                        self.fill().await?;
                    }
                    body.extend_from_slice(&self.buf[pos + used..pos + used + size]);
                    pos = end;
                    if size == 0 {
                        return Ok((body, pos));
                    }
                }
                httparse::Status::Partial => self.fill().await?,
            }
        }
    }
}

fn invalid(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}
