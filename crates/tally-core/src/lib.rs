//! tally's domain: the rules of metering that must be right, with no I/O, no async and no clock.
//!
//! Everything here is a pure function of its inputs. Time is passed in as [`Timestamp`]s, money and
//! quantities are exact [`rust_decimal::Decimal`]s, and identifiers are validated newtypes. The store and
//! the HTTP server build on these types; nothing in this crate knows about SQL or HTTP.
#![warn(missing_docs)]
#![deny(clippy::float_arithmetic)]

pub mod add_on;
pub mod aggregation;
pub mod apikey;
pub mod billing;
pub mod case;
pub mod charge;
pub mod coupon;
pub mod currency;
pub mod customer;
pub mod error;
pub mod event;
pub mod id;
pub mod invoice;
pub mod metric;
pub mod money;
pub mod organization;
pub mod page;
pub mod period;
pub mod plan;
pub mod property;
pub mod quantity;
pub mod subscription;
pub mod tax;
pub mod time;
pub mod wallet;
pub mod window;

pub use error::{FieldError, Reason, ValidationErrors};
pub use time::Timestamp;
