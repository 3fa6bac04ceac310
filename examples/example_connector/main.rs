//! Runs Tributary with the EXAMPLE connector registered beside the built-in ones:
//! `cargo run --example example_connector -- <database-url>`, then install it with
//! `curl -X POST localhost:8080/api/payments/connectors/example -H 'Content-Type: application/json'
//!  -d '{"name": "demo", "directory": "/tmp/payments"}'`.

mod connector;

use std::sync::Arc;

use tributary::app::{Application, ShutdownSignals};
use tributary::sdk::SystemClock;
use tributary::settings::Settings;

fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .ok_or_else(|| anyhow::anyhow!("usage: example_connector <postgres://… URL>"))?;
    let settings = Settings::default();
    let _telemetry = tributary::telemetry::init(&settings.log, &settings.telemetry)?;
    let registry =
        tributary::connectors::registry(&settings).with(Arc::new(connector::ExampleLoader));
    actix_rt::System::new().block_on(async move {
        let signals = ShutdownSignals::listen()?;
        let app = Application::build_with(&settings, &url, registry, Arc::new(SystemClock)).await?;
        app.run_until_stopped(Some(signals)).await?;
        Ok(())
    })
}
