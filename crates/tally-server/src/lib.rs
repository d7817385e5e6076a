//! tally's HTTP server: the Lago v1 and OpenMeter v1 contracts over one store.
//!
//! [`Application::build`] binds the listener (port 0 works, for tests) and wires the routes, auth,
//! request ids, telemetry and limits; [`Application::run`] serves until the shutdown future resolves,
//! then finishes in-flight requests and lets the store commit what is queued.

pub mod api;
pub mod auth;
pub mod clock;
pub mod error;
pub mod state;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tally_store::Store;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

use crate::clock::{Clock, SystemClock};
use crate::state::AppState;
use crate::telemetry::REQUEST_ID;

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The longest a request may take before it is answered 408.
    pub request_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    store: Arc<dyn Store>,
}

impl Application {
    /// Binds the listener and builds the routes over `store`.
    pub async fn build(
        config: &ServerConfig,
        store: Arc<dyn Store>,
    ) -> std::io::Result<Application> {
        Self::build_with_clock(config, store, Arc::new(SystemClock)).await
    }

    /// Like [`Application::build`], with a chosen clock.
    pub async fn build_with_clock(
        config: &ServerConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<Application> {
        telemetry::prometheus();
        let listener = TcpListener::bind(config.listen).await?;
        let state = AppState::new(store.clone(), clock);
        let router = api::router(state)
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
            store,
        })
    }

    /// Returns the address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, finishes in-flight requests, then closes the store (which
    /// commits everything queued) and returns.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let result = axum::serve(self.listener, self.router.into_make_service())
            .with_graceful_shutdown(shutdown)
            .await;
        self.store.close().await;
        result
    }
}
