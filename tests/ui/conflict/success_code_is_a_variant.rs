use token_core::token_endpoint;

// A success code that is also a variant's code: the variant is never read, and the sandbox's
// refusal with it reaches the client as a success. Integer codes compare as integers.
#[token_endpoint(error_code)]
pub enum WeChatCode {
    Ok = 0,
    #[token(kind = reauth_required, refusal = invalid_refresh_token)]
    InvalidRefreshToken = 40030,
    Other(String),
}

#[token_endpoint(error, status = 200, success_codes("00"))]
pub struct WeChatError {
    pub errcode: WeChatCode,
    pub errmsg: Option<String>,
}

#[token_endpoint(error_code, rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResultCode {
    Success,
    #[token(kind = reauth_required)]
    InvalidRefreshToken,
    Other(String),
}

#[token_endpoint(error, success_codes("SUCCESS"))]
pub struct ResultError {
    pub code: ResultCode,
}

fn main() {}
