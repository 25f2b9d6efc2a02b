//! `GET /openapi/v2`: the Swagger 2.0 document of every served kind
//! ([`bramble_api::schema::swagger`]), encoded once as JSON and as gnostic's
//! protobuf, each with its own `ETag`. The representation follows `Accept` as
//! kube-openapi's handler chooses it: the first clause (by `q`) that matches
//! `application/json` or the proto-openapi types wins, `*/*` and no `Accept`
//! mean JSON, anything else is `406`.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::gnostic::{self, GnosticError};
use super::served::Served;

const JSON: &str = "application/json";
/// What client-go's `OpenAPISchema()` asks for (the deprecated spelling).
const PROTOBUF_DEPRECATED: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// What the answer's `Content-Type` says for either protobuf spelling.
const PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

struct Document {
    json: Served,
    protobuf: Result<Served, GnosticError>,
}

fn served() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(|| {
        let doc = bramble_api::schema::swagger::document();
        let protobuf = gnostic::encode(&doc).map(Served::new);
        if let Err(e) = &protobuf {
            tracing::error!(error = %e, "/openapi/v2 cannot be encoded as protobuf");
        }
        Document {
            json: Served::new(serde_json::to_vec(&doc).unwrap_or_default()),
            protobuf,
        }
    })
}

/// The representations a request may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Representation {
    Json,
    Protobuf,
}

/// The representation `accept` asks for, `None` when it names none of them.
fn negotiate(accept: Option<&str>) -> Option<Representation> {
    let accept = accept.filter(|a| !a.trim().is_empty()).unwrap_or("*/*");
    let mut clauses: Vec<(f32, &str)> = accept
        .split(',')
        .map(|clause| {
            let mut parts = clause.split(';');
            let media = parts.next().unwrap_or_default().trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (q, media)
        })
        .filter(|(q, _)| *q > 0.0)
        .collect();
    // Stable: equal weights keep the client's order.
    clauses.sort_by(|a, b| b.0.total_cmp(&a.0));
    let offered = [
        (JSON, Representation::Json),
        (PROTOBUF_DEPRECATED, Representation::Protobuf),
        (PROTOBUF, Representation::Protobuf),
    ];
    clauses.into_iter().find_map(|(_, media)| {
        let (ty, sub) = media.split_once('/')?;
        offered.iter().find_map(|(o, r)| {
            let (oty, osub) = o.split_once('/')?;
            let fits = (ty == "*" || ty.eq_ignore_ascii_case(oty))
                && (sub == "*" || sub.eq_ignore_ascii_case(osub));
            fits.then_some(*r)
        })
    })
}

/// `GET /openapi/v2`.
pub async fn document(headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let mut resp = match negotiate(accept) {
        Some(Representation::Json) => served().json.answer(&headers, JSON, false),
        Some(Representation::Protobuf) => match &served().protobuf {
            Ok(served) => served.answer(&headers, PROTOBUF, false),
            Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        },
        None => StatusCode::NOT_ACCEPTABLE.into_response(),
    };
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_picks_the_representation_as_kube_openapi_does() {
        use Representation::*;
        assert_eq!(negotiate(None), Some(Json));
        assert_eq!(negotiate(Some("")), Some(Json));
        assert_eq!(negotiate(Some("*/*")), Some(Json));
        assert_eq!(negotiate(Some("application/json")), Some(Json));
        assert_eq!(negotiate(Some(PROTOBUF_DEPRECATED)), Some(Protobuf));
        assert_eq!(negotiate(Some(PROTOBUF)), Some(Protobuf));
        assert_eq!(
            negotiate(Some(
                "application/json;q=0.5, application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
            )),
            Some(Protobuf)
        );
        assert_eq!(
            negotiate(Some(
                "application/vnd.kubernetes.protobuf, application/json"
            )),
            Some(Json)
        );
        assert_eq!(negotiate(Some("application/yaml")), None);
        assert_eq!(negotiate(Some("application/json;q=0")), None);
    }

    #[test]
    fn both_representations_are_built() {
        let doc = served();
        assert!(doc.json.bytes.starts_with(b"{"));
        let protobuf = doc.protobuf.as_ref().unwrap();
        assert!(protobuf.bytes.len() > 1000);
        assert_ne!(doc.json.hash, protobuf.hash);
    }
}
