//! What the `skystream` binary's tests share: free loopback ports and a seeded generator for
//! kill points.

#![allow(dead_code)]

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A small deterministic generator (xorshift), so a failing run repeats from its seed.
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (any value; zero is made odd).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    /// The seed from the environment variable `var`, else `default`, printed so a run can be
    /// repeated.
    pub fn from_env(var: &str, default: u64) -> XorShift {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default);
        eprintln!("kill points from seed {seed} ({var}={seed} repeats this run)");
        XorShift::new(seed)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
