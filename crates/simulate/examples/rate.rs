//! Measures how fast the simulator makes frames: `cargo run --release -p skystream-simulate
//! --example rate -- [frames] [accounts] [seed] [max_writes_per_account]`.
//!
//! Prints wall-clock and (on Linux) on-CPU rates per 20,000 frames, so a busy machine does not
//! hide the generator's own cost.

use std::time::Instant;

use skystream_simulate::{SimConfig, Simulator};

/// Nanoseconds this thread has spent on a CPU (Linux), if known.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().ok());
    let frames = args.next().flatten().unwrap_or(100_000);
    let accounts = args.next().flatten().unwrap_or(500) as usize;
    let seed = args.next().flatten().unwrap_or(1);
    let max_writes = args.next().flatten().map(|n| n as usize);
    let start = Instant::now();
    let mut sim = Simulator::new(SimConfig {
        seed,
        accounts,
        max_writes_per_account: max_writes.unwrap_or(SimConfig::default().max_writes_per_account),
        ..SimConfig::default()
    });
    let setup = start.elapsed();
    let start = Instant::now();
    let cpu_start = cpu_ns();
    let mut bytes = 0usize;
    let mut window = (Instant::now(), cpu_ns());
    for i in 1..=frames {
        bytes += sim.next().map_or(0, |f| f.bytes.len());
        if i % 20_000 == 0 {
            let wall = window.0.elapsed().as_secs_f64();
            let cpu = cpu_ns().zip(window.1).map(|(b, a)| (b - a) as f64 / 1e9);
            eprintln!(
                "{i:>9} frames  {:>6.0} frames/s wall  {} frames/s on-CPU",
                20_000.0 / wall,
                cpu.map_or("?".into(), |c| format!("{:.0}", 20_000.0 / c))
            );
            window = (Instant::now(), cpu_ns());
        }
    }
    let dt = start.elapsed().as_secs_f64();
    let cpu = cpu_ns().zip(cpu_start).map(|(b, a)| (b - a) as f64 / 1e9);
    println!(
        "{accounts} accounts (set up in {:.1} ms): {frames} frames in {dt:.2} s = {:.0} frames/s wall, {} frames/s on-CPU, {:.0} bytes/frame",
        setup.as_secs_f64() * 1e3,
        frames as f64 / dt,
        cpu.map_or("?".into(), |c| format!("{:.0}", frames as f64 / c)),
        bytes as f64 / frames as f64
    );
    println!("{:#?}", sim.stats());
}
