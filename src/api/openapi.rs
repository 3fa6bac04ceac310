//! The OpenAPI 3.1 document of the whole HTTP API, served at `/openapi.json`, and Swagger UI
//! at `/swagger-ui/` (its assets are compiled in: no network needed). Each handler carries its
//! own `#[utoipa::path]` and each response type its `ToSchema`, so the document sits next to
//! the code it describes; this module only gathers them and adds what every operation shares.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::auth::scope::Scope;
use super::error::ErrorBody;
use super::{
    accounts, bank_accounts, connectors, health, manual, metrics, payments, pools, tasks,
    transfer_initiations, webhook_configs, webhook_deliveries, webhooks,
};

/// Where the document is served.
pub const DOC_PATH: &str = "/openapi.json";

/// The document: every route of [`super::served`], checked by tests/it/api/openapi.rs.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tributary",
        description = "A payments connector runtime, wire-compatible with Formance Payments v1. \
            Errors are `{\"errorCode\", \"errorMessage\"}`: 4xx for bad input (the message \
            names what is wrong), 503 while the database is unreachable."
    ),
    paths(
        health::live, health::health, health::info,
        connectors::list, connectors::configs, connectors::validate,
        connectors::read_config_only, connectors::update_config_only, connectors::reset_only,
        tasks::list_only, tasks::get_only,
        connectors::install, connectors::uninstall_only, connectors::uninstall,
        connectors::read_config, connectors::update_config, connectors::reset,
        connectors::pause, connectors::resume,
        tasks::list, tasks::get, tasks::restart,
        payments::list, payments::get, payments::patch_metadata,
        accounts::list, accounts::get, accounts::balances,
        bank_accounts::create, bank_accounts::list, bank_accounts::get,
        bank_accounts::forward, bank_accounts::patch_metadata,
        transfer_initiations::create, transfer_initiations::list, transfer_initiations::get,
        transfer_initiations::delete, transfer_initiations::update_status,
        transfer_initiations::retry, transfer_initiations::reverse,
        transfer_initiations::connectors_transfer,
        pools::create, pools::list, pools::get, pools::delete, pools::balances_at,
        pools::balances_latest, pools::add_account, pools::remove_account, pools::update_query,
        manual::create_payment, manual::create_account,
        webhooks::receive, webhooks::receive_path,
        webhook_configs::insert, webhook_configs::list, webhook_configs::delete,
        webhook_configs::test, webhook_configs::activate, webhook_configs::deactivate,
        webhook_configs::change_secret, webhook_configs::update,
        webhook_deliveries::list, webhook_deliveries::get, webhook_deliveries::attempts,
        webhook_deliveries::replay, webhook_deliveries::replay_many,
        metrics::metrics,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Shared),
    tags(
        (name = "health", description = "Liveness, readiness and version"),
        (name = "connectors", description = "Install, configure, reset, pause connectors"),
        (name = "tasks", description = "A connector's tasks"),
        (name = "payments", description = "Ingested payments and their history"),
        (name = "accounts", description = "Ingested accounts and balances"),
        (name = "bank accounts", description = "Bank accounts, forwarded to connectors"),
        (name = "transfer-initiations", description = "Money out through connectors"),
        (name = "metrics", description = "Prometheus metrics"),
        (name = "pools", description = "Groups of accounts and their summed balances"),
        (name = "webhooks", description = "Webhooks out: the Formance Webhooks v1 API"),
    )
)]
pub struct ApiDoc;

/// What every operation shares, written once: the error answers (a 4xx for bad input, 503
/// while the database is unreachable), the path parameters' descriptions (utoipa infers the
/// parameters themselves from the handlers' `web::Path` arguments), and the bearer scheme with
/// each operation's scope (src/api/auth).
struct Shared;

/// The name of the bearer security scheme in the document.
pub const BEARER_SCHEME: &str = "bearerAuth";

/// Operations served without a token: they declare no security.
const OPEN_PATHS: [&str; 3] = [
    "/api/payments/_live",
    "/api/payments/_health",
    "/api/payments/_info",
];

/// Each path parameter: its description and an example.
const PATH_PARAMETERS: [(&str, &str, &str); 9] = [
    (
        "id",
        "A webhook config's or delivery's id (a UUID)",
        "4997257d-dfb6-445b-929c-cbe2ab182818",
    ),
    (
        "provider",
        "The provider, in any case; an unknown one is 404",
        "DUMMY-PAY",
    ),
    (
        "connectorID",
        "A connector id, as `POST /connectors/{provider}` returned it",
        "eyJQcm92aWRlciI6IkRVTU1ZLVBBWSIsIlJlZmVyZW5jZSI6IjAxOTM0ZTZjLTAwMDAtNzAwMC04MDAwLTAwMDAwMDAwMDAwMCJ9",
    ),
    (
        "taskID",
        "A task id (a UUID)",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    ),
    (
        "paymentID",
        "A payment id, as listed by `GET /payments`",
        "",
    ),
    (
        "accountID",
        "An account id, as listed by `GET /accounts`",
        "",
    ),
    (
        "bankAccountId",
        "A bank account id (a UUID), as `POST /bank-accounts` returned it",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    ),
    (
        "transferId",
        "A transfer initiation id, as `POST /transfer-initiations` returned it",
        "",
    ),
    (
        "poolID",
        "A pool id (a UUID), as `POST /pools` returned it",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    ),
];

impl Modify for Shared {
    fn modify(&self, doc: &mut Document) {
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                            "ErrorBody",
                        ))))
                        .build(),
                )
                .build()
        };
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                BEARER_SCHEME,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some(
                            "A static token from [[auth.tokens]] or a JWT from the identity \
                             provider of [auth.jwt]. Scopes: payments:read for reads, \
                             payments:write (which also grants reads) for every change.",
                        ))
                        .build(),
                ),
            );
        let operations = doc.paths.paths.iter_mut().flat_map(|(path, item)| {
            [
                (Scope::Read, &mut item.get),
                (Scope::Write, &mut item.post),
                (Scope::Write, &mut item.patch),
                (Scope::Write, &mut item.put),
                (Scope::Write, &mut item.delete),
            ]
            .into_iter()
            .filter_map(move |(scope, op)| op.as_mut().map(|op| (path.as_str(), scope, op)))
        });
        for (path, scope, operation) in operations {
            secure(operation, path, scope, &error);
            add(
                operation,
                "4XX",
                error("Bad input, or not found: the message says which"),
            );
            add(
                operation,
                "503",
                error("The database is unreachable: retry later"),
            );
            let parameters = operation.parameters.iter_mut().flatten();
            for parameter in parameters.filter_map(|p| match p {
                RefOr::T(p) => Some(p),
                RefOr::Ref(_) => None,
            }) {
                let known = PATH_PARAMETERS.iter().find(|(n, ..)| *n == parameter.name);
                if let (ParameterIn::Path, Some((_, description, example))) =
                    (&parameter.parameter_in, known)
                {
                    parameter.description = Some(description.to_string());
                    if let (false, Some(RefOr::T(Schema::Object(schema)))) =
                        (example.is_empty(), &mut parameter.schema)
                    {
                        schema.examples = vec![(*example).into()];
                    }
                }
            }
        }
    }
}

/// Declares the bearer scheme with the operation's scope, and its 401 and 403 answers; the
/// open routes declare none, and `/metrics` declares it optional (it needs a token only with
/// `metrics.require_auth = true`).
fn secure(
    operation: &mut Operation,
    path: &str,
    scope: Scope,
    error: &dyn Fn(&str) -> utoipa::openapi::Response,
) {
    // Webhooks are authenticated by their connector, not by a bearer token.
    if OPEN_PATHS.contains(&path) || super::auth::is_webhook(path) {
        return;
    }
    let bearer = SecurityRequirement::new(BEARER_SCHEME, [scope.name()]);
    operation.security = Some(if path == metrics::PATH {
        vec![SecurityRequirement::default(), bearer]
    } else {
        vec![bearer]
    });
    add(
        operation,
        "401",
        error("No bearer token, or one that is not valid (when authentication is on)"),
    );
    add(
        operation,
        "403",
        error(&format!("The token lacks the scope {}", scope.name())),
    );
}

fn add(operation: &mut Operation, status: &str, response: utoipa::openapi::Response) {
    let responses = &mut operation.responses.responses;
    if !responses.contains_key(status) {
        responses.insert(status.to_string(), RefOr::T(response));
    }
}

/// The schema of an exact integer of any size (amounts): written from PostgreSQL's `numeric`
/// text, never through a float, so it has no `format`.
pub fn big_integer() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .description(Some("An exact integer of any size, in minor units"))
        .build()
}

/// Swagger UI at `/swagger-ui/`, reading the document from [`DOC_PATH`] (which it serves).
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/swagger-ui/{_:.*}").url(DOC_PATH, ApiDoc::openapi())
}
