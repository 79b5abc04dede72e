//! Routing over the whole app: unknown routes, request ids, trailing
//! slashes, methods, body limits and kinds, and the real server's counting
//! of chunked bodies.

use crate::test_support::*;

#[actix_web::test]
async fn unknown_routes_are_404_envelopes_with_a_request_id() {
    let f = fixture();
    let (status, headers, body) = send(&f.state, atest::TestRequest::get().uri("/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "NOT_FOUND");
    assert_eq!(body["success"], false);
    let id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(Uuid::parse_str(id).is_ok());
    assert_eq!(body["requestId"], id);
}

#[actix_web::test]
async fn the_clients_request_id_is_kept_when_sane() {
    let f = fixture();
    let req =
        atest::TestRequest::get().uri("/health/live").insert_header(("X-Request-Id", "abc-123"));
    let (status, headers, body) = send(&f.state, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get("x-request-id").and_then(|v| v.to_str().ok()), Some("abc-123"));
    assert_eq!(body["requestId"], "abc-123");
    let req = post("/api/auth/login").insert_header(("X-Request-Id", "bad id!"));
    let (_, headers, body) = send(&f.state, req).await;
    let id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(Uuid::parse_str(id).is_ok());
    assert_eq!(body["requestId"], id);
}

#[actix_web::test]
async fn trailing_slashes_answer_directly() {
    let f = fixture();
    for path in ["/health/live", "/health/live/", "/health/live//", "/"] {
        let (status, _, _) = send(&f.state, atest::TestRequest::get().uri(path)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (status, _, body) =
        send(&f.state, bearer(post("/api/auth/token-info/"), &f.user_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["username"], "alice");
}

#[actix_web::test]
async fn other_methods_are_405_before_authentication() {
    let f = fixture();
    let (status, headers, body) =
        send(&f.state, atest::TestRequest::get().uri("/api/auth/login")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(code(&body), "METHOD_NOT_ALLOWED");
    assert_eq!(headers.get(header::ALLOW).and_then(|v| v.to_str().ok()), Some("POST"));
    let (status, _, body) = send(&f.state, atest::TestRequest::delete().uri("/api/auth/me/")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(code(&body), "METHOD_NOT_ALLOWED");
    let (status, _, _) = send(&f.state, post("/api/admin/users/x")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[actix_web::test]
async fn large_bodies_are_413() {
    let f = fixture();
    let big = format!(r#"{{"username":"{}","password":"x"}}"#, "a".repeat(70_000));
    // No Content-Length: counted while reading.
    let (status, _, body) = send(&f.state, post("/api/auth/login").set_payload(big.clone())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&body), "PAYLOAD_TOO_LARGE");
    // Declared too large: refused without reading.
    let req = post("/api/auth/login")
        .set_payload("{}")
        .insert_header((header::CONTENT_LENGTH, "1000000"));
    let (status, _, _) = send(&f.state, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Declared small, sent large: counted while reading.
    let req =
        post("/api/auth/login").set_payload(big).insert_header((header::CONTENT_LENGTH, "10"));
    let (status, _, _) = send(&f.state, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Exactly the limit is fine (and then judged on its content).
    let pad = " ".repeat(body::LIMIT - 2);
    let (status, _, _) =
        send(&f.state, post("/api/auth/health").set_payload(format!("{{{pad}}}"))).await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn bodies_are_classified() {
    let f = fixture();
    let cases = [
        (Some("text/plain"), r#"{"username":"a","password":"b"}"#, 400, "BAD_REQUEST"),
        (Some("application/json"), "{nope", 400, "BAD_REQUEST"),
        (None, "", 400, "BAD_REQUEST"),
        (None, "[1]", 422, "VALIDATION_ERROR"),
        (None, r#"{"username":"a"}"#, 422, "VALIDATION_ERROR"),
        (None, r#"{"username":1,"password":"b"}"#, 422, "VALIDATION_ERROR"),
    ];
    for (ct, payload, want, want_code) in cases {
        let mut req = post("/api/auth/login").set_payload(payload);
        if let Some(ct) = ct {
            req = req.insert_header((header::CONTENT_TYPE, ct));
        }
        let (status, _, body) = send(&f.state, req).await;
        assert_eq!(status.as_u16(), want, "{payload}");
        assert_eq!(code(&body), want_code, "{payload}");
    }
    let (_, _, body) =
        send(&f.state, post("/api/auth/login").set_payload(r#"{"username":"a"}"#)).await;
    assert_eq!(body["error"]["details"], json!({"password": "is required"}));
    assert_eq!(body["message"], "Validation failed");
}

/// Sends raw HTTP/1.1 bytes to `addr` and returns what came back.
fn raw_exchange(addr: std::net::SocketAddr, head: &str, chunks: &[Vec<u8>]) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let _ = stream.write_all(head.as_bytes());
    for chunk in chunks {
        // The server may answer and stop reading early: ignore write errors.
        let _ = stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
        let _ = stream.write_all(chunk);
        let _ = stream.write_all(b"\r\n");
    }
    if !chunks.is_empty() {
        let _ = stream.write_all(b"0\r\n\r\n");
    }
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[actix_web::test]
async fn the_real_server_counts_chunked_bodies() {
    let f = fixture();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("its address");
    let srv =
        server(f.state.clone(), listener, 1, std::time::Duration::from_secs(1)).expect("a server");
    let handle = srv.handle();
    actix_web::rt::spawn(srv);
    let head = "POST /api/auth/health HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let mut chunks = vec![b"{\"app\":\"".to_vec()];
    chunks.extend(std::iter::repeat_n(vec![b'a'; 1024], 70));
    chunks.push(b"\"}".to_vec());
    let big = web::block(move || raw_exchange(addr, head, &chunks)).await.unwrap_or_default();
    let small = web::block(move || {
        raw_exchange(addr, head, &[b"{\"app\":".to_vec(), b"\"web\"}".to_vec()])
    })
    .await
    .unwrap_or_default();
    let unknown = web::block(move || {
        raw_exchange(addr, "GET /nope/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &[])
    })
    .await
    .unwrap_or_default();
    handle.stop(false).await;
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");
    assert!(big.contains("PAYLOAD_TOO_LARGE"), "{big}");
    assert!(small.starts_with("HTTP/1.1 200"), "{small}");
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    assert!(unknown.to_ascii_lowercase().contains("x-request-id: "), "{unknown}");
}
