//! A request id by its name and by its key, as text or optional text, under an envelope;
//! a sandbox's refusal has none.
use token_core::{codec::ErrorResponse, codec::RefusalReason, token_endpoint};

#[token_endpoint(error, success_codes("0"))]
pub struct ByName {
    pub code: String,
    pub request_id: Option<String>,
}

#[token_endpoint(error, envelope = "result", rename_all = "camelCase")]
pub struct ByKey {
    #[token(code)]
    pub result_code: String,
    #[token(request_id)]
    pub trace_id: String,
}

fn main() {
    let ok = http::StatusCode::OK;
    let e = ByName::decode_error(ok, br#"{"code":"X","request_id":"r-1"}"#).unwrap();
    assert_eq!(e.request_id().as_deref(), Some("r-1"));
    let e = ByName::decode_error(ok, br#"{"code":"X","request_id":7}"#).unwrap();
    assert_eq!(e.request_id(), None); // an odd id is absent, the code still decides
    let e = ByKey::decode_error(ok, br#"{"result":{"resultCode":"X","traceId":"t-1"}}"#).unwrap();
    assert_eq!(e.request_id().as_deref(), Some("t-1"));
    assert_eq!(ByName::from_refusal(RefusalReason::BadRequest, "no").request_id, None);
}
