//! Wire protocols: AWS JSON 1.1 (KMS) and AWS Query (IAM, STS), requests in and answers out.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

pub use crate::error::Service;
use crate::error::{AwsError, Fault};

pub type HttpResponse = Response<Full<Bytes>>;

fn response(status: u16, content_type: &'static str, request_id: &str, body: Vec<u8>) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

/// A successful JSON 1.1 answer.
pub fn json_ok(request_id: &str, body: &serde_json::Value) -> HttpResponse {
    response(200, "application/x-amz-json-1.1", request_id, serde_json::to_vec(body).unwrap_or_default())
}

/// A JSON 1.1 error: `{"__type": CODE, "message": …}` plus `x-amzn-ErrorType`.
pub fn json_error(request_id: &str, error: &AwsError) -> HttpResponse {
    let body = serde_json::json!({ "__type": error.code, "message": error.message });
    let mut resp = response(error.status, "application/x-amz-json-1.1", request_id, serde_json::to_vec(&body).unwrap_or_default());
    if let Ok(v) = HeaderValue::from_str(&error.code) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

/// A successful Query answer: `<{Action}Response><{Action}Result>…` (the result element only
/// when there is one) and the request id.
pub fn query_ok(service: Service, action: &str, request_id: &str, result: Option<&str>) -> HttpResponse {
    let mut xml = format!("<{action}Response xmlns=\"{}\">", service.xml_namespace());
    if let Some(result) = result {
        xml.push_str(&format!("<{action}Result>{result}</{action}Result>"));
    }
    xml.push_str(&format!("<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"));
    response(200, "text/xml", request_id, xml.into_bytes())
}

/// A Query error document.
pub fn query_error(service: Service, request_id: &str, error: &AwsError) -> HttpResponse {
    let kind = match error.fault {
        Fault::Sender => "Sender",
        Fault::Receiver => "Receiver",
    };
    let xml = format!(
        "<ErrorResponse xmlns=\"{}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        service.xml_namespace(),
        escape(&error.code),
        escape(&error.message)
    );
    response(error.status, "text/xml", request_id, xml.into_bytes())
}

/// The error in the service's own protocol.
pub fn error_response(service: Service, request_id: &str, error: &AwsError) -> HttpResponse {
    match service {
        Service::Kms => json_error(request_id, error),
        Service::Iam | Service::Sts => query_error(service, request_id, error),
    }
}

/// Escapes text for XML element content.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `<name>escaped value</name>`.
pub fn elem(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", escape(value))
}

/// The parameters of a Query request (form body, or the query string of a GET).
#[derive(Debug, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn require(&self, service: Service, name: &str) -> Result<&str, AwsError> {
        self.get(name).ok_or_else(|| AwsError::missing_parameter(service, name))
    }

    /// An optional integer parameter; a non-number is a validation error.
    pub fn int(&self, service: Service, name: &str) -> Result<Option<i64>, AwsError> {
        self.get(name)
            .map(|v| v.parse::<i64>().map_err(|_| AwsError::validation(service, format!("Value '{v}' at '{name}' is not a valid integer"))))
            .transpose()
    }
}
