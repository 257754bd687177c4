//! Per-IP limits: concurrent connections, and events per second shared by all of an address's
//! connections. A limited subscriber simply reads the log more slowly (nothing queues up for
//! it), so the limit costs the server no memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The limits (0 turns one off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpLimits {
    /// Concurrent connections per address.
    pub connections: u32,
    /// Events per second per address.
    pub events_per_sec: u32,
}

#[derive(Debug)]
struct PerIp {
    connections: u32,
    bucket: Arc<Mutex<Bucket>>,
}

/// A token bucket that may go into debt: taking more than is there makes the taker wait until
/// the debt is repaid, so a burst is smoothed to the rate.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The connections and rates of every address.
#[derive(Debug)]
pub struct Limiter {
    limits: IpLimits,
    ips: Mutex<HashMap<IpAddr, PerIp>>,
}

/// One admitted connection; releases its slot when dropped.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<Limiter>,
    ip: IpAddr,
    bucket: Arc<Mutex<Bucket>>,
}

impl Limiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: IpLimits) -> Arc<Limiter> {
        Arc::new(Limiter {
            limits,
            ips: Mutex::new(HashMap::new()),
        })
    }

    /// Admits a connection from `ip`, or `None` when the address is at its limit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Permit> {
        let mut ips = self.ips.lock().ok()?;
        let per = ips.entry(ip).or_insert_with(|| PerIp {
            connections: 0,
            bucket: Arc::new(Mutex::new(Bucket {
                tokens: f64::from(self.limits.events_per_sec),
                last: Instant::now(),
            })),
        });
        if self.limits.connections > 0 && per.connections >= self.limits.connections {
            return None;
        }
        per.connections += 1;
        Some(Permit {
            limiter: self.clone(),
            ip,
            bucket: per.bucket.clone(),
        })
    }

    /// Connections open from `ip`.
    pub fn connections(&self, ip: IpAddr) -> u32 {
        self.ips
            .lock()
            .map(|m| m.get(&ip).map_or(0, |p| p.connections))
            .unwrap_or(0)
    }
}

impl Permit {
    /// How long to wait after sending `sent` events and reading `scanned` (sent or filtered
    /// out) from the log: each sent event costs one token, each scanned one a tenth. Zero when
    /// under the rate.
    pub fn take(&self, sent: u64, scanned: u64) -> Duration {
        let rate = f64::from(self.limiter.limits.events_per_sec);
        let cost = sent as f64 + scanned as f64 / 10.0;
        if rate == 0.0 || cost == 0.0 {
            return Duration::ZERO;
        }
        let Ok(mut b) = self.bucket.lock() else {
            return Duration::ZERO;
        };
        let now = Instant::now();
        // Refill up to one second's worth (the burst), then take.
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * rate).min(rate);
        b.last = now;
        b.tokens -= cost;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / rate)
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Ok(mut ips) = self.limiter.ips.lock() {
            if let Some(p) = ips.get_mut(&self.ip) {
                p.connections = p.connections.saturating_sub(1);
                if p.connections == 0 {
                    ips.remove(&self.ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_per_ip() {
        let l = Limiter::new(IpLimits {
            connections: 2,
            events_per_sec: 0,
        });
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let p1 = l.admit(a).expect("first");
        let _p2 = l.admit(a).expect("second");
        assert!(l.admit(a).is_none(), "third refused");
        let _q = l.admit(b).expect("other address");
        drop(p1);
        assert_eq!(l.connections(a), 1);
        assert!(l.admit(a).is_some(), "slot freed");
        assert_eq!(p1_take_is_free(&l, b), Duration::ZERO);
    }

    fn p1_take_is_free(l: &Arc<Limiter>, ip: IpAddr) -> Duration {
        l.admit(ip).expect("admit").take(1_000_000, 1_000_000)
    }

    #[test]
    fn events_per_second_shared_by_an_address() {
        let l = Limiter::new(IpLimits {
            connections: 0,
            events_per_sec: 100,
        });
        let ip: IpAddr = "::1".parse().expect("ip");
        let p = l.admit(ip).expect("admit");
        let q = l.admit(ip).expect("admit");
        assert_eq!(p.take(50, 100), Duration::ZERO);
        assert_eq!(q.take(40, 0), Duration::ZERO);
        let wait = p.take(40, 100);
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
    }
}
