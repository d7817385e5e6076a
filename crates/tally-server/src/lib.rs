#![recursion_limit = "256"]
//! tally's HTTP server: the Lago v1 and OpenMeter v1 contracts over one store.
//!
//! [`Application::build`] binds the listener (port 0 works, for tests) and wires the routes, auth,
//! request ids, telemetry and limits; [`Application::run`] serves until the shutdown future resolves,
//! then finishes in-flight requests and lets the store commit what is queued. With the system clock, a
//! background worker runs the billing clock.

pub mod api;
pub mod auth;
pub mod clock;
pub mod document;
pub mod error;
pub mod file_links;
pub mod state;
pub mod telemetry;
pub mod workers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tally_core::Timestamp;
use tally_store::Store;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

use crate::clock::{Clock, SimulatedClock, SystemClock};
use crate::file_links::{DEFAULT_LINK_LIFETIME, FileLinks, LinkSecret};
use crate::state::AppState;
use crate::telemetry::REQUEST_ID;

/// Which clock the server bills by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockMode {
    /// The machine's clock; a worker runs billing every `billing_interval`.
    #[default]
    System,
    /// A simulated clock starting at the given instant, moved by `POST /api/v1/clock`.
    Simulated(Timestamp),
}

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The longest a request may take before it is answered 408.
    pub request_timeout: Duration,
    /// The billing clock.
    pub clock: ClockMode,
    /// How often the billing worker runs with the system clock.
    pub billing_interval: Duration,
    /// The base URL clients reach the server at (`https://billing.example.com`), used to make the
    /// absolute `file_url` of invoices; `None` takes `http://` and the request's `Host` header.
    pub public_url: Option<String>,
    /// The key invoice document links are signed with. The default is drawn at random when the
    /// config is made, so links die with the process; several nodes behind one address need the
    /// same secret.
    pub link_secret: LinkSecret,
    /// How long an invoice document link works after it is handed out.
    pub link_lifetime: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout: Duration::from_secs(120),
            clock: ClockMode::System,
            billing_interval: Duration::from_secs(10),
            public_url: None,
            link_secret: LinkSecret::random(),
            link_lifetime: DEFAULT_LINK_LIFETIME,
        }
    }
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    billing_interval: Option<Duration>,
}

impl Application {
    /// Binds the listener and builds the routes over `store`.
    pub async fn build(
        config: &ServerConfig,
        store: Arc<dyn Store>,
    ) -> std::io::Result<Application> {
        telemetry::prometheus();
        let listener = TcpListener::bind(config.listen).await?;
        let (clock, simulated): (Arc<dyn Clock>, Option<Arc<SimulatedClock>>) = match config.clock {
            ClockMode::System => (Arc::new(SystemClock), None),
            ClockMode::Simulated(start) => {
                let simulated = Arc::new(SimulatedClock::new(start));
                (simulated.clone(), Some(simulated))
            }
        };
        let billing_interval = simulated.is_none().then_some(config.billing_interval);
        let links = FileLinks::new(config.link_secret.clone(), config.link_lifetime);
        let state = AppState::new(store, clock, simulated, links, config.public_url.as_deref());
        let router = api::router(state.clone())
            .layer(axum::middleware::from_fn(telemetry::observe))
            .layer(TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                config.request_timeout,
            ))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
            .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid));
        Ok(Application {
            listener,
            router,
            state,
            billing_interval,
        })
    }

    /// Returns the address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, finishes in-flight requests, stops the billing worker, then
    /// closes the store (which commits everything queued) and returns.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let worker = self.billing_interval.map(|interval| {
            tokio::spawn(workers::billing::run(self.state.clone(), interval, stopped))
        });
        let result = axum::serve(self.listener, self.router.into_make_service())
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = stop.send(true);
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        self.state.store.close().await;
        result
    }
}
