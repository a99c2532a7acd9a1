use token_core::token_endpoint;

// The sandbox answers these refusals with a code the client reads as a success: an empty
// one always, and one of `success_codes(...)`.
#[token_endpoint(error, status = 200, success_codes("0", "SUCCESS"),
                 refusal(invalid_refresh_token, code = "SUCCESS"),
                 refusal(bad_request, code = ""),
                 refusal(unknown_client, code = "40301"))]
pub struct Failure {
    #[token(code)]
    pub code: String,
    pub message: Option<String>,
}

#[token_endpoint(error_code)]
pub enum Code {
    #[token(code = "", kind = reauth_required)]
    Expired,
    Other(String),
}

fn main() {}
