//! Error-code enums written as a table: integer codes as discriminants (stripped by the
//! macro), and the `Other(String)` catch-all known by its shape, without `#[token(...)]`.

use http::StatusCode;
use token_core::codec::{ErrorCode, ErrorResponse, RefusalReason};
use token_core::error::ErrorKind;
use token_core::token_endpoint;

/// WeChat's codes, each beside its variant.
#[token_endpoint(error_code)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeChatCode {
    #[token(kind = reauth_required, refusal = invalid_refresh_token)]
    InvalidRefreshToken = 40030,
    #[token(kind = transient, refusal = server_error)]
    SystemBusy = -1,
    InvalidParameter = 40035,
    Other(String),
}

#[token_endpoint(error, status = 200, success_codes(0))]
#[derive(Debug)]
pub struct WeChatError {
    pub errcode: WeChatCode,
    pub errmsg: Option<String>,
}

#[test]
fn discriminants_are_the_integer_codes_both_ways() {
    const { assert!(<WeChatCode as ErrorCode>::NUMERIC) };
    assert_eq!(
        WeChatCode::from_code("40030"),
        WeChatCode::InvalidRefreshToken
    );
    assert_eq!(WeChatCode::from_code("-1"), WeChatCode::SystemBusy);
    assert_eq!(WeChatCode::InvalidParameter.as_code(), "40035");
    assert_eq!(WeChatCode::SystemBusy.kind(), Some(ErrorKind::Transient));
    assert_eq!(WeChatCode::InvalidParameter.kind(), None);

    let ok = StatusCode::OK;
    let busy = WeChatError::decode_error(ok, br#"{"errcode":"-1","errmsg":"system error"}"#);
    assert_eq!(busy.unwrap().kind(ok), ErrorKind::Transient);
    // The sandbox writes the declared answer with the integer code as a JSON number.
    let answer =
        WeChatError::from_refusal(RefusalReason::InvalidRefreshToken, "invalid refresh_token");
    assert_eq!(
        answer.encode_error(),
        (
            ok,
            br#"{"errcode":40030,"errmsg":"invalid refresh_token"}"#.to_vec()
        )
    );
}

#[test]
fn an_integer_code_written_as_a_string_with_a_sign_or_leading_zeros_is_the_same_code() {
    let ok = StatusCode::OK;
    for code in [r#""040030""#, r#""+40030""#, "40030", r#""40030""#] {
        let body = format!(r#"{{"errcode":{code},"errmsg":"invalid refresh_token"}}"#);
        let error = WeChatError::decode_error(ok, body.as_bytes()).unwrap();
        assert_eq!(error.errcode, WeChatCode::InvalidRefreshToken, "{code}");
        assert_eq!(error.kind(ok), ErrorKind::ReauthRequired, "{code}");
    }
    // Not a number: the catch-all, as it was written.
    let error = WeChatError::decode_error(ok, br#"{"errcode":"40030x","errmsg":"?"}"#).unwrap();
    assert_eq!(error.errcode, WeChatCode::Other("40030x".into()));
}

#[test]
fn an_integer_code_written_as_a_whole_float_is_the_same_code() {
    // A PHP or JavaScript back end may write the integer 40030 as `40030.0` or `4.003e4`.
    let ok = StatusCode::OK;
    for code in ["40030.0", "4.003e4", "40030e0"] {
        let body = format!(r#"{{"errcode":{code},"errmsg":"invalid refresh_token"}}"#);
        let error = WeChatError::decode_error(ok, body.as_bytes()).unwrap();
        assert_eq!(error.errcode, WeChatCode::InvalidRefreshToken, "{code}");
        assert_eq!(error.kind(ok), ErrorKind::ReauthRequired, "{code}");
    }
    let busy = WeChatError::decode_error(ok, br#"{"errcode":-1.0,"errmsg":"system error"}"#);
    assert_eq!(busy.unwrap().errcode, WeChatCode::SystemBusy);
    // Not a whole number, or beyond the integers a float holds exactly: no code, so the
    // body is not this error (it then fails as a success answer: a typed error).
    for code in ["40030.5", "1e300"] {
        let body = format!(r#"{{"errcode":{code},"errmsg":"?"}}"#);
        assert!(
            WeChatError::decode_error(ok, body.as_bytes()).is_none(),
            "{code}"
        );
    }
    // A whole zero written as a float is the success code.
    assert!(WeChatError::decode_error(ok, br#"{"errcode":0.0,"errmsg":"ok"}"#).is_none());
}

#[test]
fn the_string_variant_is_the_catch_all_without_a_key() {
    let unknown = WeChatCode::from_code("45009");
    assert_eq!(unknown, WeChatCode::Other("45009".into()));
    assert_eq!(unknown.as_code(), "45009");
    assert_eq!(unknown.kind(), None);
    let ok = StatusCode::OK;
    let error = WeChatError::decode_error(ok, br#"{"errcode":45009,"errmsg":"quota"}"#).unwrap();
    assert_eq!(error.errcode, WeChatCode::Other("45009".into()));
    assert_eq!(error.kind(ok), ErrorKind::Rejected);
}

/// String codes from the variant names, the catch-all by its shape: Lazada's table.
#[token_endpoint(error_code)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LazadaCode {
    #[token(kind = reauth_required)]
    IllegalRefreshToken,
    #[token(code = "AUTH_TYPE_UNSUPPORTED", kind = misconfigured)]
    AuthTypeUnsupported,
    Unknown(String),
}

#[test]
fn a_string_coded_enum_keeps_its_catch_all_by_shape() {
    const { assert!(!<LazadaCode as ErrorCode>::NUMERIC) };
    assert_eq!(
        LazadaCode::from_code("IllegalRefreshToken"),
        LazadaCode::IllegalRefreshToken
    );
    assert_eq!(
        LazadaCode::from_code("AUTH_TYPE_UNSUPPORTED"),
        LazadaCode::AuthTypeUnsupported
    );
    assert_eq!(LazadaCode::from_code("X"), LazadaCode::Unknown("X".into()));
}

/// A code declared as integers whose success is `0`, where the success code is also
/// declared as text written otherwise.
#[token_endpoint(error, status = 200, success_codes("+0"))]
#[derive(Debug)]
pub struct PaddedSuccess {
    pub errcode: WeChatCode,
}

#[test]
fn an_integer_success_code_written_otherwise_is_still_the_success() {
    // The success check reads an integer code as the integer it says, as the variant
    // matching does: `"00"` is the code 0, so it is the success `success_codes(0)` declares,
    // not an error landing in the catch-all as `"0"`.
    let ok = StatusCode::OK;
    for code in [
        "0", r#""0""#, r#""00""#, r#""+0""#, r#""-0""#, r#""000""#, "0.0", "-0",
    ] {
        let body = format!(r#"{{"errcode":{code},"access_token":"at"}}"#);
        assert!(
            WeChatError::decode_error(ok, body.as_bytes()).is_none(),
            "{code} is the integer 0, the success code"
        );
        assert!(
            PaddedSuccess::decode_error(ok, body.as_bytes()).is_none(),
            "{code} is the declared success `+0`"
        );
    }
    // The code read as the variant and the success check agree on every spelling: a code
    // that is an error is read as the same code whatever its spelling.
    for code in [r#""040030""#, r#""+40030""#, "40030"] {
        let body = format!(r#"{{"errcode":{code}}}"#);
        let error = PaddedSuccess::decode_error(ok, body.as_bytes()).unwrap();
        assert_eq!(error.errcode, WeChatCode::InvalidRefreshToken, "{code}");
    }
    // Text that is no integer stays an error, as it came.
    let error = WeChatError::decode_error(ok, br#"{"errcode":"0x"}"#).unwrap();
    assert_eq!(error.errcode, WeChatCode::Other("0x".into()));
    // `from_code` reads an integer code the same way.
    assert_eq!(
        WeChatCode::from_code("040030"),
        WeChatCode::InvalidRefreshToken
    );
    assert_eq!(
        WeChatCode::from_code("+45009"),
        WeChatCode::Other("45009".into())
    );
}

/// A text-coded error (a `String` code, RFC 6749's `error`) with a success code.
#[token_endpoint(error, success_codes("0"))]
#[derive(Debug)]
pub struct TextCoded {
    pub code: LazadaCode,
}

#[test]
fn a_text_code_written_as_a_number_is_only_ever_its_success() {
    let unauthorized = StatusCode::UNAUTHORIZED;
    // A number where the provider writes names is no code of its (Spring Boot's default
    // `{"status": 401, ...}` beside a provider's `"status": "UNAUTHORIZED"`), nor is a blank
    // code; the body is then not this error.
    for code in ["401", "-1", "401.0", r#"" ""#, r#""\t""#] {
        let body = format!(r#"{{"code":{code},"message":"m"}}"#);
        assert!(
            TextCoded::decode_error(unauthorized, body.as_bytes()).is_none(),
            "{code}"
        );
    }
    // The success code written as a number is still the success; text is read as it came.
    assert!(TextCoded::decode_error(StatusCode::OK, br#"{"code":0}"#).is_none());
    let error = TextCoded::decode_error(unauthorized, br#"{"code":"401"}"#).unwrap();
    assert_eq!(error.code, LazadaCode::Unknown("401".into()));
}
