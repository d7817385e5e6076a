//! The server's integration tests: each module starts real servers on temporary SQLite files and
//! checks one feature through HTTP against the Lago and OpenMeter contracts (COMPAT.md).

mod add_ons;
mod adjustments;
mod advance_charges;
mod aggregations;
mod auth;
mod batch;
mod billable_metrics;
mod billing;
mod bulk;
mod case;
mod cloudevents;
mod credit_notes;
mod customers;
mod events;
mod golden;
mod helpers;
mod invoice_pdf;
mod invoicing_settings;
mod journey;
mod meter_query;
mod meters;
mod openapi;
mod plans;
mod progressive;
mod restart;
mod rollups;
mod subscriptions;
mod termination_credit;
mod unbillable;
