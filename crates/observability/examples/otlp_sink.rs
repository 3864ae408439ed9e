//! A local OTLP collector that decodes and counts what it receives, for benchmarks:
//! `cargo run --release -p pfs-observability --features testing --example otlp_sink -- 127.0.0.1:4317 grpc`.

use pfs_observability::testing::Receiver;
use std::time::Duration;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:4317".into()).parse().expect("an address");
    let receiver = match args.next().as_deref() {
        Some("http") => Receiver::http(address).await?,
        _ => Receiver::grpc(address).await?,
    };
    println!("listening on {}", receiver.endpoint());
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (spans, requests) = receiver.snapshot(|r| (r.spans.len(), r.requests));
        println!("received {spans} spans in {requests} export requests");
    }
}
