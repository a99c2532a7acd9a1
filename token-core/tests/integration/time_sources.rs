//! The `now_*` sources of a request's fields: the context's time (the manager's injectable
//! clock), written as each source says; a plain `now_rfc3339` in UTC (`Z`) whatever the
//! offset of the clock's time, the sources with an offset at theirs.

use time::macros::datetime;
use token_core::codec::{Endpoint, FromContext, RequestContext};
use token_core::{secret::AccessToken, token_endpoint};

#[token_endpoint(response)]
pub struct Tokens {
    pub access_token: AccessToken,
}

#[token_endpoint(error)]
pub struct Failure {
    pub error: String,
}

fn base() -> url::Url {
    "https://id.example".parse().unwrap()
}

/// The three RFC 3339 sources side by side.
#[token_endpoint(post = "/token", json, response = Tokens, error = Failure)]
pub struct Stamped {
    #[token(header, rename = "X-Utc", from = now_rfc3339)]
    pub utc: String,
    #[token(header, rename = "X-Jakarta", from = now_rfc3339("+07:00"))]
    pub jakarta: String,
    #[token(header, rename = "X-Beijing", from = now_datetime("+08:00"))]
    pub beijing: String,
}

#[test]
fn a_plain_now_rfc3339_is_utc_whatever_the_clock_s_offset() {
    // The clock's time at +07:00 (an injectable clock need not be UTC), and at -05:30.
    for now in [
        datetime!(2020-12-18 15:06:00.123456789 +07:00),
        datetime!(2020-12-18 02:36:00.123456789 -05:30),
        datetime!(2020-12-18 08:06:00.123456789 UTC),
    ] {
        let cx = RequestContext::new(&()).with_now(now);
        let stamped = Stamped::from_context(&cx).unwrap();
        assert_eq!(stamped.utc, "2020-12-18T08:06:00.123456789Z", "{now}");
        // The sources with an offset of their own write it, whatever the clock's.
        assert_eq!(stamped.jakarta, "2020-12-18T15:06:00+07:00", "{now}");
        assert_eq!(stamped.beijing, "2020-12-18 16:06:00", "{now}");
        let request = stamped.encode_request(&base()).unwrap();
        assert_eq!(request.headers()["X-Utc"], "2020-12-18T08:06:00.123456789Z");
    }
}
