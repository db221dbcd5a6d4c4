//! psi's families in a program's own `prometheus::Registry`, beside its own
//! metrics, served by a tiny HTTP server on 127.0.0.1.
//!
//! ```text
//! cargo run -p psi-core --features prometheus --example serve [PORT] [REQUESTS]
//! curl -s 127.0.0.1:PORT/metrics
//! ```
//!
//! `PORT` 0 (the default) takes a free port, printed on the first line.
//! The server stops after `REQUESTS` requests (default 0: never). The
//! targets are the whole system and this process's own cgroup, told apart
//! by a `target` label. Files are read at every scrape, through descriptors
//! kept open between scrapes.

use std::error::Error;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use prometheus::{Encoder, IntCounter, Registry, TextEncoder};
use psi_core::prometheus::PsiCollector;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().map_or(Ok(0), |p| p.parse())?;
    let requests: u64 = args.next().map_or(Ok(0), |n| n.parse())?;

    // The three lines a program adds for psi (here with two targets).
    let registry = Registry::new();
    let psi = PsiCollector::builder()
        .system(&[("target", "system")])
        .pid(std::process::id(), &[("target", "self")])?
        .build()?;
    registry.register(Box::new(psi))?;

    // The program's own metric, in the same registry.
    let scrapes = IntCounter::new("example_scrapes_total", "Scrapes served")?;
    registry.register(Box::new(scrapes.clone()))?;

    let listener = TcpListener::bind(("127.0.0.1", port))?;
    println!("listening on {}", listener.local_addr()?);
    let mut served = 0;
    for stream in listener.incoming() {
        let stream = stream?;
        if let Err(e) = answer(stream, &registry, &scrapes) {
            eprintln!("request failed: {e}");
        }
        served += 1;
        if requests != 0 && served >= requests {
            break;
        }
    }
    println!("served {served} requests");
    Ok(())
}

/// Reads the request head and answers `GET /metrics`; 404 for anything else.
fn answer(
    stream: TcpStream,
    registry: &Registry,
    scrapes: &IntCounter,
) -> Result<(), Box<dyn Error>> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // The rest of the head, up to the blank line.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut words = request_line.split_whitespace();
    let (method, path) = (words.next(), words.next());
    let mut out = stream;
    if method != Some("GET") || path != Some("/metrics") {
        out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        return Ok(());
    }
    scrapes.inc();
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    encoder.encode(&registry.gather(), &mut body)?;
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        encoder.format_type(),
        body.len()
    )?;
    out.write_all(&body)?;
    Ok(())
}
