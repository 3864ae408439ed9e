//! The baseline: bare hyper answering every request with a fixed portfolio JSON body. No
//! routing, no middleware, no storage: what this machine and this client can do at most.

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

const BODY: &str = r#"{"portfolioId":"6740f1c2a1b2c3d4e5f60718","name":"Tech Growth","dateCreated":"2024-01-15T10:30:00.000Z","version":1}"#;

pub async fn serve(port: u16) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("baseline: serving a fixed JSON body on http://127.0.0.1:{port}/");
    let handle = |_: Request<Incoming>| async {
        Ok::<_, Infallible>(
            Response::builder().header("content-type", "application/json").body(BODY.to_owned()).unwrap_or_default(),
        )
    };
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = pfs_platform::shutdown::signal() => return Ok(()),
        };
        tokio::spawn(async move {
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(handle)).await;
        });
    }
}
