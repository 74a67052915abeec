//! Health probes for containers whose image has no shell or curl: a TCP
//! connect, or an HTTP GET that must answer 2xx.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use url::Url;

use lenspipe_plans::{Error, Result};

/// Checks `target` (`tcp://host:port` or `http://host:port/path`) once,
/// within `timeout`.
pub fn probe(target: &str, timeout: Duration) -> Result<()> {
    let url = Url::parse(target).map_err(|e| Error::Config(format!("probe '{target}': {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| Error::Config(format!("probe '{target}': no host")))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| Error::Config(format!("probe '{target}': no port")))?;
    let unreachable = |e: std::io::Error| Error::Other(format!("probe {target}: {e}"));
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(unreachable)?
        .next()
        .ok_or_else(|| Error::Other(format!("probe {target}: {host} has no address")))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(unreachable)?;
    match url.scheme() {
        "tcp" => Ok(()),
        "http" => {
            stream
                .set_read_timeout(Some(timeout))
                .map_err(unreachable)?;
            stream
                .set_write_timeout(Some(timeout))
                .map_err(unreachable)?;
            let path = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_string(),
            };
            // One write: the request leaves in one segment, as servers expect.
            let request =
                format!("GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).map_err(unreachable)?;
            // The status line is all that is needed; 64 bytes hold it.
            let mut head = [0u8; 64];
            let mut n = 0;
            while n < head.len() {
                match stream.read(&mut head[n..]).map_err(unreachable)? {
                    0 => break,
                    k => n += k,
                }
                if head[..n].contains(&b'\n') {
                    break;
                }
            }
            let status = status_code(&head[..n])
                .ok_or_else(|| Error::Other(format!("probe {target}: not an HTTP answer")))?;
            if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(Error::Other(format!("probe {target}: HTTP {status}")))
            }
        }
        other => Err(Error::Config(format!(
            "probe '{target}': scheme {other} is not tcp or http"
        ))),
    }
}

fn status_code(head: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(head).ok()?.lines().next()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Answers the first connection that sends a whole request: a test
        // running beside this one may connect to a port it just freed and
        // this listener reused, and send nothing. The request is read to its
        // end before answering: closing a socket with unread bytes resets
        // the connection, and the client would see that instead of the answer.
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                let mut request = Vec::new();
                let mut buf = [0u8; 512];
                while !request.ends_with(b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(n) if n > 0 => request.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                }
                if request.ends_with(b"\r\n\r\n") {
                    let _ = s.write_all(answer.as_bytes());
                    break;
                }
            }
        });
        port
    }

    #[test]
    fn http_needs_a_2xx_answer() {
        let t = Duration::from_secs(2);
        let ok = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        probe(&format!("http://127.0.0.1:{ok}/api/state"), t).unwrap();
        let bad = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        let err = probe(&format!("http://127.0.0.1:{bad}/"), t).unwrap_err();
        assert!(err.to_string().contains("HTTP 503"), "{err}");
        let garbage = serve_once("hello");
        assert!(probe(&format!("http://127.0.0.1:{garbage}/"), t).is_err());
    }

    #[test]
    fn tcp_fails_on_a_closed_port() {
        let t = Duration::from_secs(2);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        probe(&format!("tcp://127.0.0.1:{port}"), t).unwrap();
        drop(listener);
        assert!(probe(&format!("tcp://127.0.0.1:{port}"), t).is_err());
        assert!(probe("ftp://127.0.0.1:21", t).is_err());
    }
}
