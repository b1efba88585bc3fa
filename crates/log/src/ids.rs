//! Monotonic UUIDv7 ids.
//!
//! Ids double as stream positions, so they must increase strictly in the order the single
//! writer commits them, even when the wall clock stands still or steps back (NTP) and across
//! restarts. The generator keeps the last id; a new id takes the current millisecond when it
//! is later, else it continues from the last id with a counter in the 74 "random" bits
//! (RFC 9562 §6.2, method 2: monotonic random).

use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

const VERSION_7: u128 = 0x7 << 76;
const VARIANT_RFC: u128 = 0b10 << 62;
/// The 12 bits of `rand_a` and 62 bits of `rand_b`, read as one 74-bit counter.
const RAND_A_MASK: u128 = 0xfff << 64;
const RAND_B_MASK: u128 = (1 << 62) - 1;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Generates strictly increasing UUIDv7s.
pub(crate) struct IdGenerator {
    last: u128,
}

impl IdGenerator {
    /// A generator whose ids are all greater than `floor` (the largest id already stored).
    pub fn new(floor: Uuid) -> Self {
        IdGenerator {
            last: floor.as_u128(),
        }
    }

    pub fn next(&mut self) -> Uuid {
        let now = u128::from(u64::try_from(now_ms()).unwrap_or(0)) & ((1 << 48) - 1);
        let last_ms = self.last >> 80;
        let id = if now > last_ms {
            // A fresh millisecond: random counter start, top bit clear so that increments
            // within this millisecond cannot overflow into the timestamp.
            let r: u128 = rand::random::<u128>();
            let counter = r & ((1 << 73) - 1);
            compose(now, counter)
        } else {
            let counter = (((self.last & RAND_A_MASK) >> 2) | (self.last & RAND_B_MASK)) + 1;
            if counter >> 74 != 0 {
                // Counter exhausted (2^73 ids in one ms cannot happen in practice): borrow
                // the next millisecond.
                compose(last_ms + 1, 0)
            } else {
                compose(last_ms, counter)
            }
        };
        self.last = id;
        Uuid::from_u128(id)
    }

    pub fn last(&self) -> Uuid {
        Uuid::from_u128(self.last)
    }
}

fn compose(ms: u128, counter: u128) -> u128 {
    (ms << 80) | VERSION_7 | ((counter << 2) & RAND_A_MASK) | VARIANT_RFC | (counter & RAND_B_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_are_v7() {
        let mut g = IdGenerator::new(Uuid::nil());
        let mut prev = g.next();
        assert_eq!(prev.get_version_num(), 7);
        for _ in 0..10_000 {
            let id = g.next();
            assert!(id > prev);
            assert_eq!(id.get_version_num(), 7);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            prev = id;
        }
    }

    #[test]
    fn ids_stay_above_a_floor_in_the_future() {
        let floor = Uuid::from_u128(compose((1 << 47) + 5, 42));
        let mut g = IdGenerator::new(floor);
        let a = g.next();
        assert!(a > floor);
        assert!(g.next() > a);
    }
}
