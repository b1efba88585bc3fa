//! Rate limits of the token endpoint, per client address and per client id.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Sustained requests per second and the burst allowed on top.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Rate {
    pub fn quota(self) -> Quota {
        Quota::per_second(self.per_second).allow_burst(self.burst)
    }
}

pub struct AuthorizeLimiter {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_client: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl AuthorizeLimiter {
    pub fn new(per_ip: Rate, per_client: Rate) -> Self {
        AuthorizeLimiter {
            per_ip: RateLimiter::keyed(per_ip.quota()),
            per_client: RateLimiter::keyed(per_client.quota()),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(wait)` when the address is over its rate.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        self.per_ip
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// `Err(wait)` when the client id is over its rate.
    pub fn check_client(&self, client_id: &str) -> Result<(), Duration> {
        self.per_client
            .check_key(&client_id.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets keys that have been quiet long enough to be back at full burst; run periodically
    /// so that the maps do not grow with every address ever seen.
    pub fn forget_idle(&self) {
        self.per_ip.retain_recent();
        self.per_client.retain_recent();
    }
}
