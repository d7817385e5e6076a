//! The server's only source of "now", so tests and demos can control time.
//!
//! In production the clock is the machine's. With `tally serve --clock simulated`, time stands still
//! until `POST /api/v1/clock` moves it forward; moving it runs all billing due up to the new time.

use std::sync::RwLock;

use tally_core::Timestamp;

/// Tells the current time.
pub trait Clock: Send + Sync + 'static {
    /// Returns the current instant.
    fn now(&self) -> Timestamp;
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(chrono::Utc::now())
    }
}

/// A clock that moves only when told to, never backwards.
#[derive(Debug)]
pub struct SimulatedClock {
    now: RwLock<Timestamp>,
}

impl SimulatedClock {
    /// Starts the clock at `start`.
    pub fn new(start: Timestamp) -> Self {
        SimulatedClock {
            now: RwLock::new(start),
        }
    }

    /// Moves the clock to `to`; returns `false` (and leaves it) when `to` is in its past.
    pub fn advance(&self, to: Timestamp) -> bool {
        match self.now.write() {
            Ok(mut now) if to >= *now => {
                *now = to;
                true
            }
            _ => false,
        }
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> Timestamp {
        self.now.read().map_or(Timestamp::EPOCH, |now| *now)
    }
}
