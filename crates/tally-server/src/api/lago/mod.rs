//! Lago v1 REST routes.

pub mod add_ons;
pub mod billable_metrics;
pub mod coupons;
pub mod credit_notes;
pub mod customers;
pub mod events;
pub mod fees;
pub mod invoices;
pub mod one_off;
pub mod organizations;
pub mod plans;
pub mod subscriptions;
pub mod taxes;
pub mod usage;
pub mod wallets;
